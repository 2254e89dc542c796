"""One Beam Flink job server for a whole run: started before the DAG, stopped after it, whatever happens.

Beam's `FlinkRunner` starts a job-server JVM for every Beam pipeline (here: every TFX component) and stops them
only when Python exits. Instead the run starts one job server (`FlinkJobServerDriver`, with Flink embedded in
its JVM for `--flink-master [local]`, or in front of a cluster's JobManager), and every Beam step reaches it
with `PortableRunner --job_endpoint`. The endpoint travels in the environment (JOB_ENDPOINT_ENV), read by a
TFX placeholder when a component runs, so the port chosen this time does not enter the components' cache keys.

The JVM runs in a process group of its own, with Linux's parent-death signal set, and is stopped (TERM, then
KILL) when the `running` context exits: normally, on a failed component, on Ctrl-C, on SIGTERM (turned into an
exception by `terminate_on_sigterm`) and, through the parent-death signal, even when the launching Python dies.
Python SDK workers are LOOPBACK workers: threads of the launching process, gone with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from pipeline.config import FlinkConfig
from pipeline.flink import artifacts

JOB_ENDPOINT_ENV = "RECOMMENDER_FLINK_JOB_ENDPOINT"
STARTUP_TIMEOUT_S = 120
LOG_FILE = "flink-job-server.log"
# Flink's network buffers (32 kB each), allocated whole when a TaskManager starts. BATCH_FORCED (pipeline.config)
# makes every exchange a sort-based blocking partition, and a task slot runs a subtask of every vertex whose input
# is ready: Transform's Beam job on ML-100k is 572 Flink vertices (6,292 subtasks at 11 partitions), of which up to
# 170 ran at once on 2 slots. Each reserves SORT_SHUFFLE_BUFFERS for its output (Flink's default, 512, left none at
# 16 partitions in 256 MB) and at most READ_BUFFERS_PER_GATE per input gate (Flink's: 2 per upstream partition + 8);
# a reservation over the total fails the job ("Insufficient number of network buffers"). With 32 and 16 the running
# subtasks reserved about 8,160 buffers at the peak (estimated from Flink's REST API: each one's output and input
# gates), all of 256 MB, and Transform failed. With 16 and 8 the peak is half that, about 2,040 per slot (64 MB);
# NETWORK_MEMORY_PER_SLOT_MB gives each slot twice it. A reservation is a floor: a partition or gate takes more of
# the free buffers when there are some.
SORT_SHUFFLE_BUFFERS = 16
READ_BUFFERS_PER_GATE = 8
NETWORK_MEMORY_PER_SLOT_MB = 128
MIN_NETWORK_SLOTS = 2  # a one-slot TaskManager still gets 256 MB (what it ran with before it was per slot)


def network_memory_mb(slots: int) -> int:
    """Megabytes of network buffers for a TaskManager with `slots` task slots (embedded Flink: its parallelism)."""
    return NETWORK_MEMORY_PER_SLOT_MB * max(MIN_NETWORK_SLOTS, slots)


def network_settings(slots: int) -> dict[str, str | int]:
    """The network settings of every Flink that runs the steps here: embedded, or the local cluster's TaskManager.
    Embedded Flink's own default (64 MB) failed Transform at parallelism 2 in a clean-clone CI run."""
    memory = f"{network_memory_mb(slots)}m"
    return {
        "taskmanager.memory.network.min": memory,
        "taskmanager.memory.network.max": memory,
        "taskmanager.network.sort-shuffle.min-buffers": SORT_SHUFFLE_BUFFERS,
        "taskmanager.network.memory.read-buffer.required-per-gate.max": READ_BUFFERS_PER_GATE,
    }


TRANSLATING_HEAP = "512m"  # a job server in front of a cluster holds no data
# Out of heap, exit (the run then fails naming the step) rather than lose a gRPC thread and hang: measured at 2M
# ratings with a 2g heap, the job went on waiting for data that thread had been receiving. While no Beam step runs
# (Tuner, Trainer), a periodic collection gives the unused heap back to the machine, and a periodic trim the
# native memory freed (Flink's managed memory, gRPC's buffers): at 2M ratings, during the Trainer, one trim took the
# TaskManager from 1.06 to 0.84 GB (`jcmd PID System.trim_native_heap`). TrimNativeHeapInterval came with JDK
# 17.0.9; an older JVM ignores it instead of refusing to start.
JVM_MEMORY_FLAGS = (
    "-XX:+ExitOnOutOfMemoryError", "-XX:+UseG1GC", "-XX:G1PeriodicGCInterval=15000",
    "-XX:+IgnoreUnrecognizedVMOptions", "-XX:TrimNativeHeapInterval=15000",
)  # fmt: skip
# Flink 1.19 on Java 17: Kryo and Flink's closure cleaner reflect into these JDK packages.
_JAVA_OPENS = ("java.base/java.lang", "java.base/java.util", "java.base/java.lang.reflect", "java.base/java.nio")
_PR_SET_PDEATHSIG = 1


class JobServer:
    """A started job server: its endpoint, process and log."""

    def __init__(self, process: subprocess.Popen, endpoint: str, log_path: Path):
        self.process, self.endpoint, self.log_path = process, endpoint, log_path

    def alive(self) -> bool:
        return self.process.poll() is None

    def death_note(self) -> str | None:
        """If the job server has exited: which process, its exit code and where its log is; else None."""
        code = self.process.poll()
        if code is None:
            return None
        note = f"the Flink job server (pid {self.process.pid}) exited with code {code}; its log: {self.log_path}"
        if self.log_path.exists() and "java.lang.OutOfMemoryError" in self.log_path.read_text(errors="replace"):
            note += "; it ran out of Java heap: give it more with --flink-heap"
        return note


def free_port() -> int:
    """A TCP port nobody listens on now (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def flink_conf(config: FlinkConfig, conf_dir: Path, tmp_dir: Path) -> Path:
    """Writes the Flink configuration (parallelism, managed memory, spill directory) the job server reads."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    settings = {
        "parallelism.default": config.effective_parallelism,
        "taskmanager.numberOfTaskSlots": config.effective_parallelism,
        # Batch sorts and hash tables of the groupings live here and spill to io.tmp.dirs when it is full.
        "taskmanager.memory.managed.size": config.managed_memory,
        "io.tmp.dirs": str(tmp_dir),
        **network_settings(config.effective_parallelism),
        "rest.bind-address": "localhost",
        "rest.port": 0,
    }
    path = conf_dir / "flink-conf.yaml"
    path.write_text("".join(f"{key}: {value}\n" for key, value in settings.items()))
    return path


def command(
    config: FlinkConfig, class_path: Path | None, port: int, conf_dir: Path, master: str | None = None
) -> list[str]:
    """The `java` command line of the job server: a verified class path, or the user's jar. `master`: the local
    cluster's JobManager (local_cluster.py), where the steps run; the job server then only translates and submits
    them, in a small heap."""
    heap = TRANSLATING_HEAP if master else config.effective_heap
    java = [artifacts.require_java(), f"-Xmx{heap}", *jvm_flags()]
    if config.job_server_jar:
        java += ["-jar", config.job_server_jar]
    else:
        java += ["-cp", f"{class_path}/*", artifacts.MAIN_CLASS]
    return [
        *java,
        f"--flink-master={master or config.master}",
        f"--job-port={port}",
        "--artifact-port=0",
        "--expansion-port=0",
        f"--flink-conf-dir={conf_dir}",
    ]


def resolve(config: FlinkConfig, maven_repository: str | None = None, progress=None) -> Path | None:
    """Checks what starting the job server needs, before anything is started or written: Java, and the jar
    (given, or fetched with Maven and verified). Returns the class path directory (None with a given jar)."""
    artifacts.require_java()
    if config.job_server_jar:
        if not os.path.isfile(config.job_server_jar):
            raise artifacts.JobServerError(f"--flink-job-server-jar {config.job_server_jar}: no such file")
        return None
    return artifacts.fetch(repository=maven_repository, progress=progress)


def jvm_flags() -> list[str]:
    """The flags every JVM of a run gets after its heap: memory behaviour and the JDK packages Flink opens."""
    return [*JVM_MEMORY_FLAGS, *(f"--add-opens={name}=ALL-UNNAMED" for name in _JAVA_OPENS)]


def spill_dir(config: FlinkConfig, work_dir: Path) -> Path:
    """Where Flink spills: the user's --flink-tmp-dir, else `work_dir/tmp` (emptied after the run)."""
    return Path(config.tmp_dir) if config.tmp_dir else work_dir / "tmp"


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def start_jvm(command: list[str], log_path: Path) -> subprocess.Popen:
    """A JVM of the run: its output to `log_path`, in a process group of its own (stopped as one, and no Ctrl-C
    of ours reaches it), killed by Linux if the launching process dies."""
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )


@contextlib.contextmanager
def running(
    config: FlinkConfig, class_path: Path | None, work_dir: Path, master: str | None = None
) -> Iterator[JobServer]:
    """Starts the job server (in front of `master` if given), waits until it accepts connections, sets
    JOB_ENDPOINT_ENV; always stops it."""
    port, conf_dir = free_port(), work_dir / "conf"
    flink_conf(config, conf_dir, spill_dir(config, work_dir))
    log_path = work_dir / LOG_FILE
    process = start_jvm(command(config, class_path, port, conf_dir, master), log_path)
    server = JobServer(process, f"localhost:{port}", log_path)
    saved = os.environ.get(JOB_ENDPOINT_ENV)
    try:
        _wait_until_listening(server)
        os.environ[JOB_ENDPOINT_ENV] = server.endpoint
        yield server
    finally:
        if saved is None:
            os.environ.pop(JOB_ENDPOINT_ENV, None)
        else:
            os.environ[JOB_ENDPOINT_ENV] = saved
        stop(process)


def _wait_until_listening(server: JobServer) -> None:
    port = int(server.endpoint.rsplit(":", 1)[1])
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not server.alive():
            tail = server.log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["(empty log)"]
            raise artifacts.JobServerError(f"{server.death_note()}: {tail[0]}")
        with socket.socket() as probe:
            if probe.connect_ex(("localhost", port)) == 0:
                return
        time.sleep(0.2)
    raise artifacts.JobServerError(
        f"the Flink job server did not listen on port {port} within {STARTUP_TIMEOUT_S} s; its log: {server.log_path}"
    )


def stop(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    """TERM to the job server's process group, KILL after `grace_s`; returns once it is gone."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class Terminated(BaseException):
    """SIGTERM arrived: unwinds like Ctrl-C, so that every `finally` (the job server's stop) runs."""


@contextlib.contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """While inside: SIGTERM raises Terminated in the main thread instead of killing the process outright."""

    def handler(signum, frame):
        raise Terminated(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
