"""The Evaluator's rating metrics in one pass: example count, mean label, mean prediction, MAE and RMSE.

Why not TFMA's stock metrics: each one is its own combiner, and TFMA runs every combiner on every example of
every slice, converting the example's label and prediction each time (`metric_util.to_label_prediction_example_
weight`), and `RootMeanSquaredError` is Keras's, called through TFMA's TF-metric wrapper. With the five slicing
specs that was 8 conversions and 5 combiners per test example (94,430 slice-examples on ML-100k), most of the
Evaluator's time. This metric converts each slice-example once and keeps five sums; its keys are TFMA's names
for the same metrics, so thresholds, the report and the app read them unchanged. Measured on ML-100k's test
split (benchmarks/evaluator_cost.py): the same values to 1e-7, 0.82× the time.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

import apache_beam as beam
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_types, metric_util

# TFMA's names for the stock metrics this one replaces (ExampleCount, MeanLabel, MeanPrediction,
# MeanAbsoluteError, RootMeanSquaredError), in the order of `Sums.values`.
EXAMPLE_COUNT = "example_count"
MEAN_LABEL = "mean_label"
MEAN_PREDICTION = "mean_prediction"
MEAN_ABSOLUTE_ERROR = "mean_absolute_error"
ROOT_MEAN_SQUARED_ERROR = "root_mean_squared_error"
NAMES = (EXAMPLE_COUNT, MEAN_LABEL, MEAN_PREDICTION, MEAN_ABSOLUTE_ERROR, ROOT_MEAN_SQUARED_ERROR)


@dataclasses.dataclass
class Sums:
    """The running sums over (label, prediction) pairs."""

    count: float = 0.0
    labels: float = 0.0
    predictions: float = 0.0
    absolute_errors: float = 0.0
    squared_errors: float = 0.0

    def add(self, label: float, prediction: float) -> None:
        error = label - prediction
        self.count += 1.0
        self.labels += label
        self.predictions += prediction
        self.absolute_errors += abs(error)
        self.squared_errors += error * error

    def merge(self, other: Sums) -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    def values(self) -> tuple[float, ...]:
        """The five metrics in NAMES order (NaN but the count when empty)."""
        if not self.count:
            return (0.0,) + (math.nan,) * (len(NAMES) - 1)
        n = self.count
        return (n, self.labels / n, self.predictions / n, self.absolute_errors / n, math.sqrt(self.squared_errors / n))


class _Combiner(beam.CombineFn):
    """Sums of one model output's labels and predictions; one conversion per example."""

    def __init__(self, eval_config: tfma.EvalConfig, keys: list[metric_types.MetricKey]):
        self._eval_config = eval_config
        self._keys = keys

    def create_accumulator(self) -> Sums:
        return Sums()

    def add_input(self, accumulator: Sums, element: metric_types.StandardMetricInputs) -> Sums:
        key = self._keys[0]
        for label, prediction, _ in metric_util.to_label_prediction_example_weight(
            element, eval_config=self._eval_config, model_name=key.model_name, output_name=key.output_name
        ):
            accumulator.add(metric_util.safe_to_scalar(label), metric_util.safe_to_scalar(prediction))
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[Sums]) -> Sums:
        accumulators = iter(accumulators)
        result = next(accumulators)
        for accumulator in accumulators:
            result.merge(accumulator)
        return result

    def extract_output(self, accumulator: Sums) -> dict[metric_types.MetricKey, float]:
        return dict(zip(self._keys, accumulator.values(), strict=True))


def _computations(
    eval_config: tfma.EvalConfig | None = None,
    model_names: list[str] | None = None,
    output_names: list[str] | None = None,
    example_weighted: bool = False,
    **_: object,
) -> metric_types.MetricComputations:
    """One computation per model output, with the five keys (called by TFMA; the keys are NAMES whatever the
    metric's own name, which only tells TFMA where its threshold goes)."""
    if example_weighted:
        raise ValueError("RatingMetrics are unweighted (the Evaluator's MetricsSpec says so)")
    computations = []
    for model_name in model_names or [""]:
        for output_name in output_names or [""]:
            keys = [metric_types.MetricKey(name=n, model_name=model_name, output_name=output_name) for n in NAMES]
            combiner = _Combiner(eval_config, keys)
            computations.append(metric_types.MetricComputation(keys=keys, preprocessors=None, combiner=combiner))
    return computations


class RatingMetrics(metric_types.Metric):
    """Count, mean label, mean prediction, MAE and RMSE of a rating model, unweighted, in one combiner.

    Its name is the RMSE's, so a threshold set on its MetricConfig applies to the RMSE (TFMA keys thresholds
    by the metric's name); the other four keys ride along.
    """

    def __init__(self, name: str = ROOT_MEAN_SQUARED_ERROR):
        super().__init__(_computations, name=name)
