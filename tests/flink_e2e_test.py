"""The DAG's Beam steps on Apache Flink (embedded in Beam's job server), through `recommender run --beam-runner
flink` as a user types it, on the shared run's data (tests/e2e_run.py: 3,202 lines, two of them malformed):

1. the job server is killed while Transform is about to submit its Beam job: the run fails naming Transform and
   the dead job server, nothing is pushed, nothing of the run is left running;
2. SIGTERM (what Kubernetes and `kill` send) while the run waits in Transform: it stops, and so does its JVM;
3. the next run resumes from the cached ExampleGen and StatisticsGen (both ran on Flink), runs the rest on a
   Flink session cluster started for it on this machine (`--flink-master [local-cluster]`), and its outputs equal
   the DirectRunner run's (`first_run`): the same examples as sorted sets, the same quarantine, vocabularies and
   statistics.

Steps are module fixtures, each requesting the one before it (see tests/faults_e2e_test.py for the pause hook).
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from pipeline import pipeline as dag
from pipeline.config import DEFAULT_PIPELINE_NAME, METADATA_FILE_NAME
from recommender import equivalence
from recommender.summary import summarize

pytestmark = pytest.mark.e2e

HOOKS = Path(__file__).parent / "hooks"
PAUSE_IN_TRANSFORM = "tensorflow_transform.vocabulary"  # called while Transform builds its Beam pipeline


@pytest.fixture(scope="module")
def ws(tmp_path_factory, workspace) -> dict:
    root = tmp_path_factory.mktemp("flink")
    return {"data": workspace["data"], "root": root / "pipeline", "serving": root / "serving"}


def command(ws: dict) -> list[str]:
    return [
        sys.executable, "-m", "recommender.cli", "run", "--beam-runner", "flink", "--flink-parallelism", "2",
        "--input-dir", str(ws["data"]), "--pipeline-root", str(ws["root"]), "--serving-dir", str(ws["serving"]),
        "--epochs", "2", "--tuner-trials", "0", "--retrieval-epochs", "1", "--rmse-upper-bound", "2.0",
    ]  # fmt: skip


def start_paused(ws: dict, flag: Path) -> subprocess.Popen:
    """A Flink run whose first vocabulary call (inside Transform) waits until `flag` is deleted."""
    paths = os.pathsep.join(filter(None, [str(HOOKS), os.environ.get("PYTHONPATH")]))
    environment = {
        **os.environ, "PYTHONPATH": paths, "PAUSE_IN": PAUSE_IN_TRANSFORM, "PAUSE_FILE": str(flag),
        "PAUSE_RESUME": "1", "PYTHONUNBUFFERED": "1",
    }  # fmt: skip
    return subprocess.Popen(
        command(ws), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment, start_new_session=True
    )


def wait_for(flag: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 600
    while not flag.exists():
        assert process.poll() is None, f"the run ended before Transform:\n{process.communicate()}"
        assert time.monotonic() < deadline, "the run never reached Transform"
        time.sleep(0.2)


def job_servers(ws: dict) -> list[psutil.Process]:
    """The JVMs whose command line names this root's Flink configuration: this test's job servers."""
    conf = f"--flink-conf-dir={ws['root'] / 'flink' / 'conf'}"
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if conf in (process.info["cmdline"] or []):
            found.append(process)
    return found


def gone_or_zombie(process: psutil.Process, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, f"{process.pid} still running"
        time.sleep(0.1)


def alive(children: list[psutil.Process]) -> list[psutil.Process]:
    return [child for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]


@pytest.fixture(scope="module")
def job_server_killed(ws, tmp_path_factory) -> dict:
    """Run 1: the job server is killed while Transform waits; then Transform goes on and meets a dead server."""
    flag = tmp_path_factory.mktemp("pause") / "paused"
    process = start_paused(ws, flag)
    wait_for(flag, process)
    [server] = job_servers(ws)
    children = psutil.Process(process.pid).children(recursive=True)
    server.kill()
    gone_or_zombie(server)  # the run reaps it when it next polls it
    flag.unlink()  # Transform goes on, and submits its Beam job to a job server that is gone
    out, err = process.communicate(timeout=600)
    return {"code": process.returncode, "out": out, "err": err, "server": server.pid, "children": children}


def test_a_dead_job_server_fails_the_run_naming_the_component_and_the_server(ws, job_server_killed):
    assert job_server_killed["code"] == 1, job_server_killed["err"]
    errors = [line for line in job_server_killed["err"].splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in job_server_killed["err"], job_server_killed["err"]
    assert errors[0].startswith(f"Error: component {dag.TRANSFORM} failed:")
    assert f"the Flink job server (pid {job_server_killed['server']}) exited with code -9" in errors[0]
    assert "Flink job server at localhost:" in job_server_killed["out"]  # what the run said it started
    assert not (ws["serving"]).exists() or not any(ws["serving"].rglob("saved_model.pb"))
    assert not alive(job_server_killed["children"]) and not job_servers(ws)


@pytest.fixture(scope="module")
def terminated(ws, job_server_killed, tmp_path_factory) -> dict:
    """Run 2: SIGTERM to the run while it waits in Transform."""
    flag = tmp_path_factory.mktemp("pause") / "paused"
    process = start_paused(ws, flag)
    wait_for(flag, process)
    [server] = job_servers(ws)
    children = psutil.Process(process.pid).children(recursive=True)
    assert server in children  # the run's own job server
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    return {"code": process.returncode, "out": out, "err": err, "server": server, "children": children}


def test_sigterm_stops_the_run_and_its_job_server(ws, terminated):
    assert terminated["code"] == 1, terminated["err"]
    assert "Error: stopped: terminated by signal 15; the Flink job server was stopped too" in terminated["err"]
    assert not terminated["server"].is_running() and not job_servers(ws)
    assert not alive(terminated["children"])


def cluster_jvms(ws: dict) -> list[psutil.Process]:
    """The JobManager and TaskManager JVMs of this root's local Flink cluster."""
    conf = str(ws["root"] / "flink" / "cluster-conf")
    return [p for p in psutil.process_iter(["cmdline"]) if conf in (p.info["cmdline"] or [])]


@pytest.fixture(scope="module")
def resumed(ws, terminated) -> subprocess.CompletedProcess:
    """Run 3: nothing in the way; its Beam steps on a Flink session cluster started for it on this machine, with
    the cluster's defaults as a user gets them: a task slot per core, partitions by input size (at least two per
    slot). Transform's job is hundreds of Flink vertices, and each slot runs a subtask of every ready one: with two
    slots this ran out of network buffers before they were sized per slot (pipeline/flink/job_server.py)."""
    defaults = command(ws)
    del defaults[defaults.index("--flink-parallelism") : defaults.index("--flink-parallelism") + 2]
    result = subprocess.run(
        [*defaults, "--flink-master", "[local-cluster]"], capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_the_next_run_resumes_from_the_components_the_failed_runs_finished(ws, resumed):
    """The Beam args are the same on embedded Flink and on the local cluster: the cache does not see the change."""
    config_states = {e.component: e.state for e in summarize(_config(ws)).executions}
    assert config_states[dag.EXAMPLE_GEN] == config_states[dag.STATISTICS_GEN] == "CACHED"
    for component in (dag.TRANSFORM, dag.TRAINER, dag.EVALUATOR, dag.PUSHER):
        assert config_states[component] == "COMPLETE", component
    assert "a Flink cluster started on this machine at localhost:" in resumed.stdout
    slots = os.cpu_count()
    assert f"{slots} task slot{'s' * (slots != 1)}, parallelism {2 * slots}," in resumed.stdout
    assert not job_servers(ws) and not cluster_jvms(ws)
    assert "Transform                    finished in" in resumed.stdout


def test_flink_outputs_equal_the_direct_runners(ws, resumed, first_run, workspace):
    flink = equivalence.run_outputs(str(ws["root"] / METADATA_FILE_NAME), DEFAULT_PIPELINE_NAME)
    direct = equivalence.run_outputs(  # the shared first run: other modules add later runs (other splits) to its root
        str(workspace["root"] / METADATA_FILE_NAME), DEFAULT_PIPELINE_NAME, first_run["summary"].run_id
    )
    figures, differences = equivalence.compare(direct, flink)
    assert differences == []
    assert figures["quarantine"][0]["rejected"] == 2  # the two malformed lines, quarantined by both
    ratings_lines = len((workspace["data"] / "u.data").read_bytes().split(b"\n")) - 1  # the malformed 2 included
    assert sum(rows for rows, _ in figures["rows"].values()) == ratings_lines - 2 and figures["vocabularies"] >= 5


def test_the_comparison_sees_one_changed_example(ws, resumed, tmp_path):
    """The oracle can fail: a copy of the Flink run's examples with one test rating changed differs."""
    import dataclasses
    import shutil

    import tensorflow as tf

    from transform.features import LABEL_KEY

    flink = equivalence.run_outputs(str(ws["root"] / METADATA_FILE_NAME), DEFAULT_PIPELINE_NAME)
    copy = tmp_path / "examples"
    shutil.copytree(flink.examples, copy)
    rows = [tf.train.Example.FromString(row) for row in equivalence.sorted_examples(flink.examples, "test")]
    label = rows[0].features.feature[LABEL_KEY]
    getattr(label, label.WhichOneof("kind")).value[0] += 1
    for old in (copy / "Split-test").iterdir():
        old.unlink()
    with tf.io.TFRecordWriter(str(copy / "Split-test" / "data.gz"), options="GZIP") as writer:
        for row in rows:
            writer.write(row.SerializeToString())
    _, differences = equivalence.compare(flink, dataclasses.replace(flink, examples=str(copy)))
    assert len(differences) == 1 and differences[0].startswith("test: examples differ"), differences
    assert differences[0].endswith("2 in one only)")  # the changed row on one side, the original on the other


def _config(ws: dict):
    from pipeline.config import PipelineConfig

    return PipelineConfig(pipeline_root=str(ws["root"]), data_dir=str(ws["data"]), serving_dir=str(ws["serving"]))
