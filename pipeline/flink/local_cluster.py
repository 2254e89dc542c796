"""A Flink session cluster on this machine for one run (`--flink-master [local-cluster]`): a JobManager and one
TaskManager, started from the job server's verified jars, stopped with the run.

Why not only Flink embedded in the job server (`[local]`): Beam's Flink batch runner gives each partition of a Beam
step to the Python worker as one bundle and reads that bundle's output only once the whole partition has been sent
(its `FlinkExecutableStageFunction` drains the output when the bundle closes). Until then the output waits in the
JVM's heap, as `BeamFnApi.Elements` of about 10 MB each (measured with JFR at 1M ratings: 0.9 GB of the job
server's 1.4 GB of live byte arrays, held in ExampleGen's last step). So the memory a step holds is its output
divided by the number of partitions, times the partitions running at once. Embedded Flink ties the partitions to
the task slots (Flink's local executor sets the parallelism to slots x TaskManagers), so all of a step's output is
held at once whatever the settings. A session cluster does not: a step's data is cut into many partitions (one
per 1.5 MB of input by default, `partitions_for`) while its TaskManager runs as many at once as it has slots, each
holding a slice of the output. With `--execution_mode_for_batch=BATCH_FORCED` (pipeline.config) every exchange is
blocking, so Flink schedules the partitions slot by slot instead of all at once.

The JVMs run in process groups of their own with Linux's parent-death signal (job_server.start_jvm), and
are stopped (TERM, then KILL) when the `running` context exits, whatever the reason.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path

from pipeline.config import LOCAL_CLUSTER, FlinkConfig
from pipeline.flink import artifacts, job_server

MASTER = LOCAL_CLUSTER
STARTUP_TIMEOUT_S = 120
JOB_MANAGER_HEAP = "512m"
# Input bytes per partition when the parallelism is left to the run: at about 50 bytes of rating in the CSV and
# 1.4 kB of serialized example out of ExampleGen, 1.5 MB of input is some 40 MB of output per partition.
INPUT_BYTES_PER_PARTITION = 1_500_000
_JOB_MANAGER = "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint"
_TASK_MANAGER = "org.apache.flink.runtime.taskexecutor.TaskManagerRunner"
_FRAMEWORK = "128m"  # Flink's own heap and off-heap in the TaskManager (its defaults)
# Direct memory of the steps' code: Beam's gRPC channels to the Python worker. With none, 33 partitions of 2M
# ratings failed ExampleGen with "OutOfMemoryError: Direct buffer memory" in the TaskManager.
_TASK_OFF_HEAP = "256m"
_METASPACE = "256m"
_OVERHEAD = "192m"


def partitions_for(input_bytes: int, slots: int) -> int:
    """How many partitions a Beam step's data is cut into: one per INPUT_BYTES_PER_PARTITION, at least 2 per slot."""
    return max(2 * slots, math.ceil(input_bytes / INPUT_BYTES_PER_PARTITION))


def input_bytes(directory: str, names: Iterable[str]) -> int:
    """The size of the files the run reads (`names` in `directory`): ML-100k's folds and its ua/ub files, 14 of
    its 16 MB, are not read by the time or stratified split and do not count."""
    return sum(os.path.getsize(os.path.join(directory, name)) for name in names)


def _mb(size: str) -> int:
    """ "2g" / "512m" / "65536k" → megabytes (FlinkConfig has checked the form)."""
    number, unit = int(size[:-1]), size[-1].lower()
    return {"k": number // 1024, "m": number, "g": number * 1024}[unit]


def cluster_conf(config: FlinkConfig, conf_dir: Path, tmp_dir: Path, rpc_port: int, rest_port: int) -> Path:
    """The configuration both JVMs read: ports on localhost, the TaskManager's slots and memory, the spill dir."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    settings = {
        "jobmanager.rpc.address": "localhost",
        "jobmanager.bind-host": "localhost",
        "jobmanager.rpc.port": rpc_port,
        "jobmanager.memory.process.size": "768m",
        "rest.address": "localhost",
        "rest.bind-address": "localhost",
        "rest.port": rest_port,
        "blob.server.port": 0,
        "taskmanager.host": "localhost",
        "taskmanager.bind-host": "localhost",
        "taskmanager.rpc.port": 0,
        "taskmanager.data.port": 0,
        "taskmanager.numberOfTaskSlots": config.effective_slots,
        "taskmanager.cpu.cores": config.effective_slots,
        # A TaskManager started without Flink's scripts must be told every part of its memory.
        "taskmanager.memory.task.heap.size": config.effective_heap,
        "taskmanager.memory.managed.size": config.managed_memory,
        **job_server.network_settings(config.effective_slots),
        "taskmanager.memory.framework.heap.size": _FRAMEWORK,
        "taskmanager.memory.framework.off-heap.size": _FRAMEWORK,
        "taskmanager.memory.task.off-heap.size": _TASK_OFF_HEAP,
        "taskmanager.memory.jvm-metaspace.size": _METASPACE,
        "taskmanager.memory.jvm-overhead.min": _OVERHEAD,
        "taskmanager.memory.jvm-overhead.max": _OVERHEAD,
        "io.tmp.dirs": str(tmp_dir),
    }
    path = conf_dir / "flink-conf.yaml"
    path.write_text("".join(f"{key}: {value}\n" for key, value in settings.items()))
    return path


def commands(config: FlinkConfig, class_path: Path | None, conf_dir: Path) -> dict[str, list[str]]:
    """The `java` command lines of the JobManager and the TaskManager (the job server's class path or jar)."""
    java = artifacts.require_java()
    jars = config.job_server_jar if config.job_server_jar else f"{class_path}/*"
    heap = _mb(config.effective_heap) + _mb(_FRAMEWORK)
    network = job_server.network_memory_mb(config.effective_slots)
    direct = network + _mb(_FRAMEWORK) + _mb(_TASK_OFF_HEAP)  # as Flink's scripts add it
    task_manager = [
        java, f"-Xmx{heap}m", f"-XX:MaxDirectMemorySize={direct}m", f"-XX:MaxMetaspaceSize={_METASPACE}",
        *job_server.jvm_flags(), "-cp", jars, _TASK_MANAGER, "--configDir", str(conf_dir),
    ]  # fmt: skip
    job_manager = [
        java, f"-Xmx{JOB_MANAGER_HEAP}", *job_server.jvm_flags(), "-cp", jars, _JOB_MANAGER,
        "--configDir", str(conf_dir),
    ]  # fmt: skip
    return {"JobManager": job_manager, "TaskManager": task_manager}


class LocalCluster:
    """A started session cluster: its REST address (what the job server's --flink-master names) and processes."""

    def __init__(self, master: str, processes: dict[str, subprocess.Popen], log_dir: Path):
        self.master, self.processes, self.log_dir = master, processes, log_dir

    def death_note(self) -> str | None:
        """If one of its JVMs has exited: which one, its exit code and log; else None."""
        for name, process in self.processes.items():
            code = process.poll()
            if code is not None:
                return f"the Flink {name} (pid {process.pid}) exited with code {code}; its log: {self.log_dir}"
        return None


@contextlib.contextmanager
def running(config: FlinkConfig, class_path: Path | None, work_dir: Path) -> Iterator[LocalCluster]:
    """Starts the JobManager and the TaskManager, waits until the TaskManager's slots are registered; always
    stops both."""
    rpc_port, rest_port = job_server.free_port(), job_server.free_port()
    conf_dir = work_dir / "cluster-conf"
    cluster_conf(config, conf_dir, job_server.spill_dir(config, work_dir), rpc_port, rest_port)
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name, command in commands(config, class_path, conf_dir).items():
            processes[name] = job_server.start_jvm(command, work_dir / f"flink-{name.lower()}.log")
        cluster = LocalCluster(f"localhost:{rest_port}", processes, work_dir)
        _wait_for_slots(cluster, config.effective_slots)
        yield cluster
    finally:
        for process in reversed(list(processes.values())):
            job_server.stop(process)


def _wait_for_slots(cluster: LocalCluster, slots: int) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if note := cluster.death_note():
            raise artifacts.JobServerError(f"the local Flink cluster did not start: {note}")
        try:
            with urllib.request.urlopen(f"http://{cluster.master}/taskmanagers", timeout=2) as response:
                managers = json.load(response)["taskmanagers"]
            if sum(manager["slotsNumber"] for manager in managers) >= slots:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError, KeyError):
            pass  # not listening yet
        time.sleep(0.5)
    raise artifacts.JobServerError(
        f"the local Flink cluster did not register {slots} task slots within {STARTUP_TIMEOUT_S} s; "
        f"its logs: {cluster.log_dir}"
    )
