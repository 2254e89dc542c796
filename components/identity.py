"""Which data, and which split of it, a model was trained on: what a baseline and a push are checked against.

A model is the baseline of a new one only if both were trained on the same data *and* split: the RankingEvaluator
compares them on the new model's test split, which a model trained on another split (another protocol or seed)
or on other data has partly trained on, or never seen the like of. A model may replace the served one only if both
come from the same data (another split of the same data is fine: that is what retraining does); a model of other
data goes to another `--serving-dir` or `--model-name`.

The data is named by its release directory's name (`ml-100k`, `ml-latest-small`, a `--dataset` name, the directory
given with `--input-dir`) and its layout: a refreshed copy under the same name is the same data (its model is
compared with the served one and may replace it), two releases live under two names. The split is the protocol, the
seed it draws with (0 for the time split, which draws nothing) and the time split's fractions.
The Trainer writes the identity beside the SavedModel (IDENTITY_FILE), so it travels with every push.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

IDENTITY_FILE = "training_identity.json"
DATA_FIELDS = ("dataset", "layout")


def identity(data_dir: str, layout: str, split: str, split_seed: int, split_fractions: tuple[float, ...]) -> dict:
    """The identity of a model trained on `data_dir` (a release directory) split by `split`."""
    return {
        "dataset": os.path.basename(data_dir.rstrip("/")),
        "layout": layout,
        "split": split,
        "split_seed": split_seed,
        "split_fractions": list(split_fractions),
    }


def write(model_dir: str, value: dict) -> None:
    with tf.io.gfile.GFile(os.path.join(model_dir, IDENTITY_FILE), "w") as out:
        json.dump(value, out, indent=1, sort_keys=True)


def read(model_dir: str) -> dict | None:
    """The identity written beside a SavedModel; None for a model saved before identities existed."""
    path = os.path.join(model_dir, IDENTITY_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        return json.load(handle)


def describe(value: dict | None) -> str:
    if value is None:
        return "unknown data (a model saved before training identities were recorded)"
    split = value["split"] + (f" seed {value['split_seed']}" if value["split_seed"] else "")
    return f"{value['dataset']} ({value['layout']} layout), {split} split"


def baseline_mismatch(candidate: dict, baseline: dict | None) -> str | None:
    """Why `baseline` cannot be compared with `candidate` (other data or another split), or None."""
    if baseline != candidate:
        return f"the last blessed model was trained on {describe(baseline)}, this one on {describe(candidate)}"
    return None


def push_mismatch(candidate: dict, served: dict | None) -> str | None:
    """Why a model of `candidate`'s data must not replace the served one of `served`'s, or None.

    A served model without an identity (saved before identities existed) may be replaced: nothing says otherwise.
    """
    if served is not None and any(served[name] != candidate[name] for name in DATA_FIELDS):
        return f"it serves a model of {describe(served)}; this run's data is {describe(candidate)}"
    return None


def latest_served(model_serving_dir: str) -> str | None:
    """The newest numbered version directory under a TF Serving model base path, or None."""
    if not tf.io.gfile.isdir(model_serving_dir):
        return None
    versions = [name.rstrip("/") for name in tf.io.gfile.listdir(model_serving_dir) if name.rstrip("/").isdigit()]
    return os.path.join(model_serving_dir, max(versions, key=int)) if versions else None
