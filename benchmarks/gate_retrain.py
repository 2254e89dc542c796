"""How the blessing gate treats a retrain on the same data: every ordered pair of models of one pipeline root.

    python benchmarks/gate_retrain.py --pipeline-root artifacts/benchmark/ours/time/pipeline [--margins 0.005,0.01]
        [--models OTHER_ROOT/Trainer/model/*/Format-Serving ...]

The root's runs must share one split (the time split, or folds; not seeds of the stratified protocol, whose
seed draws the split): e.g. `benchmarks/benchmark.py --protocols time --models ours --seeds 3` leaves three
models trained with seeds 42, 43, 44 on the same examples. Each ordered pair (candidate, baseline) goes
through the gate's comparison (components/evaluator/paired.py: paired test RMSE difference, 95% bootstrap
interval over users) and the table says, per margin, how many pairs it blesses, beside what the old fixed
rule (point difference ≤ +0.01) did.
"""

from __future__ import annotations

import argparse
import glob
import itertools
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

import tensorflow as tf  # noqa: E402

from components.evaluator import paired  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline-root", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--margins", default="0.005,0.01")
    parser.add_argument(
        "--models",
        nargs="*",
        default=[],
        help="More SavedModels trained on the same split elsewhere (the time split"
        " is deterministic: another root's runs on the same data hold the same examples).",
    )
    args = parser.parse_args()
    examples = sorted(glob.glob(str(args.pipeline_root / "ExampleGen" / "examples" / "*")))
    if len(examples) != 1:
        sys.exit(f"Error: {args.pipeline_root} holds {len(examples)} ExampleGen outputs; the pairs need one split")
    models = sorted(glob.glob(str(args.pipeline_root / "Trainer" / "model" / "*" / "Format-Serving"))) + args.models
    if len(models) < 2:
        sys.exit(f"Error: {args.pipeline_root} holds {len(models)} trained models; pairs need two or more")
    loaded = {path: tf.saved_model.load(path) for path in models}
    errors = {}
    for path in models:  # one pass per model; pairs combine the per-user sums
        errors[path] = paired.squared_errors(examples[0], args.split, loaded[path])
    margins = [float(m) for m in args.margins.split(",")]
    for number, path in enumerate(models, 1):
        print(f"model {number}: {path}")
    print("| candidate | baseline | RMSE | baseline RMSE | difference | 95% interval | " +
          " | ".join(f"blessed at +{m:g}" for m in margins) + " | old rule (≤ +0.01) |")  # fmt: skip
    print("|---|---|---|---|---|---|" + "---|" * (len(margins) + 1))
    passed = {m: 0 for m in margins}
    old = pairs = 0
    for candidate, baseline in itertools.permutations(models, 2):
        c, b = errors[candidate], errors[baseline]
        assert c.users == b.users
        result = paired.bootstrap(paired.UserErrors(c.users, c.counts, c.candidate, b.candidate))
        decisions = [paired.decide(result, m)[0] for m in margins]
        for m, ok in zip(margins, decisions, strict=True):
            passed[m] += ok
        old += result["difference"] <= 0.01
        pairs += 1
        name = lambda p: str(models.index(p) + 1)  # noqa: E731
        print(f"| {name(candidate)} | {name(baseline)} | {result['rmse']:.4f} | {result['baseline_rmse']:.4f} | "
              f"{result['difference']:+.4f} | [{result['difference_low']:+.4f}, {result['difference_high']:+.4f}] | "
              + " | ".join("yes" if ok else "no" for ok in decisions)
              + f" | {'yes' if result['difference'] <= 0.01 else 'no'} |")  # fmt: skip
    print()
    print(f"{pairs} ordered pairs, {result['users']:,} test users, {result['ratings']:,} ratings: blessed " +
          ", ".join(f"{passed[m]}/{pairs} at +{m:g}" for m in margins) + f"; old rule {old}/{pairs}")  # fmt: skip


if __name__ == "__main__":
    main()
