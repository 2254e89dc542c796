"""`recommender monitor` end to end on the shared first run (e2e_run.py): traffic replayed from its examples and
scored by its pushed model, undrifted and drifted, through the real TFDV comparators and the CLI."""

import collections
import json
import random
import subprocess
import sys

import numpy as np
import pytest

from recommender.inspection import inspect_run
from recommender.monitoring import check, replay, requests
from transform import features as f

pytestmark = pytest.mark.e2e

# The held-out test split is ~480 requests from the few dozen users who arrived in the test period: their
# occupation mix differs from train's by L-infinity 0.109 (measured), by who they are, which the default threshold
# (0.1) names. The tests' threshold sits above that and far below the planted shifts (one genre for every request:
# about 0.9).
DRIFT_THRESHOLD = 0.2


@pytest.fixture(scope="module")
def run_report(workspace, first_run) -> dict:
    """The run that pushed the model served here (other modules add later runs to the shared root)."""
    return inspect_run(str(workspace["root"] / "metadata.sqlite"), run=first_run["summary"].run_id)


@pytest.fixture(scope="module")
def traffic(first_run, run_report) -> dict:
    """The held-out test split, scored by the pushed model: traffic the model never trained on, the very ratings
    the Evaluator measured its RMSE on (so live quality is the Evaluator's, not the training fit)."""
    rows = replay.read_examples(run_report["artifacts"]["ExampleGen.examples"], "test")
    rows = random.Random(0).sample(rows, len(rows))  # served in no particular order
    return {"rows": rows, "predictions": replay.predict(first_run["summary"].pushed_path, rows)}


def _log(rows, predictions) -> requests.Log:
    return requests.Log(replay.records(rows, predictions, "1"), collections.Counter(), [])


def test_undrifted_traffic_does_not_fire_and_bad_lines_are_reported_not_fatal(workspace, run_report, traffic, tmp_path):
    log = tmp_path / "requests.jsonl"
    for record in replay.records(traffic["rows"], traffic["predictions"], "1"):
        requests.append(str(log), record)
    with open(log, "a") as handle:
        handle.write('{"kind": "predict", "features": {}, "predicted_rating": 3, "user": 1}\n{"kind": "pred')
    ratings = tmp_path / "later.csv"
    ratings.write_text(
        "userId,movieId,rating\n"
        + "".join(f"{r[f.USER_ID]},{r[f.MOVIE_ID]},{r[f.LABEL_KEY]}\n" for r in traffic["rows"])
    )
    output = tmp_path / "monitor.html"
    result = subprocess.run(
        [sys.executable, "-m", "recommender.cli", "monitor", "--requests", str(log), "--ratings", str(ratings),
         "--pipeline-root", str(workspace["root"]), "--run", run_report["run"]["run_id"],
         "--drift-threshold", str(DRIFT_THRESHOLD), "--output", str(output)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 malformed lines skipped: 1 unknown fields (user); 1 truncated or not JSON" in result.stdout
    assert "Alerts: none" in result.stdout
    saved = json.loads((tmp_path / "monitor.json").read_text())
    assert saved["requests"] == len(traffic["rows"]) and not saved["alerts"]
    assert {r["feature"] for r in saved["input_drift"]} >= {f.MOVIE_GENRES, f.USER_AGE, f.MOVIE_ID}
    assert all(not r["alerts"] for r in saved["input_drift"])
    errors = np.asarray(traffic["predictions"]) - np.array([r[f.LABEL_KEY] for r in traffic["rows"]])
    assert saved["live"]["rmse"] == pytest.approx(float(np.sqrt(np.mean(errors**2))), abs=1e-6)
    assert saved["live"]["rated_predictions"] == len(traffic["rows"])
    assert saved["live"]["rmse"] == pytest.approx(saved["evaluator"]["rmse"], abs=1e-3)  # the same held-out ratings
    assert "Input drift" in output.read_text()


def test_a_shifted_feature_fires_and_is_named(run_report, traffic):
    rows = [{**row, f.MOVIE_GENRES: ["Horror"]} for row in traffic["rows"]]
    result = check.run_check(_log(rows, traffic["predictions"]), run_report, drift_threshold=DRIFT_THRESHOLD)
    assert [a.split(" L-infinity")[0] for a in result["alerts"]] == [f"input drift: {f.MOVIE_GENRES}"]


def test_shifted_predictions_fire(run_report, traffic):
    shifted = np.clip(np.asarray(traffic["predictions"]) + 1.0, 1.0, 5.0)
    result = check.run_check(_log(traffic["rows"], shifted), run_report, drift_threshold=DRIFT_THRESHOLD)
    assert len(result["alerts"]) == 1 and result["alerts"][0].startswith("prediction drift: mean predicted rating")
    assert result["predictions"]["shift"] > 0.5


def test_live_rmse_above_the_evaluators_fires(run_report, traffic):
    """Ratings that arrive later and disagree with the model (each mirrored around the scale's middle): the live
    RMSE alert fires, and only it (the requests themselves are undrifted)."""
    truth = replay.true_ratings(traffic["rows"])
    log = _log(traffic["rows"], traffic["predictions"])
    assert check.run_check(log, run_report, ratings=truth, drift_threshold=DRIFT_THRESHOLD)["alerts"] == []
    result = check.run_check(
        log, run_report, ratings={key: 6.0 - rating for key, rating in truth.items()}, drift_threshold=DRIFT_THRESHOLD
    )
    assert len(result["alerts"]) == 1 and result["alerts"][0].startswith("live RMSE ")
    assert result["live"]["rmse"] > result["evaluator"]["rmse"] + 0.5


def test_the_command_exits_3_when_a_threshold_is_crossed(workspace, run_report, traffic, tmp_path):
    log = tmp_path / "drifted.jsonl"
    for record in replay.records(traffic["rows"], np.clip(np.asarray(traffic["predictions"]) - 1.0, 1, 5), "1"):
        requests.append(str(log), record)
    result = subprocess.run(
        [sys.executable, "-m", "recommender.cli", "monitor", "--requests", str(log), "--pipeline-root",
         str(workspace["root"]), "--run", run_report["run"]["run_id"], "--drift-threshold", str(DRIFT_THRESHOLD),
         "--output", str(tmp_path / "m.html")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Alerts: prediction drift" in result.stdout
