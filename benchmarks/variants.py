"""Variants of the ranking model, each a row: eval and test RMSE, and what it costs.

    python benchmarks/variants.py --pipeline-root artifacts/benchmark/ours/time/pipeline \
        [--variants base,dcn,average,ensemble,warm] [--seeds 43,44,45] [--hp history_factors=32,factor_l2=3e-5 ...]

It trains the ranking model the way the Trainer does (components/trainer: same data functions, model,
TrainerConfig defaults, early stopping on eval RMSE with the best weights restored) on the examples a
benchmark run left in the pipeline root, with the hyperparameters that run's Tuner chose. The k-th seed
uses the root's k-th ExampleGen output with its Transform and Tuner outputs (the stratified protocol draws a
new split per seed; the time split has one). RMSE is computed as the pushed model serves (raw examples
through the Transform graph, predictions clipped to the rating range) on the eval and test splits.
Choices are read off eval; test is reported beside it.

Variants:
- base: the Trainer's model as early stopping leaves it (before the refit the Trainer now does by default).
- dcn: a DCN-v2 cross layer over the tower's input (Hyperparameters.cross_layers = 1).
- average: base's weights averaged over its best epoch and the two before it (no extra training).
- ensemble: the mean prediction of 3 base models (seeds s, s+1000, s+2000), as `--ensemble 3` trains them;
  with `--members N` (N > 3) also of N ("ensembleN").
- warm: starts from another seed's base weights (the "last blessed model" on the same data) and trains on;
  reports epochs and seconds to reach the base model's best eval RMSE, warm vs from scratch.
- refit: early stopping finds the best epoch E on held-out data, then a fresh model (same seed) trains for E
  epochs on that data too. So that the choice is read on eval, this variant holds out part of train as its
  "eval" (`--holdout time`: train's last 25% by time; `random`: 13% at random): "refit-base" trains on the
  rest with early stopping on the held-out part, "refit" retrains on all of train for its best epoch; both
  are scored on the real eval and test splits.
- refit-oov: refit, with the users and movies first seen in the held-out part mapped to the OOV id of their
  vocabulary, in training and in scoring: what the Trainer's refit does when Transform's vocabularies come from
  train alone and users first seen in eval share the OOV embedding. "refit" beside it is the refit with
  vocabularies over both parts. (The movies in users' history lists keep their ids: a measured 1.6% of ML-100k's
  time-split test ratings have a movie first seen in eval.)
- each `--hp NAME=VALUE[,NAME=VALUE]`: base with those hyperparameters changed (a row named after them; layer
  sizes as 64x32). Ensemble and warm rows use the run's own hyperparameters, or `--set`'s changes of them.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402
from tfx_bsl.public import tfxio  # noqa: E402

from components.trainer import data  # noqa: E402
from components.trainer.model import Hyperparameters, Vocabularies  # noqa: E402
from components.trainer.task import (  # noqa: E402
    ENSEMBLE_SEED_STEP,
    best_epoch,
    hyperparameters,
    refit_ranker,
    train_ranker,
)
from pipeline.config import TrainerConfig  # noqa: E402
from transform import features as f  # noqa: E402

VARIANTS = ("base", "dcn", "average", "ensemble", "warm", "refit", "refit-oov")


@dataclasses.dataclass
class Run:
    """One seed's data: transformed train/eval datasets, raw eval/test examples, the chosen hyperparameters."""

    tft_output: tft.TFTransformOutput
    train: tf.data.Dataset
    val: tf.data.Dataset
    raw: dict[str, dict[str, tf.Tensor]]  # split -> transformed features of every raw example (+ labels)
    hp: Hyperparameters
    vocab: Vocabularies


def _ids(pattern: str) -> list[str]:
    return sorted(glob.glob(pattern), key=lambda path: int(os.path.basename(path)))


def load(root: Path, index: int, config: TrainerConfig) -> Run:
    examples = _ids(str(root / "ExampleGen" / "examples" / "*"))
    graphs = _ids(str(root / "Transform" / "transform_graph" / "*"))
    transformed = _ids(str(root / "Transform" / "transformed_examples" / "*"))
    tuned = _ids(str(root / "Tuner" / "best_hyperparameters" / "*"))
    pick = lambda paths: paths[min(index, len(paths) - 1)]  # noqa: E731 - one split for the time protocol
    tft_output = tft.TFTransformOutput(pick(graphs))
    schema = tft_output.transformed_metadata.schema

    def dataset(split: str, shuffle: bool) -> tf.data.Dataset:
        files = glob.glob(os.path.join(pick(transformed), f"Split-{split}", "*"))
        options = tfxio.TensorFlowDatasetOptions(
            batch_size=config.batch_size, label_key=f.LABEL_XF, shuffle=shuffle, shuffle_seed=config.seed, num_epochs=1
        )
        return tfxio.TFExampleRecord(files, schema=schema).TensorFlowDataset(options)

    layer = tft_output.transform_features_layer()
    raw_spec = tft_output.raw_feature_spec()
    raw = {}
    for split in ("eval", "test"):
        files = glob.glob(os.path.join(pick(examples), f"Split-{split}", "*"))
        batches = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(4096)
        parts = [layer(tf.io.parse_example(batch, raw_spec)) for batch in batches]
        raw[split] = {name: tf.concat([p[name] for p in parts], 0) for name in parts[0]}
    best = json.loads(Path(pick(tuned), "best_hyperparameters.txt").read_text()) if tuned else None
    train = dataset("train", True)
    vocab = data.vocabularies(tft_output, train)
    return Run(tft_output, train, dataset("eval", False), raw, hyperparameters(config, best), vocab)


def predict(model: tf.keras.Model, features: dict[str, tf.Tensor]) -> np.ndarray:
    return np.concatenate(
        [
            model({name: value[start : start + 8192] for name, value in features.items()}).numpy().reshape(-1)
            for start in range(0, int(features[f.LABEL_XF].shape[0]), 8192)
        ]
    )


def rmse(prediction: np.ndarray, features: dict[str, tf.Tensor], rating_range) -> float:
    label = features[f.LABEL_XF].numpy().reshape(-1)
    return float(np.sqrt(np.mean((np.clip(prediction, *rating_range) - label) ** 2)))


class Snapshots(tf.keras.callbacks.Callback):
    """Every epoch's weights and wall time; the epoch the eval RMSE first reached `target`."""

    def __init__(self, target: float | None = None):
        super().__init__()
        self.weights, self.seconds, self.target, self.reached = [], [], target, None
        self._start = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())
        self.seconds.append(time.monotonic() - self._start)
        if self.target is not None and self.reached is None and logs["val_root_mean_squared_error"] <= self.target:
            self.reached = epoch + 1


def train(run: Run, config: TrainerConfig, hp: Hyperparameters, seed: int, init=None, target=None):
    """The Trainer's fit (task.train_ranker); the model, its epoch snapshots, its best epoch and eval RMSE."""
    snapshots = Snapshots(target)
    model, history = train_ranker(config, hp, run.vocab, run.train, run.val, seed, (snapshots,), init)
    scores = history["val_root_mean_squared_error"]
    return model, snapshots, best_epoch(history), min(scores)


def _train_table(run: Run) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
    """Every transformed train example in memory: (features, labels)."""
    batches = list(run.train.unbatch().batch(8192))  # the shuffled order; the split below is by time or by hash
    features = {name: tf.concat([b[0][name] for b in batches], 0) for name in batches[0][0]}
    return features, tf.concat([b[1] for b in batches], 0)


def _dataset(features, labels, mask, config: TrainerConfig, shuffle: bool) -> tf.data.Dataset:
    picked = {name: tf.boolean_mask(value, mask) for name, value in features.items()}
    dataset = tf.data.Dataset.from_tensor_slices((picked, tf.boolean_mask(labels, mask)))
    if shuffle:
        dataset = dataset.shuffle(100_000, seed=config.seed, reshuffle_each_iteration=True)
    return dataset.batch(config.batch_size)


def _ids_to_oov(features: dict[str, tf.Tensor], known: dict[str, np.ndarray], oov: dict[str, int]) -> dict:
    """`features` with every user (movie) id index outside `known[name]` replaced by that vocabulary's OOV index."""
    mapped = {}
    for name, indices in known.items():
        values = features[name].numpy()
        mapped[name] = tf.constant(np.where(np.isin(values, indices), values, oov[name]), features[name].dtype)
    return {**features, **mapped}


def refit(
    run: Run, config: TrainerConfig, seed: int, by_time: bool, oov_after_inner: bool = False
) -> tuple[tf.keras.Model, tf.keras.Model, int, dict | None]:
    """(the model early-stopped on a held-out part of train, the model retrained on all of train, best epoch,
    and with `oov_after_inner` the raw splits with ids unseen in the inner part mapped to OOV, else None).

    With `oov_after_inner` the retraining sees users and movies first seen in the held-out part as OOV, as the
    Trainer's refit sees those first seen in eval (vocabularies from train only)."""
    features, labels = _train_table(run)
    timestamps = tf.reshape(tf.cast(features[f.TIMESTAMP], tf.float64), [-1]).numpy()
    if by_time:
        held = timestamps >= np.quantile(timestamps, 0.75)
    else:
        held = np.random.default_rng(seed).random(len(timestamps)) < 0.13
    inner = _dataset(features, labels, ~held, config, True)
    outer = _dataset(features, labels, held, config, False)
    base, history = train_ranker(config, run.hp, run.vocab, inner, outer, seed)
    epochs = best_epoch(history)
    raw = None
    if oov_after_inner:
        names = (f.USER_ID_XF, f.MOVIE_ID_XF)
        known = {name: np.unique(tf.boolean_mask(features[name], ~held).numpy()) for name in names}
        oov = {name: run.tft_output.vocabulary_size_by_name(f.VOCAB_FEATURES[name]) for name in names}  # 1 bucket
        features = _ids_to_oov(features, known, oov)
        raw = {split: _ids_to_oov(values, known, oov) for split, values in run.raw.items()}
    whole = _dataset(features, labels, np.ones_like(held), config, True)
    return base, refit_ranker(run.hp, run.vocab, whole, seed, epochs)[0], epochs, raw


def overrides(text: str, hp: Hyperparameters) -> dict:
    """'history_factors=32,layer_sizes=64x32' → Hyperparameters fields typed like `hp`'s (SystemExit if unknown)."""
    names = [field.name for field in dataclasses.fields(Hyperparameters)]
    parsed = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        if name not in names or not value:
            raise SystemExit(f"Error: --hp {item!r}: expected NAME=VALUE with NAME one of {', '.join(names)}")
        kind = type(getattr(hp, name))
        if kind is tuple:
            parsed[name] = tuple(int(units) for units in value.split("x"))
        elif kind is bool:
            parsed[name] = value.lower() in ("1", "true", "yes")
        else:
            parsed[name] = kind(float(value))
    return parsed


def measure(
    run: Run,
    config: TrainerConfig,
    seed: int,
    variants: tuple[str, ...],
    members: int = 3,
    changes: tuple[str, ...] = (),
    by_time: bool = True,
) -> list[dict]:
    rating_range = data.rating_range(run.tft_output)
    rows = []

    def row(name, predictions, seconds, **extra):
        rows.append(
            {
                "seed": seed,
                "variant": name,
                "eval": rmse(predictions["eval"], run.raw["eval"], rating_range),
                "test": rmse(predictions["test"], run.raw["test"], rating_range),
                "train_s": round(seconds, 1),
                **extra,
            }
        )
        print(json.dumps(rows[-1]), flush=True)

    started = time.monotonic()
    base, base_snaps, best_epoch, best_eval = train(run, config, run.hp, seed)
    base_s = time.monotonic() - started
    base_pred = {split: predict(base, run.raw[split]) for split in run.raw}
    if "base" in variants:
        row("base", base_pred, base_s, epochs=best_epoch, hp=run.hp.to_dict())
    for change in changes:
        started = time.monotonic()
        model, _, epoch, _ = train(run, config, dataclasses.replace(run.hp, **overrides(change, run.hp)), seed)
        row(change, {s: predict(model, run.raw[s]) for s in run.raw}, time.monotonic() - started, epochs=epoch)
    if "average" in variants:
        first = max(0, best_epoch - 3)
        averaged = [np.mean(layer, axis=0) for layer in zip(*base_snaps.weights[first:best_epoch], strict=True)]
        keep = base.get_weights()
        base.set_weights(averaged)
        row("average", {s: predict(base, run.raw[s]) for s in run.raw}, base_s, epochs=f"{first + 1}-{best_epoch}")
        base.set_weights(keep)
    if "dcn" in variants:
        started = time.monotonic()
        dcn, _, epoch, _ = train(run, config, dataclasses.replace(run.hp, cross_layers=1), seed)
        row("dcn", {s: predict(dcn, run.raw[s]) for s in run.raw}, time.monotonic() - started, epochs=epoch)
    if "ensemble" in variants:
        predictions, seconds = [base_pred], base_s
        for i in range(1, members):  # the Trainer's member seeds (components/trainer/task.py)
            started = time.monotonic()
            member, *_ = train(run, config, run.hp, seed + ENSEMBLE_SEED_STEP * i)
            seconds += time.monotonic() - started
            predictions.append({s: predict(member, run.raw[s]) for s in run.raw})
        for size in sorted({min(3, members), members}):  # the 3-member figure comes free with a larger ensemble
            mean = {s: np.mean([m[s] for m in predictions[:size]], axis=0) for s in run.raw}
            row("ensemble" if size == 3 else f"ensemble{size}", mean, seconds * size / members, members=size)
    if "refit" in variants:
        started = time.monotonic()
        inner, whole, epochs, _ = refit(run, config, seed, by_time)
        seconds = time.monotonic() - started
        row("refit-base", {s: predict(inner, run.raw[s]) for s in run.raw}, seconds, epochs=epochs)
        row("refit", {s: predict(whole, run.raw[s]) for s in run.raw}, seconds, epochs=epochs)
    if "refit-oov" in variants:
        started = time.monotonic()
        _, whole, epochs, raw = refit(run, config, seed, by_time, oov_after_inner=True)
        row("refit-oov", {s: predict(whole, raw[s]) for s in raw}, time.monotonic() - started, epochs=epochs)
    if "warm" in variants:  # The last blessed model: another seed's base model on the same data.
        previous, *_ = train(run, config, run.hp, seed + 500)
        started = time.monotonic()
        warm, snaps, epoch, _ = train(run, config, run.hp, seed, init=previous.get_weights(), target=best_eval)
        warm_s = time.monotonic() - started
        row(
            "warm",
            {s: predict(warm, run.raw[s]) for s in run.raw},
            warm_s,
            epochs=epoch,
            # From scratch, the base model reached its best eval RMSE at its best epoch.
            to_base_eval_epochs={"warm": snaps.reached, "scratch": best_epoch},
            to_base_eval_s={
                "warm": round(snaps.seconds[snaps.reached - 1], 1) if snaps.reached else None,
                "scratch": round(base_snaps.seconds[best_epoch - 1], 1),
            },
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline-root", type=Path, required=True)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--seeds", default="43,44,45")
    parser.add_argument("--members", type=int, default=3, help="ensemble size (3 is also reported)")
    parser.add_argument("--holdout", choices=("time", "random"), default="time", help="refit's part of train held out")
    parser.add_argument("--set", help="NAME=VALUE[,NAME=VALUE]: change the run's hyperparameters for every row")
    parser.add_argument("--hp", action="append", default=[], help="NAME=VALUE[,NAME=VALUE]: a base row with these")
    parser.add_argument("--output", type=Path, help="write the rows as JSON here too")
    args = parser.parse_args()
    variants = tuple(v for v in args.variants.split(",") if v)
    for change in args.hp + ([args.set] if args.set else []):
        overrides(change, hyperparameters(TrainerConfig(), None))  # a wrong name fails before any training
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; expected some of {', '.join(VARIANTS)}")
    rows = []
    for index, seed in enumerate(int(s) for s in args.seeds.split(",")):
        config = TrainerConfig(seed=seed)
        run = load(args.pipeline_root, index, config)
        if args.set:
            run.hp = dataclasses.replace(run.hp, **overrides(args.set, run.hp))
        rows += measure(run, config, seed, variants, args.members, tuple(args.hp), args.holdout == "time")
    if args.output:
        args.output.write_text(json.dumps(rows, indent=1))
    width = max([10] + [len(r["variant"]) for r in rows])
    print(f"\n{'variant':<{width}} {'eval RMSE':>16} {'test RMSE':>16} {'train s':>9}")
    for variant in dict.fromkeys(r["variant"] for r in rows):
        chosen = [r for r in rows if r["variant"] == variant]
        ev, te, sec = (np.array([r[k] for r in chosen]) for k in ("eval", "test", "train_s"))
        print(f"{variant:<{width}} {ev.mean():.4f} ± {ev.std():.4f} {te.mean():.4f} ± {te.std():.4f} {sec.mean():9.1f}")


if __name__ == "__main__":
    main()
