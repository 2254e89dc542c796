"""The Evaluator's one-pass rating metrics (components/evaluator/rating_metrics.py) inside real TFMA runs: the same
figures as numpy per slice, and the RMSE gate of the Evaluator's EvalConfig still finds its metric."""

import math

import numpy as np
import pandas as pd
import pytest
import tensorflow_model_analysis as tfma
from google.protobuf import json_format

from components.evaluator import rating_metrics
from components.evaluator.eval_config import GATE_METRIC, make_eval_config
from recommender import decision_view
from transform import features as f

pytestmark = pytest.mark.slow


def ratings(n: int = 400, seed: int = 3) -> pd.DataFrame:
    """Labels 1-5, predictions near them, and a gender per row (a slice)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(1, 6, n).astype(float)
    return pd.DataFrame(
        {
            f.LABEL_KEY: labels,
            f.PREDICTION_KEY: labels + rng.normal(0.2, 0.8, n),
            f.USER_GENDER: rng.choice(["F", "M"], n),
        }
    )


def evaluated(frame: pd.DataFrame, rmse_upper_bound: float, output: str) -> tfma.EvalResult:
    """TFMA on raw labels and predictions with the Evaluator's metrics, thresholds and gender slice."""
    config = make_eval_config(rmse_upper_bound)
    del config.model_specs[:]
    config.model_specs.add(label_key=f.LABEL_KEY, prediction_key=f.PREDICTION_KEY)
    del config.slicing_specs[:]
    config.slicing_specs.add()
    config.slicing_specs.add(feature_keys=[f.USER_GENDER])
    return tfma.analyze_raw_data(frame, config, output_path=output)


def by_numpy(frame: pd.DataFrame) -> dict[str, float]:
    error = frame[f.LABEL_KEY] - frame[f.PREDICTION_KEY]
    return {
        rating_metrics.EXAMPLE_COUNT: float(len(frame)),
        rating_metrics.MEAN_LABEL: frame[f.LABEL_KEY].mean(),
        rating_metrics.MEAN_PREDICTION: frame[f.PREDICTION_KEY].mean(),
        rating_metrics.MEAN_ABSOLUTE_ERROR: error.abs().mean(),
        rating_metrics.ROOT_MEAN_SQUARED_ERROR: math.sqrt((error**2).mean()),
    }


def test_each_slice_gets_the_five_metrics_numpy_computes(tmp_path):
    frame = ratings()
    result = evaluated(frame, rmse_upper_bound=10.0, output=str(tmp_path))
    got = {key: {name: value["doubleValue"] for name, value in m[""][""].items()} for key, m in result.slicing_metrics}
    expected = {(): by_numpy(frame)}
    for gender, rows in frame.groupby(f.USER_GENDER):
        expected[((f.USER_GENDER, gender),)] = by_numpy(rows)
    assert set(got) == set(expected)
    for key, metrics in expected.items():
        assert set(got[key]) >= set(metrics), key
        for name, value in metrics.items():
            assert got[key][name] == pytest.approx(value, rel=1e-9), (key, name)


def test_the_rmse_gate_blesses_under_its_bound_and_not_over_it(tmp_path):
    frame = ratings()
    rmse = by_numpy(frame)[GATE_METRIC]
    evaluated(frame, rmse_upper_bound=rmse + 0.01, output=str(tmp_path / "under"))
    evaluated(frame, rmse_upper_bound=rmse - 0.01, output=str(tmp_path / "over"))
    assert tfma.load_validation_result(str(tmp_path / "under")).validation_ok
    failed = tfma.load_validation_result(str(tmp_path / "over"))
    assert not failed.validation_ok
    # The failure names the RMSE on the overall slice, not a missing metric.
    (slice_failure,) = failed.metric_validations_per_slice
    assert not slice_failure.slice_key.single_slice_keys  # overall
    (failure,) = slice_failure.failures
    assert failure.metric_key.name == GATE_METRIC
    assert failure.metric_value.double_value.value == pytest.approx(rmse, rel=1e-9)


def test_an_empty_slice_counts_zero_and_has_no_means():
    sums = rating_metrics.Sums()
    count, *means = sums.values()
    assert count == 0.0 and all(math.isnan(m) for m in means)
    sums.add(4.0, 3.0)
    other = rating_metrics.Sums()
    other.add(2.0, 4.0)
    sums.merge(other)
    assert sums.values() == pytest.approx((2.0, 3.0, 3.5, 1.5, math.sqrt(2.5)))


def test_inspection_names_the_gated_metric_of_this_and_older_eval_configs():
    stored = json_format.MessageToJson(make_eval_config(1.1), preserving_proto_field_name=True)  # as MLMD keeps it
    assert decision_view.thresholds(stored) == {"metric": GATE_METRIC, "upper_bound": 1.1}
    older = make_eval_config(1.1)  # before the one-pass metrics: TFMA's RootMeanSquaredError carried the threshold
    gate = older.metrics_specs[0].metrics[0]
    gate.class_name, gate.module, gate.config = "RootMeanSquaredError", "", ""
    older_json = json_format.MessageToJson(older, preserving_proto_field_name=True)
    assert decision_view.thresholds(older_json) == {"metric": GATE_METRIC, "upper_bound": 1.1}
