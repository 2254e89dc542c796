"""The Tuner's entry point: `tuner_fn`, called by the TFX Tuner component."""

from __future__ import annotations

import keras_tuner
import tensorflow_transform as tft
from tfx import v1 as tfx

from components.trainer import data
from components.trainer.model import Hyperparameters, build_model
from components.trainer.task import hyperparameters, hyperparameters_from_values
from pipeline.config import TrainerConfig

OBJECTIVE = keras_tuner.Objective("val_root_mean_squared_error", direction="min")


def search_space(hp: keras_tuner.HyperParameters, defaults: Hyperparameters) -> Hyperparameters:
    """Declares the search space on `hp` and returns the values of the current trial."""
    values = {
        "learning_rate": hp.Float("learning_rate", 3e-4, 1e-2, sampling="log", default=defaults.learning_rate),
        "embedding_dim": hp.Choice("embedding_dim", [8, 16, 32, 64], default=defaults.embedding_dim),
        "layer_sizes": hp.Choice(
            "layer_sizes", ["32", "64-32", "128-64", "256-64"], default="-".join(map(str, defaults.layer_sizes))
        ),
        "l2": hp.Choice("l2", [0.0, 1e-6, 1e-5, 1e-4, 1e-3], default=defaults.l2),
    }
    return hyperparameters_from_values(values, defaults)


# Called by the TFX Tuner component.
def tuner_fn(fn_args: tfx.components.FnArgs) -> tfx.components.TunerFnResult:
    """A seeded RandomSearch over `search_space`, budgeted by TrainerConfig.tuner_trials."""
    config = TrainerConfig.from_dict(fn_args.custom_config or {})
    tft_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    train, val = data.train_and_eval(fn_args, tft_output, config.batch_size, config.seed)
    vocab = data.vocabularies(tft_output, train)
    defaults = hyperparameters(config, None)

    tuner = keras_tuner.RandomSearch(
        hypermodel=lambda hp: build_model(search_space(hp, defaults), vocab),
        objective=OBJECTIVE,
        max_trials=config.tuner_trials,
        seed=config.seed,
        directory=fn_args.working_dir,
        project_name="movielens_ranker",
        overwrite=True,
    )
    return tfx.components.TunerFnResult(
        tuner=tuner,
        fit_kwargs={"x": train, "validation_data": val, "epochs": config.tuner_epochs, "verbose": 0},
    )
