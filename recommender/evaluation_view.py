"""The Evaluator's (TFMA's) figures for `recommender inspect`, `report` and the runner's summary: metrics per
slice and the calibration buckets of the candidate model, read from the evaluation artifact MLMD recorded."""

from __future__ import annotations

import math

from pipeline import metadata

OVERALL = "Overall"
# Reported metric names (TFMA keys) → short labels, in display order.
METRIC_LABELS = {
    "example_count": "examples",
    "root_mean_squared_error": "RMSE",
    "mean_absolute_error": "MAE",
    "mean_label": "mean rating",
    "mean_prediction": "mean prediction",
}


def slice_name(slice_key: tuple) -> tuple[str, str | None, str | None]:
    """A TFMA slice key → (display name, feature, value); the overall slice has no feature."""
    if not slice_key:
        return OVERALL, None, None
    feature, value = slice_key[0]
    value = value.decode() if isinstance(value, bytes) else str(value)
    return f"{feature}={value}", feature, value


def candidate_model_name(evaluation_uri: str) -> str | None:
    """The candidate's model name in a TFMA output: with a baseline, TFMA keys metrics and plots by model
    (`candidate`, `baseline`), and reading them with no name finds neither (and warns for every slice)."""
    run = metadata.artifact_json(evaluation_uri, "eval_config.json") or {}  # TFMA's record of the evaluation (EvalRun)
    specs = run.get("evalConfig", {}).get("modelSpecs", [])
    if len(specs) < 2:
        return None
    return next(spec.get("name") for spec in specs if not spec.get("isBaseline"))


def _eval_result(evaluation_uri: str):
    import tensorflow_model_analysis as tfma

    return tfma.load_eval_result(evaluation_uri, model_name=candidate_model_name(evaluation_uri))


def evaluation(evaluation_uri: str) -> list[dict]:
    """TFMA metrics per slice (overall first) of the candidate model, from the Evaluator's output."""
    result = _eval_result(evaluation_uri)
    slices = []
    for slice_key, by_output in result.slicing_metrics:
        values = {}
        for by_class in by_output.values():
            for metrics in by_class.values():
                for name, metric in metrics.items():
                    if name in METRIC_LABELS and "doubleValue" in metric:
                        number = float(metric["doubleValue"])
                        values[name] = int(number) if name == "example_count" else number
        name, feature, value = slice_name(slice_key)
        slices.append({"slice": name, "feature": feature, "value": value, "metrics": values})
    return sorted(slices, key=lambda s: (s["feature"] is not None, s["feature"] or "", s["value"] or ""))


def _number(value) -> float:
    """TFMA writes plot numbers either bare or as {"value": x}; infinities as strings."""
    return float(value.get("value", 0.0) if isinstance(value, dict) else value)


def calibration(evaluation_uri: str) -> list[dict]:
    """The overall calibration buckets with examples: prediction range, count, mean label and prediction.

    The open-ended edge buckets (predictions of exactly 5.0 land in [5, inf)) get the inner width.
    """
    result = _eval_result(evaluation_uri)
    for slice_key, by_output in result.plots:
        if slice_key != () or not by_output:
            continue
        for by_class in by_output.values():
            for plots in by_class.values():
                histogram = next((p for p in plots.values() if isinstance(p, dict) and "buckets" in p), None)
                if histogram is None:
                    continue
                buckets = [{k: _number(v) for k, v in bucket.items()} for bucket in histogram["buckets"]]
                finite = [b for b in buckets if math.isfinite(b["lowerThresholdInclusive"])]
                width = finite[0]["upperThresholdExclusive"] - finite[0]["lowerThresholdInclusive"] if finite else 1.0
                rows = []
                for bucket in buckets:
                    count = bucket.get("numWeightedExamples", 0.0)
                    if count <= 0:
                        continue
                    low, high = bucket["lowerThresholdInclusive"], bucket["upperThresholdExclusive"]
                    low = low if math.isfinite(low) else high - width
                    high = high if math.isfinite(high) else low + width
                    rows.append(
                        {
                            "low": low,
                            "high": high,
                            "count": count,
                            "mean_label": bucket["totalWeightedLabel"] / count,
                            "mean_prediction": bucket["totalWeightedRefinedPrediction"] / count,
                        }
                    )
                return rows
    return []
