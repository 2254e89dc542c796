"""The Trainer's entry point: `run_fn`, called by the TFX Trainer component.

It only orchestrates: data.py builds the datasets, model.py the model, export.py the
signatures. Hyperparameters come from the Tuner when it ran, else from TrainerConfig.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import time

import keras_tuner
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx

from components import identity
from components.trainer import data, export
from components.trainer.model import EnsembleModel, Hyperparameters, Vocabularies, build_model, unread_lists
from components.trainer.retrieval_training import train_recommender
from pipeline.config import TrainerConfig

HISTORY_FILE = "history.json"  # Per-epoch loss/RMSE, written next to the model.
ENSEMBLE_SEED_STEP = 1000  # member i of an ensemble trains with seed + i * this


def hyperparameters(config: TrainerConfig, tuned: dict | None) -> Hyperparameters:
    """The Tuner's best values when given (its HyperParameters config), else the config's defaults."""
    defaults = Hyperparameters(
        config.learning_rate,
        config.embedding_dim,
        config.layer_sizes,
        config.l2,
        config.id_embeddings,
        config.history_factors,
        config.factor_l2,
    )
    if not tuned:
        return defaults
    values = keras_tuner.HyperParameters.from_config(tuned).values
    return hyperparameters_from_values(values, defaults)


def hyperparameters_from_values(values: dict, defaults: Hyperparameters) -> Hyperparameters:
    """Hyperparameters from a KerasTuner values dict (layer sizes are encoded as '64-32')."""
    layers = values.get("layer_sizes")
    return Hyperparameters(
        learning_rate=float(values.get("learning_rate", defaults.learning_rate)),
        embedding_dim=int(values.get("embedding_dim", defaults.embedding_dim)),
        layer_sizes=tuple(int(x) for x in layers.split("-")) if layers else defaults.layer_sizes,
        l2=float(values.get("l2", defaults.l2)),
        id_embeddings=bool(values.get("id_embeddings", defaults.id_embeddings)),
        history_factors=int(values.get("history_factors", defaults.history_factors)),
        factor_l2=float(values.get("factor_l2", defaults.factor_l2)),
    )


def scaled(hp: Hyperparameters, batch_size: int, base_batch_size: int) -> Hyperparameters:
    """`hp` for batches of `batch_size`: the learning rate (chosen at `base_batch_size`, the Tuner's) times the
    square root of the batch's growth, as is usual for Adam (at 1M ratings, batches of 1,024 with 0.002 reached
    eval RMSE 0.6672 against 0.6688 for 256 with 0.001, docs/results.md)."""
    return dataclasses.replace(hp, learning_rate=hp.learning_rate * math.sqrt(batch_size / base_batch_size))


def distribution_strategy() -> tf.distribute.Strategy:
    """MirroredStrategy over all visible GPUs, else the default (CPU) strategy."""
    gpus = tf.config.list_physical_devices("GPU")
    return tf.distribute.MirroredStrategy() if gpus else tf.distribute.get_strategy()


def train_ranker(
    config: TrainerConfig,
    hp: Hyperparameters,
    vocab: Vocabularies,
    train: tf.data.Dataset,
    val: tf.data.Dataset,
    seed: int,
    callbacks: tuple[tf.keras.callbacks.Callback, ...] = (),
    initial_weights: list | None = None,
) -> tuple[tf.keras.Model, dict]:
    """One ranking model trained from `seed` with early stopping on eval RMSE (best weights kept); its history.

    `callbacks` run before the early stopping; `initial_weights` (another model's) replace the random start.
    """
    tf.keras.utils.set_random_seed(seed)
    with distribution_strategy().scope():
        model = build_model(hp, vocab)
    if initial_weights is not None:
        model(next(iter(train))[0])  # creates the variables
        model.set_weights(initial_weights)
    history = model.fit(
        train,
        validation_data=val,
        epochs=config.epochs,
        verbose=0,
        callbacks=[
            *callbacks,
            tf.keras.callbacks.EarlyStopping(
                monitor="val_root_mean_squared_error",
                mode="min",
                patience=config.early_stopping_patience,
                restore_best_weights=True,
            ),
        ],
    )
    return model, history.history


def refit_ranker(
    hp: Hyperparameters, vocab: Vocabularies, train_and_eval: tf.data.Dataset, seed: int, epochs: int
) -> tuple[tf.keras.Model, dict]:
    """A fresh ranking model from `seed` trained for `epochs` on train and eval together (no early stopping:
    `epochs` is the best epoch train_ranker found on eval); its history."""
    tf.keras.utils.set_random_seed(seed)
    with distribution_strategy().scope():
        model = build_model(hp, vocab)
    return model, model.fit(train_and_eval, epochs=epochs, verbose=0).history


def best_epoch(history: dict) -> int:
    """The epoch (1-based) with the lowest eval RMSE: the one early stopping restored."""
    scores = history["val_root_mean_squared_error"]
    return scores.index(min(scores)) + 1


# Called by the TFX Trainer component.
def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Trains the ranking model(s) with early stopping on eval RMSE and exports them for serving.

    With `ensemble_size` N > 1, N models (seeds seed, seed+1000, ...) are averaged in the exported model.
    With `refit`, each is then retrained for its best epoch on train and eval together (refit_ranker).
    The examples are parsed once into a temporary file cache (data.parsed_once); the batch is doubled until an
    epoch takes at most `ranker_epoch_steps` steps, the learning rate scaled with it (`scaled`).
    """
    config = TrainerConfig.from_dict(fn_args.custom_config or {})
    seconds: dict[str, float] = {}  # wall time of each phase, in history.json
    started = time.monotonic()
    tf.keras.utils.set_random_seed(config.seed)
    tft_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    members, screened, histories, refits = [], [], [], []
    seconds["ranker"] = seconds["refit"] = 0.0
    hp = hyperparameters(config, fn_args.hyperparameters)
    unread = unread_lists(hp)
    with tempfile.TemporaryDirectory(prefix="ranker-parsed-") as cache_dir:  # the parsed examples, once
        train, val = data.train_and_eval(fn_args, tft_output, config.batch_size, config.seed, cache_dir, unread)
        vocab = data.vocabularies(tft_output, train)  # the first pass: fills train's cache
        batch = data.batch_size_for(vocab.train_rows, config.batch_size, config.ranker_epoch_steps)
        hp = scaled(hp, batch, config.batch_size)
        train, val = data.epochs_of(train, batch, True, config.seed), data.epochs_of(val, batch, False, config.seed)
        files, path = [*fn_args.train_files, *fn_args.eval_files], os.path.join(cache_dir, "train_and_eval")
        both = (  # the refit's data: train and eval shuffled together
            data.epochs_of(
                data.cached(files, fn_args, tft_output, config.batch_size, True, config.seed, path, unread),
                batch,
                True,
                config.seed,
            )
            if config.refit
            else None
        )
        for i in range(config.ensemble_size):
            seed = config.seed + ENSEMBLE_SEED_STEP * i
            member, member_history = train_ranker(config, hp, vocab, train, val, seed)
            screened.append(member)  # trained on train alone: what choices on eval may use
            seconds["ranker"], started = seconds["ranker"] + time.monotonic() - started, time.monotonic()
            if config.refit:
                epochs = best_epoch(member_history)
                member, refit_history = refit_ranker(hp, vocab, both, seed, epochs)
                refits.append({"epochs": epochs, "loss": refit_history["loss"]})
                seconds["refit"], started = seconds["refit"] + time.monotonic() - started, time.monotonic()
            members.append(member)
            histories.append(member_history)
    model = members[0] if len(members) == 1 else EnsembleModel(members)
    recommender, retrieval_history, choices = train_recommender(
        fn_args, tft_output, config, vocab, distribution_strategy(),
        screened[0] if len(screened) == 1 else EnsembleModel(screened),
    )  # fmt: skip
    seconds["recommender"], started = time.monotonic() - started, time.monotonic()
    export.export_serving_model(model, tft_output, fn_args.serving_model_dir, recommender)
    if "training_identity" in (fn_args.custom_config or {}):  # beside the SavedModel: it travels with every push
        identity.write(fn_args.serving_model_dir, json.loads(fn_args.custom_config["training_identity"]))
    seconds["export"] = time.monotonic() - started
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, HISTORY_FILE), "w") as out:
        record = {
            "hyperparameters": hp.to_dict(),  # the learning rate as scaled for `batch_size`
            "batch_size": batch,
            "history": histories[0],
            "ensemble_histories": histories[1:],
            "refit": refits,  # per model: the epochs on train + eval and their training loss
            "retrieval_history": retrieval_history,
            # λ, share and rating weight chosen on eval with each candidate's eval NDCG@10; the neighbours' bytes
            "item_item": choices,
            "seconds": seconds,  # ranker, its refit, recommender (retrieval_history's "seconds": its phases), export
        }
        json.dump(record, out, indent=1)
