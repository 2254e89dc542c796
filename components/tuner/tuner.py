"""The Tuner's entry point: `tuner_fn`, called by the TFX Tuner component."""

from __future__ import annotations

import logging
import os

import keras_tuner
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx

from components.trainer import data
from components.trainer.model import Hyperparameters, build_model
from components.trainer.task import hyperparameters, hyperparameters_from_values
from pipeline.config import TrainerConfig

OBJECTIVE = keras_tuner.Objective("val_root_mean_squared_error", direction="min")


def search_space(hp: keras_tuner.HyperParameters, defaults: Hyperparameters) -> Hyperparameters:
    """Declares the search space on `hp` and returns the values of the current trial.

    Learning rates stop at 3e-3: short trials favour fast learners that overfit later (measured:
    0.0068 won a 1-epoch trial, then eval RMSE rose from epoch 2). Id embeddings and biases
    (transform/features.py ID_FEATURES) are a choice per protocol: they pay where test users were seen
    in training (the random protocols) and memorise where they were not (the time split); the
    oracle's second trial measures them against the defaults (DefaultsFirstOracle).
    """
    values = {
        "learning_rate": hp.Float("learning_rate", 3e-4, 3e-3, sampling="log", default=defaults.learning_rate),
        "embedding_dim": hp.Choice("embedding_dim", [8, 16, 32, 64], default=defaults.embedding_dim),
        "layer_sizes": hp.Choice(
            "layer_sizes", ["32", "64-32", "128-64", "256-64"], default="-".join(map(str, defaults.layer_sizes))
        ),
        "l2": hp.Choice("l2", [0.0, 1e-6, 1e-5, 1e-4, 1e-3], default=defaults.l2),
        "history_factors": hp.Choice("history_factors", [0, 8, 16, 32], default=defaults.history_factors),
        "factor_l2": hp.Choice("factor_l2", [3e-5, 1e-4, 3e-4], default=defaults.factor_l2),
        "id_embeddings": hp.Boolean("id_embeddings", default=defaults.id_embeddings),
    }
    return hyperparameters_from_values(values, defaults)


class DefaultsFirstOracle(keras_tuner.oracles.RandomSearchOracle):
    """Random search whose first trial is the defaults (TrainerConfig) and whose second is the defaults
    with id embeddings flipped, so the Tuner only moves away from the defaults for values that measured
    better on eval, and the id-embedding choice is measured on every protocol (2 trials, the default)."""

    def populate_space(self, trial_id: str) -> dict:
        running = keras_tuner.engine.trial.TrialStatus.RUNNING
        if not self.trials:  # self.trials holds the earlier trials only
            return {"status": running, "values": self.hyperparameters.values}
        if len(self.trials) == 1:
            values = dict(self.hyperparameters.values)
            values["id_embeddings"] = not values["id_embeddings"]
            return {"status": running, "values": values}
        return super().populate_space(trial_id)


def sample_fraction(train_rows: int, sample_ratings: int) -> float:
    """The share of users the Tuner keeps so that about `sample_ratings` training ratings remain (1: all)."""
    return min(1.0, sample_ratings / max(train_rows, 1))


def tuning_data(
    fn_args: tfx.components.FnArgs, tft_output: tft.TFTransformOutput, config: TrainerConfig, cache_dir: str
) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """The train and eval datasets the trials fit on, parsed once and cached under `cache_dir`: every row while
    train holds at most `tuner_sample_ratings`, else the rows of one seeded sample of users in both splits
    (data.user_sample), so a trial's cost stops growing with the data; the Trainer then trains the winner on
    everything. Batches of `batch_size`: the sample stays within `ranker_epoch_steps` steps an epoch at the
    default sizes, so the learning rate a trial measures is the one the Trainer scales (task.scaled)."""
    train_rows = data.count_rows(
        data.make_dataset(fn_args.train_files, fn_args.data_accessor, tft_output, data.READ_BATCH, False, config.seed)
    )
    fraction = sample_fraction(train_rows, config.tuner_sample_ratings)
    if fraction >= 1.0:
        return data.train_and_eval(fn_args, tft_output, config.batch_size, config.seed, cache_dir)
    logging.info("Tuner: a sample of %.1f%% of the users (of %d training ratings)", 100 * fraction, train_rows)
    return tuple(
        data.sampled_dataset(
            files, fn_args.data_accessor, tft_output, config.batch_size, shuffle, config.seed, fraction,
            os.path.join(cache_dir, name),
        )
        for name, files, shuffle in (("train", fn_args.train_files, True), ("eval", fn_args.eval_files, False))
    )  # fmt: skip


# Called by the TFX Tuner component.
def tuner_fn(fn_args: tfx.components.FnArgs) -> tfx.components.TunerFnResult:
    """A seeded random search over `search_space` (defaults first), budgeted by TrainerConfig.tuner_trials, on
    a seeded sample of about `tuner_sample_ratings` training ratings (`tuning_data`)."""
    config = TrainerConfig.from_dict(fn_args.custom_config or {})
    tft_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    train, val = tuning_data(fn_args, tft_output, config, data.scratch_dir("tuner-parsed-"))
    vocab = data.vocabularies(tft_output, train)  # the first pass: fills train's cache
    defaults = hyperparameters(config, None)

    tuner = keras_tuner.Tuner(
        oracle=DefaultsFirstOracle(objective=OBJECTIVE, max_trials=config.tuner_trials, seed=config.seed),
        hypermodel=lambda hp: build_model(search_space(hp, defaults), vocab),
        directory=fn_args.working_dir,
        project_name="movielens_ranker",
        overwrite=True,
    )
    return tfx.components.TunerFnResult(
        tuner=tuner,
        fit_kwargs={
            "x": data.epochs_of(train, config.batch_size, True, config.seed),
            "validation_data": data.epochs_of(val, config.batch_size, False, config.seed),
            "epochs": config.tuner_epochs,
            "verbose": 0,
        },
    )
