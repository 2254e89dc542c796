"""`recommender run --beam-runner flink` before the DAG: the settings, the job server's command and configuration,
the verified job-server jars, and every way of not having them, as a user would type it (one Error: line,
nothing started, nothing written). The DAG on Flink itself: tests/flink_e2e_test.py."""

import contextlib
import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tfx.dsl.io import fileio

from pipeline.config import FLINK_JOB_ENDPOINT, FlinkConfig, PipelineConfig, flink_runner_args
from pipeline.flink import artifacts, job_server, local_cluster


def test_flink_settings_are_checked_where_they_are_built():
    assert FlinkConfig().effective_parallelism == os.cpu_count() == FlinkConfig().effective_slots
    assert (
        FlinkConfig(parallelism=3).effective_parallelism == 3
        and FlinkConfig(master="[local-cluster]", slots=1).effective_slots == 1
    )
    assert FlinkConfig(master="[local-cluster]").master == "[local-cluster]"
    # The heap where the steps run: the embedded job server's 2g, the local cluster's TaskManager's 1g, or as given.
    assert (FlinkConfig().effective_heap, FlinkConfig(master="[local-cluster]").effective_heap) == ("2g", "1g")
    assert FlinkConfig(master="[local-cluster]", heap="3g").effective_heap == "3g"
    bad_ones = (
        dict(parallelism=-1),
        dict(master="[local-cluster]", slots=-1),
        dict(heap="lots"),
        dict(managed_memory="512"),
    )
    for bad in (*bad_ones, dict(master="flink-host"), dict(master="[cluster]"), dict(slots=2)):
        with pytest.raises(ValueError):
            FlinkConfig(**bad)


def test_the_flink_configuration_sets_parallelism_memory_and_the_spill_directory(tmp_path):
    config = FlinkConfig(parallelism=3, managed_memory="256m")
    path = job_server.flink_conf(config, tmp_path / "conf", tmp_path / "spill")
    settings = dict(line.split(": ", 1) for line in path.read_text().splitlines())
    assert settings["parallelism.default"] == "3" and settings["taskmanager.numberOfTaskSlots"] == "3"
    assert settings["taskmanager.memory.managed.size"] == "256m"
    assert settings["io.tmp.dirs"] == str(tmp_path / "spill") and (tmp_path / "spill").is_dir()
    # Network buffers per task slot (embedded: one slot per partition), 256 MB at least; see job_server.
    assert settings["taskmanager.memory.network.min"] == settings["taskmanager.memory.network.max"] == "384m"
    assert settings["taskmanager.network.sort-shuffle.min-buffers"] == "16"
    assert settings["taskmanager.network.memory.read-buffer.required-per-gate.max"] == "8"
    one_slot = job_server.flink_conf(FlinkConfig(parallelism=1), tmp_path / "one", tmp_path / "spill").read_text()
    assert "taskmanager.memory.network.max: 256m\n" in one_slot


def test_the_job_server_command_uses_the_verified_class_path_or_the_given_jar(tmp_path):
    embedded = job_server.command(FlinkConfig(heap="3g"), tmp_path / "lib", 8099, tmp_path / "conf")
    assert embedded[0].endswith("java") and "-Xmx3g" in embedded
    assert embedded[embedded.index("-cp") + 1] == f"{tmp_path / 'lib'}/*" and artifacts.MAIN_CLASS in embedded
    assert {"--flink-master=[local]", "--job-port=8099", f"--flink-conf-dir={tmp_path / 'conf'}"} <= set(embedded)
    given = job_server.command(FlinkConfig(job_server_jar="/jars/js.jar", master="jm:8081"), None, 1, tmp_path)
    assert given[given.index("-jar") + 1] == "/jars/js.jar" and "--flink-master=jm:8081" in given


def test_the_local_cluster_cuts_the_data_by_input_size_and_runs_slots_partitions_at_once(tmp_path):
    assert local_cluster.partitions_for(0, slots=2) == 4  # at least two per slot
    assert local_cluster.partitions_for(30_000_000, slots=2) == 20  # one per 1.5 MB of input
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "ratings.csv").write_bytes(b"x" * 3000)
    (tmp_path / "data" / "movies.csv").write_bytes(b"x" * 500)
    (tmp_path / "data" / "genome-scores.csv").write_bytes(b"x" * 90_000)  # not read: does not count
    assert local_cluster.input_bytes(str(tmp_path / "data"), ["ratings.csv", "movies.csv"]) == 3500
    config = FlinkConfig(master="[local-cluster]", parallelism=20, slots=2, heap="1g", managed_memory="256m")
    path = local_cluster.cluster_conf(config, tmp_path / "conf", tmp_path / "spill", rpc_port=6123, rest_port=8081)
    settings = dict(line.split(": ", 1) for line in path.read_text().splitlines())
    assert settings["taskmanager.numberOfTaskSlots"] == "2" and settings["rest.port"] == "8081"
    assert settings["taskmanager.memory.task.heap.size"] == "1g" and settings["io.tmp.dirs"] == str(tmp_path / "spill")
    assert settings["taskmanager.memory.managed.size"] == "256m"
    commands = local_cluster.commands(config, tmp_path / "lib", tmp_path / "conf")
    assert set(commands) == {"JobManager", "TaskManager"}
    task_manager = commands["TaskManager"]  # its heap: the task heap plus Flink's own 128 MB
    # G1 gives the heap back while no Beam step runs (the 2M Trainer ran beside a TaskManager still holding 2 GB),
    # and a periodic trim the native memory freed (managed memory, gRPC buffers).
    given_back = {"-XX:G1PeriodicGCInterval=15000", "-XX:TrimNativeHeapInterval=15000"}
    assert {"-Xmx1152m", "-XX:MaxDirectMemorySize=640m", *given_back} <= set(task_manager)
    assert task_manager[task_manager.index("-cp") + 1] == f"{tmp_path / 'lib'}/*"
    # In front of the cluster the job server only translates and submits: a small heap, and the cluster's address.
    server = job_server.command(config, tmp_path / "lib", 8099, tmp_path / "conf", master="localhost:8081")
    assert f"-Xmx{job_server.TRANSLATING_HEAP}" in server and "--flink-master=localhost:8081" in server
    assert (
        job_server.flink_conf(config, tmp_path / "jsconf", tmp_path / "spill")
        .read_text()
        .startswith("parallelism.default: 20\n")
    )
    # Each task slot runs a subtask of every ready vertex, each reserving network buffers: they grow with the slots,
    # and so does the direct memory the TaskManager may allocate them from.
    four = dataclasses.replace(config, slots=4)
    four_settings = local_cluster.cluster_conf(four, tmp_path / "four", tmp_path / "spill", 6123, 8081).read_text()
    assert "taskmanager.memory.network.max: 512m\n" in four_settings
    assert (
        "-XX:MaxDirectMemorySize=896m"
        in local_cluster.commands(four, tmp_path / "lib", tmp_path / "four")["TaskManager"]
    )


def test_out_of_heap_the_job_server_exits_and_the_note_says_which_knob(tmp_path):
    """-XX:+ExitOnOutOfMemoryError: a JVM that runs out of heap exits (seen at 2M ratings with a 2g heap: without
    it a gRPC thread died and the job hung). A real JVM, a real exhaustion, then the note the failed run shows."""
    command = job_server.command(FlinkConfig(heap="16m"), tmp_path / "lib", 8099, tmp_path / "conf")
    flags = [arg for arg in command if arg.startswith("-X")]
    assert flags == ["-Xmx16m", *job_server.JVM_MEMORY_FLAGS] and "-XX:+ExitOnOutOfMemoryError" in flags
    source = tmp_path / "Hog.java"  # Java 11+ runs a single source file: fills the heap with live arrays.
    source.write_text(
        "public class Hog { public static void main(String[] a) throws Exception {"
        " java.util.List<byte[]> l = new java.util.ArrayList<>();"
        " while (true) { l.add(new byte[1 << 20]); } } }"
    )
    log = tmp_path / "job-server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([command[0], *flags, str(source)], stdout=out, stderr=subprocess.STDOUT)
        assert process.wait(timeout=120) != 0
    server = job_server.JobServer(process, "localhost:8099", log)
    note = server.death_note()
    assert f"(pid {process.pid}) exited with code {process.returncode}" in note
    assert note.endswith("it ran out of Java heap: give it more with --flink-heap")


def test_flink_beam_args_name_one_job_server_through_the_environment():
    args = flink_runner_args(FlinkConfig())
    assert "--runner=PortableRunner" in args and f"--job_endpoint={FLINK_JOB_ENDPOINT}" in args
    assert "--environment_type=LOOPBACK" in args and "--execution_mode_for_batch=BATCH_FORCED" in args
    # Embedded Flink or the local cluster: the same Beam args, so switching does not change cache keys.
    assert flink_runner_args(FlinkConfig(master="[local-cluster]", parallelism=40, slots=1)) == args
    pool = flink_runner_args(FlinkConfig(worker_pool="localhost:50000"))
    assert {"--environment_type=EXTERNAL", "--environment_config=localhost:50000"} <= set(pool)


def test_the_job_endpoint_is_read_when_a_component_runs_so_cache_keys_do_not_see_the_port(tmp_path):
    """The compiled IR holds a placeholder, not a port: two runs on different ports have one cache key."""
    from tfx.dsl.compiler import compiler

    from pipeline import pipeline as dag

    config = PipelineConfig(
        pipeline_root=str(tmp_path / "root"),
        data_dir=str(tmp_path / "data"),
        serving_dir=str(tmp_path / "serving"),
        beam_pipeline_args=flink_runner_args(FlinkConfig()),
    )
    from tfx.proto.orchestration import executable_spec_pb2, pipeline_pb2

    ir = compiler.Compiler().compile(dag.create_pipeline(config))
    deployment = pipeline_pb2.IntermediateDeploymentConfig()
    ir.deployment_config.Unpack(deployment)
    for component in (dag.EXAMPLE_GEN, dag.STATISTICS_GEN, dag.TRANSFORM, dag.EVALUATOR):
        spec = executable_spec_pb2.BeamExecutableSpec()
        deployment.executor_specs[component].Unpack(spec)
        [endpoint] = [arg for arg in spec.beam_pipeline_args_placeholders if "job_endpoint" in str(arg)]
        assert job_server.JOB_ENDPOINT_ENV in str(endpoint) and "localhost" not in str(endpoint), component


def _lock_copy(tmp_path: Path) -> Path:
    """A cache whose job-server jars link to the verified ones (fetched by .ci/run), one jar really copied."""
    source = artifacts.fetch()
    target = artifacts.class_path_dir(tmp_path / "cache")
    target.mkdir(parents=True)
    for jar in source.glob("*.jar"):
        (target / jar.name).symlink_to(jar)
    return target


def test_the_cached_job_server_is_verified_jar_by_jar(tmp_path):
    target = _lock_copy(tmp_path)
    artifacts.verify(target)  # the real jars pass
    victim = sorted(target.glob("*.jar"))[0]
    data = victim.read_bytes()
    victim.unlink()
    victim.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(artifacts.JobServerError, match=f"checksum mismatch for {victim}: expected SHA-256"):
        artifacts.verify(target)
    victim.unlink()
    with pytest.raises(artifacts.JobServerError, match=f"missing: {victim.name}"):
        artifacts.verify(target)


def _run(tmp_path: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "recommender.cli", "run", "--beam-runner", "flink",
        "--input-dir", str(tmp_path / "data"), "--pipeline-root", str(tmp_path / "root"),
        "--serving-dir", str(tmp_path / "serving"), *extra,
    ]  # fmt: skip
    (tmp_path / "data").mkdir(exist_ok=True)
    for name in ("u.data", "u.item", "u.user"):
        (tmp_path / "data" / name).touch()
    environment = {**os.environ, artifacts.CACHE_ENV: str(tmp_path / "cache"), **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)


def _one_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    return errors[0]


def _path_with(tmp_path: Path, *tools: str) -> str:
    """A PATH holding this interpreter's directory and only the named tools."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in tools:
        (bin_dir / tool).symlink_to(shutil.which(tool))
    return os.pathsep.join([os.path.dirname(sys.executable), str(bin_dir)])


def _nothing_written(tmp_path: Path) -> None:
    assert not (tmp_path / "root").exists() and not (tmp_path / "serving").exists()
    assert not (tmp_path / "cache" / "flink-job-server").exists() or not any(
        (tmp_path / "cache" / "flink-job-server").glob(f"{artifacts.ARTIFACT_ID}*")
    )


def test_no_java_is_one_error_line_saying_how_to_get_it(tmp_path):
    error = _one_error(_run(tmp_path, env={"PATH": _path_with(tmp_path)}))
    assert error.startswith("Error: Java is not on PATH") and "openjdk-17-jre-headless" in error
    _nothing_written(tmp_path)


def test_no_maven_and_no_jar_is_one_error_line_naming_both_ways(tmp_path):
    error = _one_error(_run(tmp_path, env={"PATH": _path_with(tmp_path, "java")}))
    assert error.startswith("Error: Maven (mvn) is not on PATH") and artifacts.COORDINATES in error
    assert "--flink-job-server-jar" in error
    _nothing_written(tmp_path)


def test_an_unreachable_maven_repository_is_one_error_line(tmp_path):
    local = {"MAVEN_OPTS": f"-Dmaven.repo.local={tmp_path / 'm2'}"}  # not the machine's cache of Maven Central
    error = _one_error(_run(tmp_path, "--flink-maven-repository", "http://127.0.0.1:9/maven2", env=local))
    assert error.startswith(f"Error: Maven could not fetch {artifacts.COORDINATES} from http://127.0.0.1:9/maven2")
    _nothing_written(tmp_path)
    assert not list((tmp_path / "cache" / "flink-job-server").glob(".partial-*"))  # its staging is gone


def test_a_jar_whose_checksum_does_not_match_is_refused_before_anything_starts(tmp_path):
    target = _lock_copy(tmp_path)
    victim = target / next(iter(artifacts.read_lock()))
    victim.unlink()
    victim.write_bytes(b"not the jar Maven Central serves")
    error = _one_error(_run(tmp_path))
    assert error.startswith(f"Error: checksum mismatch for {victim}: expected SHA-256")
    assert not (tmp_path / "root").exists()


def test_a_missing_job_server_jar_is_one_error_line(tmp_path):
    error = _one_error(_run(tmp_path, "--flink-job-server-jar", str(tmp_path / "nope.jar")))
    assert error == f"Error: --flink-job-server-jar {tmp_path / 'nope.jar'}: no such file"
    assert not (tmp_path / "root").exists()


def test_a_job_server_that_cannot_start_is_one_error_line_and_leaves_nothing_running(tmp_path):
    """A 'jar' that is no jar: java exits at once; the run names it and its log, and nothing is left behind."""
    fake = tmp_path / "fake.jar"
    fake.write_bytes(b"no zip")
    error = _one_error(_run(tmp_path, "--flink-job-server-jar", str(fake)))
    assert "the Flink job server (pid" in error and "exited with code 1" in error
    assert fileio.exists(str(tmp_path / "root" / "flink" / job_server.LOG_FILE))


def _beam_labels(pipeline) -> set[str]:
    return {t.unique_name for t in pipeline.to_runner_api().components.transforms.values()}


def test_during_a_flink_run_tfx_readers_spread_the_files_over_partitions_and_read_the_same_records(tmp_path):
    """The same records as tfx_bsl's reader, through a GroupByKey of the files; and tf.Transform's deep copy of
    the read (what Transform does to read its input twice) runs on Beam's portable runner, whose optimizer refused
    the copy of a read spread by a Reshuffle (KeyError: 'ref_PCollection_…')."""
    import apache_beam as beam
    import tensorflow as tf
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.util import assert_that, equal_to
    from tensorflow_transform.beam import deep_copy
    from tfx_bsl.tfxio import record_based_tfxio, tf_example_record

    from pipeline.flink import record_reads

    written = []
    for shard in range(3):
        with tf.io.TFRecordWriter(str(tmp_path / f"data-{shard}.gz"), options="GZIP") as writer:
            for row in range(5):
                record = f"shard {shard} row {row}".encode()
                writer.write(record)
                written.append(record)
    original = record_based_tfxio.ReadTfRecord
    portable = PipelineOptions(["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=LOOPBACK"])

    def read(spread: bool, options: PipelineOptions | None = None) -> set[str]:
        reader = tf_example_record.TFExampleRecord(file_pattern=[str(tmp_path / "*.gz")])
        with contextlib.ExitStack() as stack:
            if spread:
                stack.enter_context(record_reads.spread_over_partitions())
            pipeline = beam.Pipeline(options=options)
            records = pipeline | reader.RawRecordBeamSource()
            assert_that(records, equal_to(written), label="Original")
            assert_that(deep_copy.deep_copy(records), equal_to(written), label="Copy")
            labels = _beam_labels(pipeline)
        pipeline.run().wait_until_finish()
        return labels

    spread, stock = read(spread=True), read(spread=False)
    assert any("SpreadFiles" in label for label in spread)
    assert not any("SpreadFiles" in label for label in stock)
    assert record_based_tfxio.ReadTfRecord is original
    read(spread=True, options=portable)
    with pytest.raises(FileNotFoundError, match="no TFRecord file matches"):
        with beam.Pipeline() as pipeline:
            pipeline | record_reads.read_tfrecords([str(tmp_path / "none-*.gz")])


def test_a_failed_beam_jobs_messages_are_not_repeated_above_the_error_line(capfd):
    """Beam's portable runner logs a failed job's messages (the Java exception) on the root logger from its
    message thread, and TFX logs "Execution N failed."; the quiet run's Error line says both already. Other errors
    still show."""
    import logging
    import threading

    from absl import logging as absl_logging

    from pipeline.local_runner import quiet_logs

    root, absl = logging.getLogger(), logging.getLogger("absl")
    saved = root.level, list(root.filters), list(absl.filters), [(h, h.level) for h in root.handlers]
    stream = logging.StreamHandler()  # stderr, as the CLI's
    root.addHandler(stream)
    try:
        quiet_logs()
        job = threading.Thread(
            target=logging.log, args=(logging.ERROR, "%s", "java.io.IOException: no buffers"),
            name="wait_until_finish_read",
        )  # fmt: skip
        job.start()
        job.join()
        absl_logging.error("Execution %d failed.", 7)
        logging.error("a real error")
    finally:
        root.removeHandler(stream)
        root.setLevel(saved[0])
        root.filters[:], absl.filters[:] = saved[1], saved[2]
        for handler, level in saved[3]:
            handler.setLevel(level)
    err = capfd.readouterr().err
    assert "a real error" in err
    assert "no buffers" not in err and "Execution 7 failed." not in err


def test_a_cancelled_stream_in_beams_reader_threads_is_dropped_and_other_thread_errors_are_not():
    """On Flink the runner ends each stage's data and state streams by cancelling them; Beam's reader threads die
    of it with a traceback on a successful run. The quiet run's hook drops exactly those."""
    import threading

    from pipeline import local_runner

    class Cancelled(Exception):
        def code(self):
            return "StatusCode.CANCELLED"

    def die(error: Exception) -> None:
        raise error

    reached = []
    saved, threading.excepthook = threading.excepthook, local_runner._ignoring_hang_ups(reached.append)
    try:
        for name, error in (
            ("read_state", Cancelled("state stream")),
            ("read_grpc_client_inputs", Cancelled("data stream")),
            ("read_state", ValueError("a real state error")),
            ("some_worker", Cancelled("elsewhere")),
        ):
            thread = threading.Thread(target=die, args=(error,), name=name)
            thread.start()
            thread.join()
    finally:
        threading.excepthook = saved
    assert [str(args.exc_value) for args in reached] == ["a real state error", "elsewhere"]
