"""The seed notebook's tuned TFRS ranking model, re-implemented for the benchmark.

As the seed had it: a 32-d embedding of the user id and of the movie title (vocabularies from the
training ratings, one out-of-vocabulary row each), concatenated, Dense 256 → 64 (ReLU, L2 0.01)
→ 1, mean squared error, Adagrad with learning rate 0.1, 50 epochs of shuffled batches of 8,192
(the TFRS ranking tutorial's batch size), no early stopping. No side or history features.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # TFRS's Keras 2, as everywhere in the project
import tensorflow as tf  # noqa: E402

from components.example_gen import movielens  # noqa: E402

EMBEDDING_DIM = 32
LAYERS = (256, 64)
L2 = 0.01
LEARNING_RATE = 0.1
EPOCHS = 50
BATCH_SIZE = 8192


def titles(data_dir: Path) -> dict[int, str]:
    """Movie id → title, from u.item."""
    lines = (data_dir / movielens.MOVIES_FILE).read_text(movielens.ENCODING).splitlines()
    return {int(fields[0]): fields[1] for fields in (line.split("|") for line in lines if line)}


def build(users: np.ndarray, movie_titles: np.ndarray) -> tf.keras.Model:
    """The seed's model over these training vocabularies."""
    user = tf.keras.Input((), dtype=tf.string, name="user_id")
    title = tf.keras.Input((), dtype=tf.string, name="movie_title")

    def embedded(values, inputs):
        vocabulary = tf.keras.layers.StringLookup(vocabulary=np.unique(values), mask_token=None)
        return tf.keras.layers.Embedding(vocabulary.vocabulary_size(), EMBEDDING_DIM)(vocabulary(inputs))

    hidden = tf.keras.layers.Concatenate()([embedded(users, user), embedded(movie_titles, title)])
    for units in LAYERS:
        hidden = tf.keras.layers.Dense(units, activation="relu", kernel_regularizer=tf.keras.regularizers.l2(L2))(
            hidden
        )
    model = tf.keras.Model([user, title], tf.keras.layers.Dense(1)(hidden))
    model.compile(optimizer=tf.keras.optimizers.Adagrad(LEARNING_RATE), loss="mse")
    return model


def fit_predict(train: np.ndarray, test: np.ndarray, movie_titles: dict[int, str], seed: int) -> np.ndarray:
    """Trains on `train` ([n, 4]: user, movie, rating, time) and predicts `test`'s ratings."""
    tf.keras.utils.set_random_seed(seed)

    def inputs(rows: np.ndarray) -> dict[str, np.ndarray]:
        return {"user_id": rows[:, 0].astype(str), "movie_title": np.array([movie_titles[m] for m in rows[:, 1]])}

    model = build(train[:, 0].astype(str), inputs(train)["movie_title"])
    model.fit(inputs(train), train[:, 2].astype("float32"), batch_size=BATCH_SIZE, epochs=EPOCHS, verbose=0)
    return model.predict(inputs(test), batch_size=BATCH_SIZE, verbose=0).ravel()
