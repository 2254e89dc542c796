"""The Trainer's entry point: `run_fn`, called by the TFX Trainer component.

It only orchestrates: data.py builds the datasets, model.py the model, export.py the
signatures. Hyperparameters come from the Tuner when it ran, else from TrainerConfig.
"""

from __future__ import annotations

import json
import os

import keras_tuner
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx

from components.trainer import data, export, recommend, retrieval, snapshot
from components.trainer.model import Hyperparameters, Vocabularies, build_model
from pipeline.config import TrainerConfig
from transform import features as f

HISTORY_FILE = "history.json"  # Per-epoch loss/RMSE, written next to the model.


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


def distribution_strategy() -> tf.distribute.Strategy:
    """MirroredStrategy over all visible GPUs, else the default (CPU) strategy."""
    gpus = tf.config.list_physical_devices("GPU")
    return tf.distribute.MirroredStrategy() if gpus else tf.distribute.get_strategy()


# Called by the TFX Trainer component.
def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Trains the ranking model with early stopping on eval RMSE and exports it for serving."""
    config = TrainerConfig.from_dict(fn_args.custom_config or {})
    tf.keras.utils.set_random_seed(config.seed)
    tft_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    train, val = data.train_and_eval(fn_args, tft_output, config.batch_size, config.seed)
    hp = hyperparameters(config, fn_args.hyperparameters)
    vocab = data.vocabularies(tft_output, train)

    with distribution_strategy().scope():
        model = build_model(hp, vocab)
    history = model.fit(
        train,
        validation_data=val,
        epochs=config.epochs,
        verbose=0,
        callbacks=[
            tf.keras.callbacks.EarlyStopping(
                monitor="val_root_mean_squared_error",
                mode="min",
                patience=config.early_stopping_patience,
                restore_best_weights=True,
            )
        ],
    )
    recommender, retrieval_history = train_recommender(fn_args, tft_output, config, vocab)
    export.export_serving_model(model, tft_output, fn_args.serving_model_dir, recommender)
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, HISTORY_FILE), "w") as out:
        record = {"hyperparameters": hp.to_dict(), "history": history.history, "retrieval_history": retrieval_history}
        json.dump(record, out, indent=1)


ROW_FEATURES = (*f.PASSTHROUGH_FEATURES, f.MOVIE_GENRES_XF, *retrieval.CANDIDATE_FEATURES)


def train_recommender(
    fn_args: tfx.components.FnArgs, tft_output: tft.TFTransformOutput, config: TrainerConfig, vocab: Vocabularies
) -> tuple[recommend.Recommender, dict]:
    """Trains the retrieval model and builds the snapshot of every user and movie from the train and eval
    splits (everything the Trainer saw): what the `recommend` signature needs besides the ranker."""

    def read(files: list[str], batch_size: int, shuffle: bool) -> tf.data.Dataset:
        return data.make_dataset(files, fn_args.data_accessor, tft_output, batch_size, shuffle, config.seed)

    rows = data.collect(read([*fn_args.train_files, *fn_args.eval_files], 4096, False), ROW_FEATURES)
    genre_vocab = [g.decode("utf-8") for g in tft_output.vocabulary_by_name(f.GENRES_VOCAB)]
    genre_lists = [tuple(genre_vocab[i] for i in row if 0 <= i < len(genre_vocab)) for row in rows[f.MOVIE_GENRES_XF]]
    state = snapshot.build(rows, genre_lists)
    _, first = np.unique(np.asarray(rows[f.MOVIE_ID]), return_index=True)  # the snapshot's movie order
    catalogue = retrieval.candidate_features(rows, first)
    movie_rows = vocab.sizes[f.MOVIE_ID_XF] + f.NUM_OOV_BUCKETS
    train_movies = data.collect(read(fn_args.train_files, 4096, False), (f.MOVIE_ID_XF,))[f.MOVIE_ID_XF]
    sampling = np.bincount(train_movies.reshape(-1), minlength=movie_rows) / max(train_movies.size, 1)
    hp = retrieval.RetrievalHyperparameters(config.retrieval_dim, config.retrieval_learning_rate)
    with distribution_strategy().scope():
        model = retrieval.build_retrieval(hp, vocab, catalogue, sampling)
    history = model.fit(
        read(fn_args.train_files, config.retrieval_batch_size, True),
        validation_data=read(fn_args.eval_files, config.retrieval_batch_size, False),
        epochs=config.retrieval_epochs,
        verbose=0,
        callbacks=[
            tf.keras.callbacks.EarlyStopping(
                monitor=retrieval.VALIDATION_METRIC,
                mode="max",
                patience=config.early_stopping_patience,
                restore_best_weights=True,
            )
        ],
    )
    vectors = model.candidate_tower(catalogue).numpy()
    built = recommend.Recommender(state, vectors, model.query_tower, config.candidates, config.rating_weight)
    return built, {k: [float(x) for x in v] for k, v in history.history.items()}
