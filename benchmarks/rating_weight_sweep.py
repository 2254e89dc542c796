"""How the weights in `recommend`'s scores move top-10 accuracy: NDCG@10, precision, recall, MAP of one pushed
model on its run's test split, for several `rating_weight` values, item-item shares and new-user popularity
weights (set on the loaded model).

    python benchmarks/rating_weight_sweep.py --pipeline-root artifacts/pipeline [--weights 0,0.3,1] [--shares 0,0.5,1] \
        [--priors 0,8] [--metadata-path FILE]

A diagnostic after the fact: it reads the test split, so nothing here may choose a setting. The Trainer chooses
the item-item share and the rating weight on eval (history.json's "item_item"); this shows how far from the best
on test those choices landed. The default share and new-user popularity are the pushed model's own.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from components.ranking_evaluator import component, metrics  # noqa: E402
from pipeline import pipeline as dag  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline-root", required=True)
    parser.add_argument("--weights", default="0,0.25,0.5,1,2")
    parser.add_argument("--shares", default="", help="Item-item shares (default: the pushed model's).")
    parser.add_argument("--priors", default="", help="New-user popularity weights (default: the pushed model's).")
    parser.add_argument("--metadata-path", default=None, help="The run's ML Metadata file, if not the default.")
    args = parser.parse_args()
    command = [sys.executable, "-m", "recommender.cli", "inspect", "--pipeline-root", args.pipeline_root, "--json"]
    if args.metadata_path:
        command += ["--metadata-path", args.metadata_path]
    inspected = subprocess.run(command, capture_output=True, text=True, check=True)
    data = json.loads(inspected.stdout)
    model = tf.saved_model.load(os.path.join(data["artifacts"][f"{dag.TRAINER}.model"], "Format-Serving"))
    users = component.read_test_users(data["artifacts"][f"{dag.EXAMPLE_GEN}.examples"], "test")
    relevant = {user: entry["relevant"] for user, entry in users.items()}
    r = model.recommender
    shares = [float(s) for s in args.shares.split(",")] if args.shares else [float(r.item_share)]
    own = r.new_user_popularity.numpy()  # a weight by given ratings; the test users give none (the first)
    priors = [np.full_like(own, float(p)) for p in args.priors.split(",")] if args.priors else [own]
    print("| item-item share | new-user popularity | rating_weight | NDCG@10 | P@10 | R@10 | MAP |")
    print("|---|---|---|---|---|---|---|")
    for share, prior in itertools.product(shares, priors):
        r.item_share.assign(share)
        r.new_user_popularity.assign(prior)
        for weight in (float(w) for w in args.weights.split(",")):
            r.rating_weight.assign(weight)
            ranked = component.recommend_all(model, sorted(users), 10)
            m = metrics.accuracy(ranked, relevant, 10)
            figures = " | ".join(f"{m[name]:.4f}" for name in ("ndcg", "precision", "recall", "map"))
            print(f"| {share:g} | {prior[0]:g} | {weight:g} | {figures} |")


if __name__ == "__main__":
    main()
