"""Faults injected into real `recommender run` processes on one pipeline root:

1. kill -9 inside Transform; 2. a second run refused while another one holds the store, and
kill -9 inside the Trainer; 3. a run that completes, reusing what the killed runs finished;
4. a truncated TFRecord in an upstream artifact. Nothing is ever pushed by a failed or killed
run, and a planted credential never reaches the logs or the pipeline root.

Each step is a fixture requesting the one before, so every test can run alone. A kill happens while
the step is certainly running: tests/hooks/sitecustomize.py blocks the step's function (after it
creates a flag file) until the test kills the process group.
"""

import gzip
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ml_metadata.proto import metadata_store_pb2

from pipeline import metadata
from pipeline import pipeline as dag
from pipeline.config import DEFAULT_PIPELINE_NAME, METADATA_FILE_NAME

pytestmark = pytest.mark.e2e

PLANTED = "planted-credential-8c1f2e9a7b"  # in the environment of every run; must never be written anywhere
UPSTREAM = (dag.EXAMPLE_GEN, dag.STATISTICS_GEN, dag.SCHEMA_IMPORTER, dag.EXAMPLE_VALIDATOR, dag.VALIDATION_GATE)


@pytest.fixture(scope="module")
def ws(tmp_path_factory, synthetic_dir) -> dict:
    root = tmp_path_factory.mktemp("faults")
    return {"data": synthetic_dir, "root": root / "pipeline", "serving": root / "serving", "logs": []}


def command(ws: dict, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "recommender.cli", "run",
        "--input-dir", str(ws["data"]), "--pipeline-root", str(ws["root"]), "--serving-dir", str(ws["serving"]),
        "--epochs", "2", "--tuner-trials", "0", "--retrieval-epochs", "1", *extra,
        "--rmse-upper-bound", "2.0",  # these tests are about faults, not quality: 2 epochs on 1,785 examples
    ]  # fmt: skip


HOOKS = Path(__file__).parent / "hooks"  # sitecustomize.py: PAUSE_IN blocks a step until the test kills it
# Functions only that step calls. Not the entry points themselves: TFX reloads the module of a
# `preprocessing_fn`/`run_fn` before calling it, which would undo the hook's patch.
PAUSE_IN_TRANSFORM = "tensorflow_transform.vocabulary"  # called by preprocessing_fn while Transform analyses
PAUSE_IN_TRAINER = "components.trainer.data.train_and_eval"  # called by run_fn (no Tuner in these runs)


def env(**extra: str) -> dict:
    return {**os.environ, "AWS_SECRET_ACCESS_KEY": PLANTED, "KFP_TOKEN": PLANTED, "PYTHONUNBUFFERED": "1", **extra}


def start(ws: dict, pause_in: str, flag: Path) -> subprocess.Popen:
    """A run whose function `pause_in` (module.function) blocks forever once called, after creating `flag`."""
    paths = os.pathsep.join(filter(None, [str(HOOKS), os.environ.get("PYTHONPATH")]))
    return subprocess.Popen(
        command(ws), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=env(PYTHONPATH=paths, PAUSE_IN=pause_in, PAUSE_FILE=str(flag)),
        start_new_session=True,  # its own process group: kill -9 reaches any child too
    )  # fmt: skip


def kill_when_paused(ws: dict, process: subprocess.Popen, flag: Path, while_paused=None) -> str:
    """Waits until the paused step has created `flag` (it is then blocked inside that step), calls
    `while_paused`, then kill -9s the process group; returns everything the run printed."""
    deadline = time.monotonic() + 600
    while not flag.exists():
        assert process.poll() is None, f"the run ended before pausing:\n{process.stdout.read()}"
        assert time.monotonic() < deadline, "the run never reached the paused step"
        time.sleep(0.2)
    if while_paused is not None:
        while_paused()
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    output = process.stdout.read()
    ws["logs"].append(output)
    return output


def run_executions(ws: dict) -> list[list[metadata.ComponentExecution]]:
    store = metadata.open_store(str(ws["root"] / METADATA_FILE_NAME))
    return [
        metadata.run_executions(store, DEFAULT_PIPELINE_NAME, run)
        for run in metadata.run_ids(store, DEFAULT_PIPELINE_NAME)
    ]


def by_component(executions: list[metadata.ComponentExecution]) -> dict[str, metadata.ComponentExecution]:
    return {e.component: e for e in executions}


def live_outputs(execution: metadata.ComponentExecution) -> list:
    return [
        a for artifacts in execution.outputs.values() for a in artifacts if a.state == metadata_store_pb2.Artifact.LIVE
    ]


def serving_snapshot(ws: dict) -> dict:
    base = ws["serving"]
    return {str(p.relative_to(base)): p.stat().st_size for p in base.rglob("*")} if base.exists() else {}


# Each step is a module fixture that requests the step before it, so any test (alone, with -k, or in
# any order) first brings the shared pipeline root to the state it asserts on.
@pytest.fixture(scope="module")
def killed_in_transform(ws, tmp_path_factory) -> str:
    """Run 1, killed while blocked inside Transform's preprocessing_fn; returns what it printed."""
    flag = tmp_path_factory.mktemp("pause") / "paused"
    return kill_when_paused(ws, start(ws, PAUSE_IN_TRANSFORM, flag), flag)


@pytest.fixture(scope="module")
def killed_in_trainer(ws, killed_in_transform, tmp_path_factory) -> dict:
    """Run 2, killed while blocked inside the Trainer's run_fn; while it held the store, a third
    `recommender run` was started and refused. Returns both outputs."""
    flag = tmp_path_factory.mktemp("pause") / "paused"
    refused = {}

    def try_second_run():  # called once the paused run certainly holds the store
        result = subprocess.run(command(ws), capture_output=True, text=True, env=env(), timeout=300)
        refused.update(code=result.returncode, out=result.stdout + result.stderr)
        ws["logs"].append(refused["out"])

    output = kill_when_paused(ws, start(ws, PAUSE_IN_TRAINER, flag), flag, try_second_run)
    return {"output": output, "refused": refused}


@pytest.fixture(scope="module")
def completed(ws, killed_in_trainer) -> subprocess.CompletedProcess:
    """Run 3: nothing in the way."""
    result = subprocess.run(command(ws), capture_output=True, text=True, env=env(), timeout=900)
    ws["logs"].append(result.stdout + result.stderr)
    return result


def test_kill_during_transform_publishes_nothing(ws, killed_in_transform):
    output = killed_in_transform
    assert "Transform                    started" in output and "Transform                    finished" not in output
    run = run_executions(ws)[0]
    components = by_component(run)
    assert {c: components[c].state for c in UPSTREAM} == {c: "COMPLETE" for c in UPSTREAM}
    assert components[dag.TRANSFORM].state == "RUNNING"  # killed: never completed
    assert live_outputs(components[dag.TRANSFORM]) == []
    assert dag.TRAINER not in components


def test_second_run_is_refused_while_one_runs_then_kill_during_trainer(ws, killed_in_trainer):
    output, refused = killed_in_trainer["output"], killed_in_trainer["refused"]
    assert "Trainer                      started" in output and "Trainer                      finished" not in output
    assert refused["code"] == 1, refused["out"]
    assert "Error: another run is already using" in refused["out"] and "pid " in refused["out"]
    assert "Traceback" not in refused["out"]

    runs = run_executions(ws)
    assert len(runs) >= 2
    first, second = (by_component(run) for run in runs[:2])  # the refused run never touched the store
    assert {c: second[c].state for c in UPSTREAM} == {c: "CACHED" for c in UPSTREAM}
    assert second[dag.TRANSFORM].state == "COMPLETE"  # the killed Transform was redone, not reused
    assert second[dag.TRAINER].state == "RUNNING" and live_outputs(second[dag.TRAINER]) == []
    assert dag.PUSHER not in first and dag.PUSHER not in second  # neither killed run got near a push


def test_next_run_completes_reusing_what_the_killed_runs_finished(ws, completed):
    assert completed.returncode == 0, completed.stdout + completed.stderr
    runs = run_executions(ws)
    first, second, third = (by_component(run) for run in runs[:3])
    assert {c: third[c].state for c in (*UPSTREAM, dag.TRANSFORM)} == {c: "CACHED" for c in (*UPSTREAM, dag.TRANSFORM)}
    assert third[dag.TRAINER].state == third[dag.PUSHER].state == "COMPLETE"
    # The cached Transform outputs are the second run's (completed) ones, never the killed first run's.
    transformed = third[dag.TRANSFORM].output("transformed_examples")
    assert transformed.id == second[dag.TRANSFORM].output("transformed_examples").id
    assert transformed.id not in {a.id for a in first[dag.TRANSFORM].outputs.get("transformed_examples", [])}
    assert third[dag.TRAINER].inputs["examples"][0].id == transformed.id
    pushed = third[dag.PUSHER].output("pushed_model")
    assert pushed.custom_properties["pushed"].int_value == 1
    assert Path(pushed.custom_properties["pushed_destination"].string_value, "saved_model.pb").is_file()


def cut_mid_record(data: bytes) -> bytes:
    """TFRecord bytes cut in the middle of the payload of the record halfway through the file.

    (Framing: 8-byte little-endian length, 4-byte CRC, payload, 4-byte CRC. A cut exactly between
    records cannot be detected by any reader: the format has no footer.)
    """
    offsets, position = [], 0
    while position < len(data):
        offsets.append(position)
        position += 8 + 4 + struct.unpack("<Q", data[position : position + 8])[0] + 4
    start = offsets[len(offsets) // 2]
    return data[: start + 12 + 3]


@pytest.fixture(scope="module")
def truncated(ws, completed) -> dict:
    """Run 4, after a record of the transformed train split was cut mid-record."""
    transformed = by_component(run_executions(ws)[2])[dag.TRANSFORM].output("transformed_examples")
    [record_file] = sorted(Path(transformed.uri, "Split-train").glob("*.gz"))
    record_file.write_bytes(gzip.compress(cut_mid_record(gzip.decompress(record_file.read_bytes()))))
    ws["truncated"] = record_file
    before = serving_snapshot(ws)
    result = subprocess.run(command(ws, "--epochs", "3"), capture_output=True, text=True, env=env(), timeout=900)
    ws["logs"].append(result.stdout + result.stderr)
    return {"result": result, "artifact": transformed, "file": record_file, "before": before}


def test_truncated_upstream_records_fail_the_consumer_naming_the_artifact(ws, truncated):
    result, transformed, record_file = truncated["result"], truncated["artifact"], truncated["file"]
    assert result.returncode == 1
    assert "Trainer                      FAILED" in result.stdout
    assert "Error: component Trainer failed: its input artifact 'examples'" in result.stderr
    assert f"(id {transformed.id}, {transformed.uri}) is corrupted: {record_file}: " in result.stderr
    assert "Traceback" not in result.stderr
    assert serving_snapshot(ws) == truncated["before"]  # nothing pushed


def test_planted_credential_is_never_logged_or_written(ws, truncated):
    assert len(ws["logs"]) == 5  # every run above, the refused one included
    for output in ws["logs"]:
        assert PLANTED not in output
    for path in ws["root"].rglob("*"):
        if path.is_file():
            assert PLANTED.encode() not in path.read_bytes(), path
            if path.suffix == ".gz" and path != ws.get("truncated"):
                assert PLANTED.encode() not in gzip.decompress(path.read_bytes()), path
