"""`recommender inspect` and `recommender report` on the artifacts of real tiny pipeline runs.

Two runs on synthetic data share a pipeline root (the second reuses everything but Evaluator and
Pusher); a third root holds a run that fails at the validation gate. Every number the commands show is
checked against an independent reading of MLMD, TFMA's output or the examples themselves.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from headless_browser import chromium, render
from tfx.utils import io_utils

from components import gates
from pipeline import metadata
from pipeline import pipeline as dag
from pipeline.config import PipelineConfig, TrainerConfig, direct_runner_args
from pipeline.local_runner import PipelineRunError, run_local
from transform import features as f

pytestmark = pytest.mark.e2e
UPSTREAM = {dag.EXAMPLE_GEN, dag.STATISTICS_GEN, dag.SCHEMA_IMPORTER, dag.EXAMPLE_VALIDATOR,
            dag.VALIDATION_GATE, dag.TRANSFORM, dag.TUNER, dag.TRAINER}  # fmt: skip


# The train mean scores test RMSE 1.05 on the synthetic data, 10 epochs 0.74: a model must learn to pass.
RMSE_BOUND = 0.9


def _config(data: Path, root: Path) -> PipelineConfig:
    return PipelineConfig(
        pipeline_root=str(root / "pipeline"),
        data_dir=str(data),
        serving_dir=str(root / "serving"),
        trainer=TrainerConfig(epochs=10, tuner_trials=1, retrieval_epochs=1),
        rmse_upper_bound=RMSE_BOUND,
        beam_pipeline_args=direct_runner_args(),
    )


@pytest.fixture(scope="module")
def runs(synthetic_dir, tmp_path_factory) -> PipelineConfig:
    config = _config(synthetic_dir, tmp_path_factory.mktemp("inspect"))
    run_local(config, echo=lambda line: None)
    run_local(config, echo=lambda line: None)
    return config


@pytest.fixture(scope="module")
def failed(synthetic_dir, tmp_path_factory) -> PipelineConfig:
    """A run stopped by the validation gate (an occupation outside the schema)."""
    root = tmp_path_factory.mktemp("failed")
    data = root / "data"
    shutil.copytree(synthetic_dir, data)
    users = (data / "u.user").read_text("latin-1").splitlines()
    users[0] = "|".join(users[0].split("|")[:3] + ["astronaut"] + users[0].split("|")[4:])
    (data / "u.user").write_text("\n".join(users) + "\n", encoding="latin-1")
    config = _config(data, root)
    with pytest.raises(PipelineRunError):
        run_local(config, echo=lambda line: None)
    return config


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "recommender.cli", *args], capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def latest(runs) -> dict:
    """`inspect --json` of the latest (second) run."""
    return inspect_json(runs)


@pytest.fixture(scope="module")
def first(runs, latest) -> dict:
    """`inspect --json --run <first run id>`."""
    return inspect_json(runs, "--run", latest["runs"][0]["run_id"])


def inspect_json(config: PipelineConfig, *extra: str) -> dict:
    result = cli("inspect", "--pipeline-root", config.pipeline_root, "--json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _examples_per_split(examples_uri: str) -> dict[str, int]:
    counts = {}
    for split in ("train", "eval", "test"):
        files = tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*"))
        counts[split] = sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP"))
    return counts


def _tfma_metrics(evaluation_uri: str) -> dict[tuple, dict[str, float]]:
    result = {}
    for slice_key, by_output in tfma.load_eval_result(evaluation_uri).slicing_metrics:
        metrics = by_output[""][""]
        result[slice_key] = {name: m["doubleValue"] for name, m in metrics.items() if "doubleValue" in m}
    return result


def test_json_lists_both_runs_and_flags_cached_components(runs, latest, first):
    data = latest
    store = metadata.open_store(runs.metadata_file)
    assert [r["run_id"] for r in data["runs"]] == metadata.run_ids(store, runs.pipeline_name)
    assert [r["status"] for r in data["runs"]] == ["COMPLETE", "COMPLETE"]
    assert data["run"]["run_id"] == data["runs"][-1]["run_id"]
    cached = {c["component"] for c in data["components"] if c["cached"]}
    # Second run: only the RankingEvaluator (which compares with the new baseline) and the Pusher execute.
    assert cached == UPSTREAM | {dag.EVALUATOR}
    assert not any(c["cached"] for c in first["components"])
    downstream = {dag.MODEL_RESOLVER, dag.EVALUATOR, dag.RANKING_EVALUATOR, dag.PUSHER}
    assert {c["component"] for c in first["components"]} == UPSTREAM | downstream


def test_split_counts_and_metrics_equal_the_examples_and_tfma(latest):
    data = latest
    assert data["splits"] == _examples_per_split(data["artifacts"][f"{dag.EXAMPLE_GEN}.examples"])
    assert sum(data["splits"].values()) == 3000
    tfma_metrics = _tfma_metrics(data["artifacts"][f"{dag.EVALUATOR}.evaluation"])
    slices = {s["slice"]: s["metrics"] for s in data["evaluation"]}
    assert slices["Overall"]["root_mean_squared_error"] == tfma_metrics[()]["root_mean_squared_error"]
    assert slices["Overall"]["example_count"] == data["splits"]["test"]
    seen = {
        value: slices[f"{f.USER_SEEN_XF}={value}"]
        for value in f.USER_SEEN_VALUES
        if f"{f.USER_SEEN_XF}={value}" in slices
    }
    assert sum(s["example_count"] for s in seen.values()) == data["splits"]["test"]
    for key, metrics in tfma_metrics.items():
        name = "Overall" if key == () else f"{key[0][0]}={key[0][1]}"
        assert slices[name]["mean_absolute_error"] == metrics["mean_absolute_error"], name
        assert slices[name]["example_count"] == metrics["example_count"], name


def test_the_evaluator_decoded_the_label_alone(latest):
    """The ValidationGate's evaluation_schema (the Evaluator's schema input) is the validated schema's label alone."""
    evaluation = latest["artifacts"][f"{dag.VALIDATION_GATE}.evaluation_schema"]
    validated = latest["artifacts"][f"{dag.VALIDATION_GATE}.validated_schema"]
    kept = io_utils.SchemaReader().read(os.path.join(evaluation, gates.SCHEMA_FILE))
    schema = io_utils.SchemaReader().read(os.path.join(validated, gates.SCHEMA_FILE))
    label = [feature for feature in schema.feature if feature.name == f.LABEL_KEY]
    assert list(kept.feature) == label and len(label) == 1


def _test_split(examples_uri: str) -> list[bytes]:
    files = tf.io.gfile.glob(os.path.join(examples_uri, "Split-test", "*"))
    return [record.numpy() for record in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def test_overall_rmse_equals_a_recomputation_from_the_pushed_model_and_the_test_split(latest):
    """Independent of TFMA: the pushed SavedModel scores the raw test examples through serving_default."""
    records = _test_split(latest["artifacts"][f"{dag.EXAMPLE_GEN}.examples"])
    labels = np.array(
        [tf.train.Example.FromString(r).features.feature[f.LABEL_KEY].float_list.value[0] for r in records]
    )
    model = tf.saved_model.load(latest["pushed"]["destination"])
    predictions = model.signatures[f.SERVING_SIGNATURE](examples=tf.constant(records))[f.PREDICTION_KEY].numpy().ravel()
    rmse = float(np.sqrt(np.mean((predictions - labels) ** 2)))
    overall = next(s for s in latest["evaluation"] if s["slice"] == "Overall")["metrics"]
    assert overall["example_count"] == len(records)
    assert overall["root_mean_squared_error"] == pytest.approx(rmse, rel=1e-4)
    assert overall["mean_absolute_error"] == pytest.approx(float(np.mean(np.abs(predictions - labels))), rel=1e-4)
    assert rmse < RMSE_BOUND < float(np.sqrt(np.mean((labels.mean() - labels) ** 2)))  # it learned something


def test_training_history_reports_epoch_means(latest):
    history = latest["training"]["history"]
    for prefix in ("", "val_"):
        np.testing.assert_allclose(
            history[prefix + "loss"], np.array(history[prefix + "root_mean_squared_error"]) ** 2, rtol=1e-3
        )


def test_decision_push_and_lineage(runs, latest, first):
    data = latest
    assert data["anomalies"] == []
    decision = data["decision"]
    assert decision["blessed"] is True
    assert decision["thresholds"] == {
        "metric": "root_mean_squared_error",
        "upper_bound": RMSE_BOUND,
        "margin": 0.005,
        "confidence": 0.95,
    }
    # The paired comparison: run 2's candidate is run 1's model (cached Trainer), so the difference is 0.
    compared = decision["comparison"]
    overall = next(s for s in data["evaluation"] if s["slice"] == "Overall")["metrics"]
    assert compared["rmse"] == pytest.approx(overall["root_mean_squared_error"], rel=1e-5)
    assert compared["ratings"] == overall["example_count"] and compared["draws"] == 1000
    assert compared["rmse_low"] < compared["rmse"] < compared["rmse_high"]
    assert (compared["difference"], compared["difference_low"], compared["difference_high"]) == (0, 0, 0)
    assert compared["noninferior"] is True and decision["within_bound"] is True
    assert "difference" not in first["decision"]["comparison"]  # the first model had nothing to be compared with
    assert first["decision"]["comparison"]["rmse"] == compared["rmse"]
    assert first["decision"]["baseline_model"] is None
    assert decision["baseline_model"] == first["artifacts"][f"{dag.TRAINER}.model"]  # Run 1's model is the baseline.
    assert data["pushed"]["destination"] == os.path.join(runs.model_serving_dir, data["pushed"]["version"])
    assert os.path.isfile(os.path.join(data["pushed"]["destination"], "saved_model.pb"))
    lineage = data["lineage"]
    assert (lineage["type"], lineage["produced_by"]) == ("Model", dag.TRAINER)
    assert lineage["uri"] == data["artifacts"][f"{dag.TRAINER}.model"]
    transformed = lineage["inputs"]["examples"][0]
    assert transformed["produced_by"] == dag.TRANSFORM
    assert transformed["inputs"]["examples"][0]["uri"] == data["artifacts"][f"{dag.EXAMPLE_GEN}.examples"]
    assert lineage["inputs"]["hyperparameters"][0]["produced_by"] == dag.TUNER
    assert lineage["inputs"]["transform_graph"][0]["uri"] == data["artifacts"][f"{dag.TRANSFORM}.transform_graph"]
    assert lineage["inputs"]["schema"][0]["produced_by"] == dag.VALIDATION_GATE


def test_text_view_shows_the_same_numbers(runs, latest):
    data = latest
    result = cli("inspect", "--pipeline-root", runs.pipeline_root)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    overall = next(s for s in data["evaluation"] if s["slice"] == "Overall")["metrics"]
    assert re.search(rf"Overall\s+{data['splits']['test']:,}\s+{overall['root_mean_squared_error']:.4f}", text)
    assert f"rows per split: train {data['splits']['train']:,}" in text
    assert re.search(rf"{dag.EVALUATOR}\s+cached", text) and re.search(rf"{dag.RANKING_EVALUATOR}\s+executed", text)
    assert "schema anomalies: none" in text and f"rating gate: passed (RMSE <= {RMSE_BOUND}: yes)" in text
    compared = data["decision"]["comparison"]
    assert f"test RMSE {compared['rmse']:.4f}, 95% interval over {compared['users']:,} users " in text
    assert "difference +0.0000, 95% interval [+0.0000, +0.0000], within the margin +0.005" in text
    assert f"pushed: version {data['pushed']['version']}" in text
    assert "lineage of the pushed model:" in text and "← Trainer" in text


def test_report_is_self_contained_and_renders_in_chromium(runs, latest, tmp_path):
    output = tmp_path / "report.html"
    result = cli("report", "--pipeline-root", runs.pipeline_root, "--output", str(output))
    assert result.returncode == 0, result.stderr
    page = output.read_text()
    data = latest
    overall = next(s for s in data["evaluation"] if s["slice"] == "Overall")["metrics"]
    assert f"{overall['root_mean_squared_error']:,.4f}" in page
    for split, rows in data["splits"].items():
        assert f"<td>{split}</td><td>{rows:,}</td>" in page
    assert "blessed" in page and data["pushed"]["version"] in page
    compared = data["decision"]["comparison"]
    assert f"[{compared['rmse_low']:.4f}, {compared['rmse_high']:.4f}]" in page and "within the margin +0.005" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # Nothing fetched from the network.
    # Every section docs/inspecting.md lists, with its data (this second run has a baseline: the candidate's plots).
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', page)
    slice_features = sorted({s["feature"] for s in data["evaluation"] if s["feature"]})
    assert sorted(images) == sorted(
        ["rating distribution per split", "loss and RMSE per epoch", "predicted vs actual, calibration"]
        + ["NDCG and intra-list diversity as the diversity knob moves"]
        + [f"RMSE by {feature}" for feature in slice_features]
    )
    assert len(slice_features) == 4
    assert "Recommendations (top-10 on the test split)" in page and "Final blessing" in page
    for split in data["splits"]:
        assert f"<h3>Feature statistics: {split}</h3>" in page
    for heading in ("Drift, train → test", "Schema anomalies", "Hyperparameters used", "Tuner trials", "Decision"):
        assert heading in page, heading
    assert "No calibration plot data" not in page and "No evaluation data" not in page
    assert "score (val_root_mean_squared_error, lower is better)" in page
    trials = page.split("<h3>Tuner trials</h3>", 1)[1].split("</table>", 1)[0]
    assert "<td>1e-05</td>" in trials and "<td>0.0000</td>" not in trials  # the default L2, not rounded away
    assert "Both are epoch means over the epoch's examples" in page
    assert "WARNING" not in result.stderr and "absl" not in result.stderr, result.stderr

    if chromium() is None:
        pytest.fail("headless Chromium is needed for this test: apt-get install chromium")
    seen = render(output, tmp_path / "report.png")
    assert seen["errors"] == []
    assert seen["broken_images"] == [] and seen["images"] == page.count("<img ")
    assert all(url.startswith(("file:", "data:")) for url in seen["requests"])
    screenshot = (tmp_path / "report.png").read_bytes()
    assert screenshot.startswith(b"\x89PNG") and len(screenshot) > 10_000


def test_failed_run_is_shown_and_exits_non_zero(failed, tmp_path):
    result = cli("inspect", "--pipeline-root", failed.pipeline_root)
    assert result.returncode == 1
    assert re.search(rf"{dag.VALIDATION_GATE}\s+failed", result.stdout)
    assert "user_occupation" in result.stdout  # The anomaly that stopped it.
    assert "is FAILED (at ValidationGate)" in result.stderr and "Traceback" not in result.stderr
    report = cli("report", "--pipeline-root", failed.pipeline_root, "--output", str(tmp_path / "r.html"))
    assert report.returncode == 1 and (tmp_path / "r.html").exists()
    assert "Nothing was pushed" in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize("command", ["inspect", "report"])
def test_missing_store_and_empty_root_are_clear_errors(tmp_path, command):
    missing = cli(command, "--pipeline-root", str(tmp_path / "nowhere"))
    assert missing.returncode == 1
    assert "no ML Metadata store at" in missing.stderr and "Traceback" not in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = cli(command, "--pipeline-root", str(tmp_path / "empty"))
    assert empty.returncode == 1 and "no ML Metadata store at" in empty.stderr


def test_unknown_run_id_lists_the_runs(runs):
    result = cli("inspect", "--pipeline-root", runs.pipeline_root, "--run", "no-such-run")
    assert result.returncode == 1
    assert "no run 'no-such-run'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["inspect", "report"])
def test_a_deleted_artifact_file_is_one_error_line_naming_it(runs, latest, tmp_path, command):
    statistics = Path(latest["artifacts"][f"{dag.STATISTICS_GEN}.statistics"], "Split-train", "FeatureStats.pb")
    aside = tmp_path / "FeatureStats.pb"
    statistics.rename(aside)
    try:
        extra = ["--output", str(tmp_path / "r.html")] if command == "report" else []
        result = cli(command, "--pipeline-root", runs.pipeline_root, *extra)
    finally:
        aside.rename(statistics)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith("Error: cannot read the statistics (StatisticsGen) at ")
    assert str(statistics.parent.parent) in line and "moved, deleted or damaged" in line


def test_a_report_that_cannot_be_written_is_one_error_line(runs, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = cli("report", "--pipeline-root", runs.pipeline_root, "--output", str(blocker / "report.html"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith(f"Error: cannot write the report to {blocker / 'report.html'}: ")
