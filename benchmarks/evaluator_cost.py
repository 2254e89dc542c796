"""The Evaluator's cost: TFMA with the Evaluator's EvalConfig on a run's test split, with TFMA's five stock rating
metrics (the reference, as before) and with the one-pass RatingMetrics (now), side by side on the same machine.

    python benchmarks/evaluator_cost.py --examples PIPELINE_ROOT/ExampleGen/examples/N \
        --model PIPELINE_ROOT/Trainer/model/M/Format-Serving [--repeats 2]

Each variant runs `tfma.run_model_analysis` on the DirectRunner in this process, as the Evaluator does, its
`--repeats` runs alternating with the other's; the table gives each one's seconds (the best of its runs),
microseconds per test example, and the largest difference between the two variants' metrics over every slice.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

import tensorflow as tf  # noqa: E402
import tensorflow_model_analysis as tfma  # noqa: E402

from components.evaluator.eval_config import METRICS_CLASS, make_eval_config  # noqa: E402

# The stock metrics the Evaluator used before RatingMetrics (TFMA's, and Keras's RMSE through TFMA's wrapper).
STOCK = ("ExampleCount", "RootMeanSquaredError", "MeanAbsoluteError", "MeanLabel", "MeanPrediction")


def config(variant: str) -> tfma.EvalConfig:
    """The Evaluator's EvalConfig (no gate), with its rating metrics as `variant` says."""
    result = make_eval_config(rmse_upper_bound=100.0)
    if variant == "stock":
        metrics = result.metrics_specs[0].metrics
        kept = [m for m in metrics if m.class_name != METRICS_CLASS]
        del metrics[:]
        metrics.extend([tfma.MetricConfig(class_name=name) for name in STOCK] + kept)
    return result


def slice_metrics(output: str) -> dict:
    result = tfma.load_eval_result(output)
    return {
        (key, name): value["doubleValue"]
        for key, m in result.slicing_metrics
        for name, value in m[""][""].items()
        if "doubleValue" in value
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=Path, required=True, help="an ExampleGen output (its Split-test)")
    parser.add_argument("--model", type=Path, required=True, help="a Trainer's Format-Serving directory")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    files = sorted(glob.glob(str(args.examples / "Split-test" / "*")))
    examples = sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP"))
    seconds: dict[str, list[float]] = {"stock": [], "one pass": []}
    outputs = {}
    with tempfile.TemporaryDirectory() as work:
        for repeat in range(args.repeats):
            for variant in seconds:
                eval_config = config(variant)
                shared = tfma.default_eval_shared_model(eval_saved_model_path=str(args.model), eval_config=eval_config)
                outputs[variant] = os.path.join(work, f"{variant}-{repeat}")
                started = time.monotonic()
                tfma.run_model_analysis(
                    eval_shared_model=shared,
                    eval_config=eval_config,
                    data_location=str(args.examples / "Split-test" / "*"),
                    output_path=outputs[variant],
                )
                seconds[variant].append(time.monotonic() - started)
                print(f"  {variant} run {repeat + 1}: {seconds[variant][-1]:.1f} s", file=sys.stderr)
        stock, one_pass = slice_metrics(outputs["stock"]), slice_metrics(outputs["one pass"])
    shared_keys = set(stock) & set(one_pass)
    difference = max(abs(stock[k] - one_pass[k]) for k in shared_keys)
    slices = len({key for key, _ in shared_keys})
    print(f"{examples:,} test examples, {slices} slices, largest metric difference {difference:.1e}")
    print("| rating metrics | seconds (best) | µs per example | vs stock |\n|---|---|---|---|")
    best = {variant: min(times) for variant, times in seconds.items()}
    for variant, value in best.items():
        print(f"| {variant} | {value:.1f} | {value / examples * 1e6:.0f} | {value / best['stock']:.2f} |")


if __name__ == "__main__":
    main()
