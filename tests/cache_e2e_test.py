"""What TFX's cache may reuse after an edit: the edited step and everything after it run again, nothing before.

The project's code (packages and setup.py) is copied to a temporary folder and run from there
(`python -m recommender.cli` with that folder first on sys.path), so each test edits a real copy of a module
or of the curated schema between runs on one pipeline root: ExampleGen, Trainer and Pusher code, and
`schemas/schema.pbtxt`. (Measured, and left out of CI for time: an edit of `transform/preprocessing.py`
re-ran Transform and what follows, 122 s; the schema alone re-ran ImportSchemaGen and what follows,
ExampleGen and StatisticsGen cached, 122 s.)
The model is trained for one epoch and never blessed, so the Evaluator's baseline never changes and an
unchanged run executes nothing: every executed component below is caused by the edit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import metadata
from pipeline import pipeline as dag
from pipeline.config import DEFAULT_PIPELINE_NAME, METADATA_FILE_NAME

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "components", "transform", "schemas", "kubeflow")
EXECUTORS = (
    dag.EXAMPLE_GEN,
    dag.STATISTICS_GEN,
    dag.SCHEMA_IMPORTER,
    dag.EXAMPLE_VALIDATOR,
    dag.VALIDATION_GATE,
    dag.TRANSFORM,
    dag.TRAINER,
    dag.EVALUATOR,
    dag.RANKING_EVALUATOR,
    dag.PUSHER,
)  # fmt: skip  (in DAG order; the resolver is a query, not an executor)


@pytest.fixture(scope="module")
def project(tmp_path_factory, synthetic_dir) -> dict:
    """A copy of the project's packages, and one run of it (everything executes)."""
    root = tmp_path_factory.mktemp("cache")
    code = root / "code"
    for package in PACKAGES:
        shutil.copytree(REPO / package, code / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "setup.py", code / "setup.py")
    ws = {"code": code, "data": synthetic_dir, "root": root / "pipeline", "serving": root / "serving"}
    assert set(run(ws).values()) == {"COMPLETE"}
    return ws


def run(ws: dict) -> dict[str, str]:
    """`recommender run` from the copy; the state of each executor in that run."""
    command = [
        sys.executable, "-m", "recommender.cli", "run", "--input-dir", str(ws["data"]),
        "--pipeline-root", str(ws["root"]), "--serving-dir", str(ws["serving"]),
        "--epochs", "1", "--tuner-trials", "0", "--retrieval-epochs", "1",
        "-v",  # also absl's -v N (verbosity): the run must not read the CLI's options as TFX flags
    ]  # fmt: skip
    environment = {**os.environ, "PYTHONPATH": str(ws["code"])}
    result = subprocess.run(command, cwd=ws["code"], env=environment, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    store = metadata.open_store(str(ws["root"] / METADATA_FILE_NAME))
    latest = metadata.run_ids(store, DEFAULT_PIPELINE_NAME)[-1]
    states = {e.component: e.state for e in metadata.run_executions(store, DEFAULT_PIPELINE_NAME, latest)}
    return {component: states[component] for component in EXECUTORS}


def edit(ws: dict, relative: str) -> None:
    """A real edit of the copy: one more line (a comment) at the end of the file."""
    path = ws["code"] / relative
    assert path.is_file(), relative
    with open(path, "a") as handle:
        handle.write("\n# edited by tests/cache_e2e_test.py\n")


def expect(executed_from: str) -> dict[str, str]:
    """Every executor before `executed_from` cached, it and every one after it executed."""
    first = EXECUTORS.index(executed_from)
    return {c: "CACHED" if i < first else "COMPLETE" for i, c in enumerate(EXECUTORS)}


def test_the_copy_is_what_runs(project):
    check = subprocess.run(
        [sys.executable, "-c", "import pipeline, transform; print(pipeline.__file__, transform.__file__)"],
        cwd=project["code"], env={**os.environ, "PYTHONPATH": str(project["code"])},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert check.stdout.split() == [str(project["code"] / p / "__init__.py") for p in ("pipeline", "transform")]


# Each edit is one test on the shared root. Every run leaves the root in a steady state (a run with no
# edit would execute nothing), so the tests hold alone and in any order.
def test_editing_pusher_code_reruns_only_the_pusher(project):
    edit(project, "components/pusher/executor.py")
    assert run(project) == expect(dag.PUSHER)


def test_editing_trainer_code_reruns_the_trainer_and_what_follows(project):
    edit(project, "components/trainer/model.py")
    assert run(project) == expect(dag.TRAINER)


def test_editing_the_schema_and_example_gen_code_reruns_both(project):
    """One run for two edits (a full DAG run each costs ~2 min of CI): the data did not change, so ExampleGen
    executes only because its code is keyed, and ImportSchemaGen, which has no input, only because the
    schema's content is."""
    edit(project, "schemas/schema.pbtxt")
    edit(project, "components/example_gen/movielens.py")
    assert run(project) == expect(dag.EXAMPLE_GEN)
