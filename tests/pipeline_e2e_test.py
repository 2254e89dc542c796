"""The whole DAG with LocalDagRunner on a small synthetic MovieLens, asserted through MLMD.

The first run (through the CLI as a user types it) is e2e_run.py's session fixture, shared with the serving and
recommend tests; the re-runs on its root are this module's fixture, so every test runs alone too.
"""

import dataclasses
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from e2e_run import config_for, pushed_versions, states, tree_snapshot

from components import identity
from components.pusher.executor import PushError, check_same_data
from pipeline import metadata
from pipeline import pipeline as dag
from pipeline.config import TrainerConfig
from pipeline.local_runner import PipelineRunError, run_local
from recommender.summary import RunSummary, summarize

pytestmark = pytest.mark.e2e

ALL_COMPONENTS = {
    dag.EXAMPLE_GEN, dag.STATISTICS_GEN, dag.SCHEMA_IMPORTER, dag.EXAMPLE_VALIDATOR, dag.VALIDATION_GATE,
    dag.TRANSFORM, dag.TUNER, dag.TRAINER, dag.MODEL_RESOLVER, dag.EVALUATOR, dag.RANKING_EVALUATOR, dag.PUSHER,
}  # fmt: skip


def _run_and_summarize(config) -> RunSummary:
    """One run of the DAG, quietly, and what it produced."""
    return summarize(config, run_local(config, echo=lambda line: None))


def test_first_run_through_the_cli_executes_blesses_and_pushes(workspace, first_run):
    result = first_run["result"]
    out = result.stdout
    for component in ALL_COMPONENTS:
        assert f"  {component}" in out
    assert "Transform                    finished in" in out
    assert "INFO" not in out + result.stderr and "Traceback" not in result.stderr
    assert "rows per split : train" in out and "blessed        : yes" in out
    assert re.search(r"test top-10    : ndcg 0\.\d{4}, precision 0\.\d{4}, recall 0\.\d{4}, map 0\.\d{4}", out)
    assert "raw records    : 3,202 read (ml-100k layout), 2 rejected (bad_rating 1, blank_line 1) → " in out

    config = config_for(workspace)
    summary = first_run["summary"]
    assert {e.component: e.state for e in summary.executions} == {c: "COMPLETE" for c in ALL_COMPONENTS}
    assert sum(summary.split_rows.values()) == 3000
    examples = next(e for e in summary.executions if e.component == dag.EXAMPLE_GEN).output("examples")
    recorded = {key: metadata.value(examples.custom_properties[key]) for key in ("raw_records", "rejected_records")}
    assert recorded == {"raw_records": 3202, "rejected_records": 2}
    assert metadata.value(examples.custom_properties["rejected_by_reason"]) == '{"bad_rating": 1, "blank_line": 1}'
    quarantine = Path(metadata.value(examples.custom_properties["quarantine_uri"]))
    rejected = [line for path in quarantine.glob("rejected-*.jsonl") for line in path.read_text().splitlines()]
    assert sorted(json.loads(line)["line_no"] for line in rejected) == [3001, 3002]
    assert summary.blessed is True and summary.test_rmse < config.rmse_upper_bound
    assert summary.pushed_path and Path(summary.pushed_path, "saved_model.pb").is_file()
    assert Path(summary.pushed_path).parent == workspace["serving"] / "movielens_ranker"
    assert f"pushed model   : {summary.pushed_path}" in out


@pytest.fixture(scope="module")
def reruns(workspace, first_run) -> dict:
    """Runs 2 and 3 on the first run's root, nothing changed: their component states and the versions."""
    config = config_for(workspace)
    second_run_id = run_local(config, echo=lambda line: None)
    second = states(config)
    run_local(config, echo=lambda line: None)
    return {
        "second": second,
        "second_run_id": second_run_id,
        "third": states(config),
        "versions": pushed_versions(workspace),
    }


def test_the_run_leaves_nothing_in_its_temp_directory(first_run):
    """TFX's Beam executors would leave a 49 MB sdist of TFX there per component (pipeline/local_runner.py)."""
    assert list(first_run["temp"].iterdir()) == []


def test_rerun_with_nothing_changed_is_cached(workspace, first_run, reruns):
    """Second run: everything up to the Evaluator is cached. The RankingEvaluator (which compares with
    the last blessed model) and the Pusher run once more because their baseline input changed (run 1
    had no blessed model; now the resolver returns run 1's model): TFX's own penguin e2e test documents
    the same. The Evaluator (the candidate alone against the RMSE bound) stays cached. The third run
    executes nothing.
    """
    second, third = reruns["second"], reruns["third"]
    downstream = {dag.MODEL_RESOLVER, dag.RANKING_EVALUATOR, dag.PUSHER}
    upstream = ALL_COMPONENTS - downstream
    assert {c: second[c] for c in upstream} == {c: "CACHED" for c in upstream}
    assert second[dag.RANKING_EVALUATOR] == second[dag.PUSHER] == "COMPLETE"
    executors = ALL_COMPONENTS - {dag.MODEL_RESOLVER}  # the resolver is a query, not an executor
    assert {c: third[c] for c in executors} == {c: "CACHED" for c in executors}
    # The second run re-pushed the same model (same graph) as a new version; the third pushed nothing.
    versions = reruns["versions"]
    assert len(versions) == 2 and versions[0] == Path(first_run["summary"].pushed_path).name
    base = workspace["serving"] / "movielens_ranker"
    assert (base / versions[0] / "saved_model.pb").read_bytes() == (base / versions[1] / "saved_model.pb").read_bytes()


def comparison(execution) -> dict[str, float]:
    """The paired RMSE comparison the RankingEvaluator recorded in MLMD."""
    properties = execution.output("evaluation").custom_properties
    return {name: metadata.value(properties[name]) for name in properties if "rmse" in name}


def test_an_identical_model_passes_the_comparison_with_the_blessed_one(workspace, first_run, reruns):
    """The second run's candidate is the first run's model (cached Trainer): a zero difference, blessed."""
    executions = metadata.run_executions(
        metadata.open_store(config_for(workspace).metadata_file), "movielens-recommender", reruns["second_run_id"]
    )
    ranking = next(e for e in executions if e.component == dag.RANKING_EVALUATOR)
    recorded = comparison(ranking)
    assert recorded["rmse_difference"] == recorded["rmse_difference_low"] == recorded["rmse_difference_high"] == 0
    assert recorded["rmse_noninferior"] == 1 and recorded["rmse_margin"] == 0.005
    assert recorded["test_rmse"] == recorded["baseline_test_rmse"]
    assert recorded["test_rmse_low"] < recorded["test_rmse"] < recorded["test_rmse_high"]
    assert recorded["test_rmse"] == pytest.approx(first_run["summary"].test_rmse, rel=1e-5)  # TFMA's figure


def test_a_model_worse_than_the_blessed_one_is_not_pushed(workspace, reruns):
    versions = pushed_versions(workspace)
    before = tree_snapshot(workspace["serving"])
    config = config_for(
        workspace,
        trainer=TrainerConfig(epochs=1, tuner_trials=0, learning_rate=1e-6, layer_sizes=(8,), retrieval_epochs=1),
        rmse_upper_bound=10.0,  # only the comparison with the blessed model can refuse it
    )
    summary = _run_and_summarize(config)
    by_name = {e.component: e for e in summary.executions}
    assert by_name[dag.TRAINER].state == "COMPLETE" and by_name[dag.EVALUATOR].state == "COMPLETE"
    assert by_name[dag.EVALUATOR].output("blessing").custom_properties["blessed"].int_value == 1  # under the bound
    recorded = comparison(by_name[dag.RANKING_EVALUATOR])
    assert recorded["rmse_difference_low"] > 0.05 and recorded["rmse_noninferior"] == 0  # clearly worse
    assert summary.blessed is False and summary.pushed_path is None
    assert pushed_versions(workspace) == versions
    assert tree_snapshot(workspace["serving"]) == before  # every file, byte for byte


def test_a_model_over_the_rmse_bound_is_not_pushed(workspace, reruns):
    before = tree_snapshot(workspace["serving"])
    summary = _run_and_summarize(config_for(workspace, rmse_upper_bound=0.05))
    assert summary.blessed is False and summary.pushed_path is None
    assert tree_snapshot(workspace["serving"]) == before


def test_a_model_under_the_ndcg_bound_is_not_pushed_though_its_rmse_passes(workspace, reruns):
    before = tree_snapshot(workspace["serving"])
    summary = _run_and_summarize(config_for(workspace, ndcg_lower_bound=0.99))
    by_name = {e.component: e for e in summary.executions}
    assert by_name[dag.EVALUATOR].state == "CACHED"  # only the ranking gate's bound changed
    assert by_name[dag.EVALUATOR].output("blessing").custom_properties["blessed"].int_value == 1
    ranking = by_name[dag.RANKING_EVALUATOR]
    assert ranking.state == "COMPLETE" and ranking.output("blessing").custom_properties["blessed"].int_value == 0
    assert summary.blessed is False and summary.pushed_path is None
    assert 0 < summary.ranking["ndcg"] < 0.99
    assert tree_snapshot(workspace["serving"]) == before


def test_too_many_malformed_lines_fail_at_example_gen_and_publish_nothing(synthetic_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(synthetic_dir, data)
    with open(data / "u.data", "a") as handle:
        handle.write("".join(f"{n}\tx\t3\t881250949\n" for n in range(1, 6)))  # 5 of 3,205 lines: 0.16%
    ws = {"data": data, "root": tmp_path / "pipeline", "serving": tmp_path / "serving"}
    config = config_for(ws, trainer=TrainerConfig(epochs=1, tuner_trials=0, retrieval_epochs=1))
    pattern = (
        r"(?s)ExampleGen failed: RejectedRecordsError: ExampleGen rejected 5 of 3,205 raw records \(0\.156%; bad_id 5\)"
        r": more than the limit of 0\.100%.*u\.data:3001: movie id 'x' is not a positive integer"
        r".*ExampleGen/rejected/1/rejected-"
    )
    with pytest.raises(PipelineRunError, match=pattern) as failure:
        run_local(config, echo=lambda line: None)
    store = metadata.open_store(config.metadata_file)
    [run_id] = metadata.run_ids(store, config.pipeline_name)
    [example_gen] = metadata.run_executions(store, config.pipeline_name, run_id)
    assert example_gen.state == "FAILED"
    assert all(a.state != a.LIVE for artifacts in example_gen.outputs.values() for a in artifacts)
    # The rejected lines are where the message says, and they are all that is left of the execution.
    [pointer] = re.findall(r"All rejected records: (\S+)/rejected-\*\.jsonl", str(failure.value))
    rejected = [json.loads(line) for path in Path(pointer).glob("rejected-*.jsonl") for line in path.open()]
    assert sorted(r["line_no"] for r in rejected) == [3001, 3002, 3003, 3004, 3005]
    assert {r["reason"] for r in rejected} == {"bad_id"} and rejected[0]["text"].endswith("\tx\t3\t881250949")
    left = sorted(str(p.relative_to(ws["root"])) for p in ws["root"].rglob("*") if p.is_file())
    assert [p for p in left if not p.startswith("metadata.sqlite")] == sorted(
        str(p.relative_to(ws["root"])) for p in Path(pointer).iterdir()
    )


def test_schema_violation_stops_the_run_at_the_gate(synthetic_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(synthetic_dir, data)
    users = (data / "u.user").read_text("latin-1").splitlines()
    users[0] = "|".join(users[0].split("|")[:3] + ["astronaut"] + users[0].split("|")[4:])
    (data / "u.user").write_text("\n".join(users) + "\n", encoding="latin-1")
    ws = {"data": data, "root": tmp_path / "pipeline", "serving": tmp_path / "serving"}
    config = config_for(ws, trainer=TrainerConfig(epochs=1, tuner_trials=0, retrieval_epochs=1))
    lines = []
    with pytest.raises(PipelineRunError, match=r"(?s)ValidationGate failed.*user_occupation.*astronaut"):
        run_local(config, echo=lines.append)
    assert "  ValidationGate               FAILED" in "\n".join(lines)
    store = metadata.open_store(config.metadata_file)
    [run_id] = metadata.run_ids(store, config.pipeline_name)
    ran = {e.component for e in metadata.run_executions(store, config.pipeline_name, run_id)}
    assert dag.EXAMPLE_VALIDATOR in ran and dag.TRANSFORM not in ran and dag.PUSHER not in ran
    assert not ws["serving"].exists()

    # The explicit override lets the anomaly through, and says so in the summary and in MLMD.
    accepting = dataclasses.replace(config, accepted_anomalies=("user_occupation",))
    summary = _run_and_summarize(accepting)
    by_name = {e.component: e for e in summary.executions}
    assert by_name[dag.VALIDATION_GATE].state == by_name[dag.TRANSFORM].state == "COMPLETE"
    assert by_name[dag.EXAMPLE_VALIDATOR].state == "CACHED"
    assert by_name[dag.VALIDATION_GATE].property("accepted_anomalies") == '["user_occupation"]'
    # One line per split whose statistics hold the new value (the user rates in more than one split).
    assert summary.accepted_anomalies
    for accepted in summary.accepted_anomalies:
        assert "] user_occupation:" in accepted and "astronaut" in accepted
        assert f"  ACCEPTED anomaly (override): {accepted}" in summary.lines()


def test_the_pushed_model_carries_its_training_identity(workspace, first_run):
    """Data and split travel beside the SavedModel (components/identity.py), into every pushed version."""
    served = identity.read(first_run["summary"].pushed_path)
    assert served == config_for(workspace).training_identity
    assert (served["dataset"], served["layout"], served["split"], served["split_seed"]) == (
        "data",
        "ml-100k",
        "time",
        0,
    )


def test_a_run_on_other_data_is_refused_before_it_starts(workspace, first_run, tmp_path):
    """Another release (same layout, another directory) on the same serving directory: one Error: line, at once."""
    other = tmp_path / "other-release"
    shutil.copytree(workspace["data"], other)
    serving, metadata_file = tree_snapshot(workspace["serving"]), config_for(workspace).metadata_file
    executions = len(metadata.open_store(metadata_file).get_executions())
    command = [sys.executable, "-m", "recommender.cli", "run", "--input-dir", str(other), "--pipeline-root",
               str(workspace["root"]), "--serving-dir", str(workspace["serving"])]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: refusing to push over {workspace['serving'] / 'movielens_ranker'}: ")
    assert "it serves a model of data (ml-100k layout)" in line and "this run's data is other-release" in line
    assert "--serving-dir" in line and dag.EXAMPLE_GEN not in result.stdout
    assert tree_snapshot(workspace["serving"]) == serving
    assert len(metadata.open_store(metadata_file).get_executions()) == executions  # nothing ran


def test_a_model_of_other_data_is_not_pushed_over_the_served_one(workspace, first_run, tmp_path):
    """The Pusher's own check (what a Kubeflow run meets, where no CLI checks first)."""
    base = workspace["serving"] / "movielens_ranker"
    before = tree_snapshot(base)
    other = {**config_for(workspace).training_identity, "dataset": "other-release"}
    with pytest.raises(PushError, match="it serves a model of data .*this run's data is other-release"):
        check_same_data(other, str(base))
    check_same_data({**other, "dataset": "data", "split": "stratified", "split_seed": 46}, str(base))  # another split
    assert tree_snapshot(base) == before


def test_a_run_on_another_split_has_no_baseline(workspace, first_run, reruns, tmp_path):
    """Same data, another protocol and seed, same pipeline root: the resolver returns the first run's model, but
    it trained on most of this split's test ratings, so the RankingEvaluator compares with nothing. Not blessed
    (an NDCG bound no model meets), so it becomes no later run's baseline."""
    config = config_for(
        workspace,
        serving_dir=str(tmp_path / "serving"),
        split_protocol="stratified",
        trainer=TrainerConfig(epochs=2, tuner_trials=0, seed=46, retrieval_epochs=1),
        ndcg_lower_bound=0.99,
    )
    summary = _run_and_summarize(config)
    by_name = {e.component: e for e in summary.executions}
    (resolved,) = by_name[dag.RANKING_EVALUATOR].inputs["baseline_model"]
    first_model = next(e for e in first_run["summary"].executions if e.component == dag.TRAINER).output("model")
    assert resolved.id == first_model.id  # what the resolver offered
    blessing = by_name[dag.RANKING_EVALUATOR].output("blessing").custom_properties
    why = metadata.value(blessing["baseline_ignored_because"])
    assert why == (
        "the last blessed model was trained on data (ml-100k layout), time split, "
        "this one on data (ml-100k layout), stratified seed 46 split"
    )
    assert "baseline_model_id" not in blessing and "rmse_difference" not in comparison(by_name[dag.RANKING_EVALUATOR])
    assert summary.ranking is not None and summary.blessed is False
