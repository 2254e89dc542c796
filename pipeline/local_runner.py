"""Running the DAG locally: LocalDagRunner, Beam DirectRunner, SQLite MLMD under the pipeline root.

Prints one line per component (started / finished in N s / cached) instead of
TFX's INFO logs; the caller reads the run's outcome from ML Metadata (recommender.summary).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import logging
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable

import tensorflow as tf
from absl import logging as absl_logging
from tfx import v1 as tfx

from components.example_gen import layouts
from components.example_gen.reading import PROGRESS_LOGGER  # our executors' progress lines
from pipeline import metadata, native_memory
from pipeline import pipeline as dag
from pipeline.config import PipelineConfig

Echo = Callable[[str], None]


class PipelineRunError(RuntimeError):
    """A component failed; the message names it and the root cause."""


class AlreadyRunningError(PipelineRunError):
    """Another local run holds the pipeline's ML Metadata store (SQLite takes one writer)."""


@contextlib.contextmanager
def exclusive_run(metadata_file: str):
    """Holds an exclusive lock on `<metadata_file>.lock` for the duration of a run.

    A second run on the same store is refused at once (SQLite MLMD is not safe for two
    writers). The lock is an flock, so the kernel releases it when the holder dies, even
    by `kill -9`: a killed run never blocks the next one.
    """
    path = f"{metadata_file}.lock"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    handle = open(path, "a+")  # held open (and locked) for the whole run
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise AlreadyRunningError(
            f"another run is already using {metadata_file} ({holder}); wait for it to finish, "
            "or use another --pipeline-root / --metadata-path"
        ) from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


# Substrings of TensorFlow/zlib errors raised when a record file is damaged.
_CORRUPTION_MARKERS = ("DataLoss", "corrupted record", "truncated record", "inflate()", "data loss", "CRC")


def corrupted_input(executions: list[metadata.ComponentExecution], component: str) -> str | None:
    """If `component`'s failed execution read a damaged record file, which artifact and file it was."""
    failed = [e for e in executions if e.component == component and e.state not in ("COMPLETE", "CACHED")]
    for execution in failed:
        for key, artifacts in execution.inputs.items():
            for artifact in artifacts:
                problem = _first_damaged_file(artifact.uri)
                if problem:
                    return f"input artifact '{key}' (id {artifact.id}, {artifact.uri}) is corrupted: {problem}"
    return None


def _first_damaged_file(uri: str) -> str | None:
    """The first gzipped TFRecord file under `uri` that cannot be read to the end, with TF's message."""
    for path in sorted(tf.io.gfile.glob(os.path.join(uri, "*", "*.gz")) + tf.io.gfile.glob(os.path.join(uri, "*.gz"))):
        try:
            for _ in tf.data.TFRecordDataset(path, compression_type="GZIP"):
                pass
        except (tf.errors.DataLossError, tf.errors.OutOfRangeError, tf.errors.InvalidArgumentError) as error:
            return f"{path}: {error.message.splitlines()[0].split(' [Op:')[0]}"
    return None


# Seconds between "still running" lines of a long component.
HEARTBEAT_S = 30.0


class _ProgressHandler(logging.Handler):
    """Turns LocalDagRunner/launcher log records into one progress line per component, a line every HEARTBEAT_S
    while one runs, and the progress lines of our own executors (PROGRESS_LOGGER, e.g. ExampleGen's lines read)."""

    def __init__(self, echo: Echo, heartbeat_s: float = HEARTBEAT_S):
        super().__init__(level=logging.INFO)
        self._echo = echo
        self.current: str | None = None
        self._started = 0.0
        self._cached = False
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat, args=(heartbeat_s,), daemon=True)
        self._heartbeat.start()

    def _beat(self, interval: float) -> None:
        shown = (None, 0)  # (component run, beats shown for it)
        while not self._stop.wait(min(1.0, interval)):
            current, started = self.current, self._started
            if not current:
                continue
            elapsed = time.monotonic() - started
            beats = int(elapsed // interval)
            if beats and shown != ((current, started), beats):
                shown = ((current, started), beats)
                self._echo(f"  {current:<28} running, {elapsed:.0f} s")

    def close(self) -> None:
        self._stop.set()
        super().close()

    def emit(self, record: logging.LogRecord) -> None:
        message, args = record.msg, record.args
        if record.name == PROGRESS_LOGGER and self.current:
            self._echo(f"  {self.current:<28} {record.getMessage()}")
        elif message == "Component %s is running.":
            self.current, self._started, self._cached = args[0], time.monotonic(), False
            self._echo(f"  {self.current:<28} started")
        elif message == "A cached execution %d is used.":
            self._cached = True
        elif message == "Component %s is finished." and self.current:
            outcome = "cached" if self._cached else f"finished in {time.monotonic() - self._started:.1f} s"
            self._echo(f"  {self.current:<28} {outcome}")
            self.current = None

    def failed(self) -> None:
        if self.current:
            self._echo(f"  {self.current:<28} FAILED after {time.monotonic() - self._started:.1f} s")


def quiet_logs() -> None:
    """Only errors from TFX/TF/Beam; progress lines come from _ProgressHandler."""
    warnings.filterwarnings("ignore")
    logging.getLogger().setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.WARNING)
    absl_logging.get_absl_handler().setLevel(logging.ERROR)
    for name in ("apache_beam", "tensorflow"):
        logging.getLogger(name).setLevel(logging.ERROR)
    tf.get_logger().setLevel(logging.ERROR)
    # On Flink (LOOPBACK workers) the job server closes each stage's data stream when the stage is done, and
    # Beam's worker logs that as an error with a stack, then its reader thread dies of it: pages of noise per
    # stage. A real failure still fails the Beam job, whose error the run reports.
    logging.getLogger("apache_beam.runners.worker.data_plane").setLevel(logging.CRITICAL)
    # A failed Beam job's messages (Beam's portable runner logs them on the root logger, Java exception included)
    # and TFX's "Execution N failed.": the run's Error line names the component and the cause already.
    for logger in (logging.getLogger(), logging.getLogger("absl")):
        if not any(isinstance(f, _RepeatsOfTheFailure) for f in logger.filters):
            logger.addFilter(_RepeatsOfTheFailure())
    if not getattr(threading.excepthook, "ignores_hang_ups", False):
        threading.excepthook = _ignoring_hang_ups(threading.excepthook)


class _RepeatsOfTheFailure(logging.Filter):
    """Drops what only repeats a failure the run reports itself (see quiet_logs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        job_message = record.threadName == "wait_until_finish_read" and record.levelno >= logging.ERROR
        return not (job_message or record.msg == "Execution %d failed.")


# Beam's worker threads that read a stream from the runner: the data plane's, and the state API's (its stream is
# cancelled the same way when a stage ends; seen after a successful ML-100k run on the local Flink cluster).
_STREAM_READERS = ("read_grpc_client_inputs", "read_state")


def _ignoring_hang_ups(hook):
    """A threading.excepthook that drops a cancelled gRPC stream in Beam's stream reader threads."""

    def excepthook(args) -> None:
        code = getattr(args.exc_value, "code", None)
        cancelled = callable(code) and "CANCELLED" in str(code())
        if not (cancelled and args.thread is not None and args.thread.name in _STREAM_READERS):
            hook(args)

    excepthook.ignores_hang_ups = True
    return excepthook


def _root_cause(error: BaseException) -> BaseException:
    """The innermost exception of the chain; a `raise ... from None` ends the chain there."""
    seen = set()
    while id(error) not in seen:
        seen.add(id(error))
        below = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
        if below is None:
            break
        error = below
    return error


@contextlib.contextmanager
def _program_name_only_argv():
    """sys.argv without this process's own options while the DAG runs.

    TFX's Beam executors parse `sys.argv + beam args` as absl flags (BaseBeamExecutor): a caller's option
    that absl also defines would be read as TFX's — `recommender run -v` is absl's `-v N` (verbosity), which
    took the first Beam arg as its number and failed ExampleGen.
    """
    argv = sys.argv
    sys.argv = argv[:1]
    try:
        yield
    finally:
        sys.argv = argv


@contextlib.contextmanager
def _scratch_temp_dir():
    """A temp directory of its own while the DAG runs (this process and its children), removed after.

    What TFX and Beam leave in the temp directory goes with it: above all, when the Beam args name no
    worker dependencies (pipeline.config.direct_runner_args), an sdist of TFX per Beam component, 49 MB
    each, which TFX never deletes.
    """
    scratch = tempfile.mkdtemp(prefix="recommender-run-")
    saved_dir, saved_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir, os.environ["TMPDIR"] = scratch, scratch
    try:
        yield
    finally:
        tempfile.tempdir = saved_dir
        if saved_env is None:
            os.environ.pop("TMPDIR")
        else:
            os.environ["TMPDIR"] = saved_env
        shutil.rmtree(scratch, ignore_errors=True)


def run_local(config: PipelineConfig, echo: Echo | None = None, verbose: bool = False) -> str:
    """Runs the whole DAG with LocalDagRunner and returns the run's id; raises PipelineRunError on failure.

    What the run produced is read back from ML Metadata by `recommender.summary.summarize`.
    """
    if echo is None:
        stream = sys.stdout  # bound now: stdout is redirected while the DAG runs

        def echo(line: str) -> None:
            print(line, file=stream, flush=True)

    if "://" not in config.data_dir:  # A local directory: name every missing file before anything starts.
        missing = layouts.missing_files(config.data_dir, layouts.LAYOUTS[config.layout], config.split_protocol)
        if missing:
            raise PipelineRunError(
                f"{config.data_dir} lacks {', '.join(missing)} (needed by the {config.split_protocol!r} split)"
            )
    try:
        os.makedirs(config.pipeline_root, exist_ok=True)
    except OSError as error:
        raise PipelineRunError(f"cannot create the pipeline root {config.pipeline_root}: {error}") from error
    absl_logging.set_verbosity(absl_logging.INFO)
    if not verbose:
        quiet_logs()
    progress = _ProgressHandler(echo)
    absl_logger = logging.getLogger("absl")
    absl_logger.addHandler(progress)
    progress_logger = logging.getLogger(PROGRESS_LOGGER)
    progress_logger.setLevel(logging.INFO)
    progress_logger.addHandler(progress)
    propagate = absl_logger.propagate
    if not verbose:  # Other libraries add root handlers mid-run; keep absl INFO/WARNING off them.
        absl_logger.propagate = False
        errors = logging.StreamHandler(sys.stderr)
        errors.setLevel(logging.ERROR)
        absl_logger.addHandler(errors)
    connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_file)
    pipeline = dag.create_pipeline(config, connection)
    # KerasTuner prints its search space and results to stdout; keep them out of the progress view.
    stdout = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    try:
        with exclusive_run(config.metadata_file):
            echo(f"Running {config.pipeline_name} (pipeline root {config.pipeline_root})")
            with stdout, _program_name_only_argv(), _scratch_temp_dir(), native_memory.trimmed_periodically():
                tfx.orchestration.LocalDagRunner().run(pipeline)
    except AlreadyRunningError:
        raise
    except Exception as error:  # Re-raised with the component and root cause named.
        progress.failed()
        cause = _root_cause(error)
        message = f"component {progress.current or '?'} failed: {type(cause).__name__}: {cause}"
        if progress.current and any(marker in f"{type(cause).__name__}: {cause}" for marker in _CORRUPTION_MARKERS):
            store = metadata.open_store(config.metadata_file)
            run_id = metadata.run_ids(store, config.pipeline_name)[-1]
            damaged = corrupted_input(metadata.run_executions(store, config.pipeline_name, run_id), progress.current)
            if damaged:
                message = (
                    f"component {progress.current} failed: its {damaged}. "
                    "Re-create it with --no-cache (or delete the pipeline root)."
                )
        raise PipelineRunError(message) from error
    finally:
        absl_logger.removeHandler(progress)
        progress_logger.removeHandler(progress)
        progress.close()
        absl_logger.propagate = propagate
        if not verbose:
            absl_logger.removeHandler(errors)
    return metadata.run_ids(metadata.open_store(config.metadata_file), config.pipeline_name)[-1]
