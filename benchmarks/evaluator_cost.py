"""The Evaluator's cost: TFMA with the Evaluator's EvalConfig on a run's test split, variants side by side on the
same machine, the first one the reference:

- `all-features`: TFMA decodes every feature of the examples and slices on the whole Transform output
  (`transform_features`), as the Evaluator did before it got the ValidationGate's evaluation schema;
- `now`: the Evaluator's config and schema (the label decoded; the slice features from `slice_features`);
- `stock`: `all-features` with TFMA's five stock rating metrics instead of the one-pass RatingMetrics.

    python benchmarks/evaluator_cost.py --examples PIPELINE_ROOT/ExampleGen/examples/N \
        --model PIPELINE_ROOT/Trainer/model/M/Format-Serving --schema PIPELINE_ROOT/ValidationGate/validated_schema/K \
        [--variants all-features,now] [--repeats 2] [--no-user-attributes]

Each variant runs `tfma.run_model_analysis` on the DirectRunner in this process, as the Evaluator does, its
`--repeats` runs alternating with the others'; the table gives each one's seconds (the best of its runs),
microseconds per test example, and the largest difference between its metrics and the reference's over every slice.
The model must have the `slice_features` signature for `now` (exported by this code or later).
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
from tfx.utils import io_utils  # noqa: E402

from components.evaluator.eval_config import METRICS_CLASS, evaluation_schema, make_eval_config  # noqa: E402
from transform import features as f  # noqa: E402

# The stock metrics the Evaluator used before RatingMetrics (TFMA's, and Keras's RMSE through TFMA's wrapper).
STOCK = ("ExampleCount", "RootMeanSquaredError", "MeanAbsoluteError", "MeanLabel", "MeanPrediction")


VARIANTS = ("all-features", "now", "stock")


def config(variant: str, user_attributes: bool) -> tfma.EvalConfig:
    """The Evaluator's EvalConfig (no gate), as `variant` says."""
    result = make_eval_config(rmse_upper_bound=100.0, user_attributes=user_attributes)
    if variant != "now":
        result.model_specs[0].preprocessing_function_names[:] = [f.TRANSFORM_SIGNATURE]
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
    parser.add_argument("--schema", type=Path, required=True, help="a ValidationGate's validated_schema directory")
    parser.add_argument("--variants", default="all-features,now", help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-user-attributes", action="store_true", help="a release without a users file")
    args = parser.parse_args()
    variants = args.variants.split(",")
    if unknown := set(variants) - set(VARIANTS):
        parser.error(f"unknown variants {sorted(unknown)}")
    files = sorted(glob.glob(str(args.examples / "Split-test" / "*")))
    examples = sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP"))
    schema = evaluation_schema(io_utils.SchemaReader().read(str(args.schema / "schema.pbtxt")))
    seconds: dict[str, list[float]] = {variant: [] for variant in variants}
    outputs = {}
    with tempfile.TemporaryDirectory() as work:
        for repeat in range(args.repeats):
            for variant in variants:
                eval_config = config(variant, not args.no_user_attributes)
                shared = tfma.default_eval_shared_model(eval_saved_model_path=str(args.model), eval_config=eval_config)
                outputs[variant] = os.path.join(work, f"{variant}-{repeat}")
                started = time.monotonic()
                tfma.run_model_analysis(
                    eval_shared_model=shared,
                    eval_config=eval_config,
                    data_location=str(args.examples / "Split-test" / "*"),
                    output_path=outputs[variant],
                    schema=schema if variant == "now" else None,
                )
                seconds[variant].append(time.monotonic() - started)
                print(f"  {variant} run {repeat + 1}: {seconds[variant][-1]:.1f} s", file=sys.stderr)
        found = {variant: slice_metrics(outputs[variant]) for variant in variants}
    reference = variants[0]
    print(f"{examples:,} test examples, {len({key for key, _ in found[reference]})} slices")
    print("| variant | seconds (best) | µs per example | vs " + reference + " | largest metric difference |")
    print("|---|---|---|---|---|")
    best = {variant: min(times) for variant, times in seconds.items()}
    for variant in variants:
        shared_keys = set(found[variant]) & set(found[reference])
        if set(found[variant]) != set(found[reference]):
            print(f"  {variant}: other slices or metrics than {reference}'s", file=sys.stderr)
        difference = max(abs(found[variant][k] - found[reference][k]) for k in shared_keys)
        print(f"| {variant} | {best[variant]:.1f} | {best[variant] / examples * 1e6:.0f} | "
              f"{best[variant] / best[reference]:.2f} | {difference:.1e} |")  # fmt: skip


if __name__ == "__main__":
    main()
