"""How the ranker's weight in `recommend`'s ordering score moves top-10 accuracy: NDCG@10, precision, recall, MAP
of one pushed model on its run's test split, for several `rating_weight` values (set on the loaded model).

    python benchmarks/rating_weight_sweep.py --pipeline-root artifacts/pipeline [--weights 0,0.25,0.5,1,2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tensorflow as tf  # noqa: E402

from components.ranking_evaluator import component, metrics  # noqa: E402
from pipeline import pipeline as dag  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline-root", required=True)
    parser.add_argument("--weights", default="0,0.25,0.5,1,2")
    args = parser.parse_args()
    inspected = subprocess.run(
        [sys.executable, "-m", "recommender.cli", "inspect", "--pipeline-root", args.pipeline_root, "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    data = json.loads(inspected.stdout)
    model = tf.saved_model.load(os.path.join(data["artifacts"][f"{dag.TRAINER}.model"], "Format-Serving"))
    users = component.read_test_users(data["artifacts"][f"{dag.EXAMPLE_GEN}.examples"], "test")
    relevant = {user: entry["relevant"] for user, entry in users.items()}
    print("| rating_weight | NDCG@10 | P@10 | R@10 | MAP |\n|---|---|---|---|---|")
    for weight in (float(w) for w in args.weights.split(",")):
        model.recommender.rating_weight.assign(weight)
        ranked = component.recommend_all(model, sorted(users), 10)
        m = metrics.accuracy(ranked, relevant, 10)
        print(f"| {weight:g} | {m['ndcg']:.4f} | {m['precision']:.4f} | {m['recall']:.4f} | {m['map']:.4f} |")


if __name__ == "__main__":
    main()
