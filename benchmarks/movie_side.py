"""The movie-side asymmetric term, measured as a variant (benchmarks/variants.py) before anything builds it.

The user side (components/trainer/model.py `_history_match`) describes a user by the movies they rated before. The
mirror describes a movie by the users who rated it before:

    prediction += p(user) · sum_u (x(u) + e_u w(u)) / sqrt(n + 1)

over the movie's last MAX_RATERS raters u strictly before the rating (same-second ratings are not "before"; test
ratings are hidden under the random protocols, as ExampleGen hides them), e_u being u's rating minus the movie's
mean before it (shrunk to the train mean). Raters are the Transform's user vocabulary indices, so users unknown to
it share the OOV row, as they would in the product. Computed here from the examples' ids and timestamps, not by
ExampleGen: a feature is built into the product (with its leakage tests and serving path) only once it pays.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from components.trainer.model import Hyperparameters, RankingModel, Vocabularies, _l2
from transform import features as f

RATERS = "movie_prior_raters_xf"  # [n, MAX_RATERS] user vocabulary indices, -1 = padding
RATER_DEVIATIONS = "movie_prior_rater_deviations_xf"  # [n, MAX_RATERS] float
MAX_RATERS = 50
PSEUDO_COUNT = 5.0  # the movie's mean before a rating, shrunk to the train mean by this many ratings
FACTORS = 16  # like Hyperparameters.history_factors


def rater_histories(
    movie: np.ndarray, user: np.ndarray, rating: np.ndarray, timestamp: np.ndarray, hidden: np.ndarray, mean: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per rating: the movie's last MAX_RATERS earlier raters (user indices, -1 padded) and their deviations."""
    n = len(movie)
    raters = np.full((n, MAX_RATERS), -1, np.int64)
    deviations = np.zeros((n, MAX_RATERS), np.float32)
    order = np.lexsort((user, timestamp, movie))  # by movie, then time (ties by user, for determinism)
    start = 0
    while start < n:
        end = start
        while end < n and movie[order[end]] == movie[order[start]]:
            end += 1
        window_users: list[int] = []
        window_deviations: list[float] = []
        count, total = 0, 0.0
        group = start
        while group < end:  # one second of this movie's ratings at a time
            stop = group
            while stop < end and timestamp[order[stop]] == timestamp[order[group]]:
                stop += 1
            for event in order[group:stop]:
                raters[event, : len(window_users)] = window_users
                deviations[event, : len(window_users)] = window_deviations
            for event in order[group:stop]:
                if hidden[event]:
                    continue
                window_users.append(int(user[event]))
                window_deviations.append(float(rating[event]) - (total + PSEUDO_COUNT * mean) / (count + PSEUDO_COUNT))
                count, total = count + 1, total + float(rating[event])
            window_users, window_deviations = window_users[-MAX_RATERS:], window_deviations[-MAX_RATERS:]
            group = stop
        start = end
    return raters, deviations


class MovieSideModel(RankingModel):
    """The Trainer's ranking model plus the movie-side term (the module docstring's formula)."""

    def __init__(self, hp: Hyperparameters, vocab: Vocabularies):
        super().__init__(hp, vocab)
        rows = vocab.sizes[f.USER_ID_XF] + f.NUM_OOV_BUCKETS
        self._user_factors, self._rater_factors, self._rater_rating_factors = (
            tf.keras.layers.Embedding(rows, FACTORS, embeddings_regularizer=_l2(hp.factor_l2), name=name)
            for name in ("user_factors", "rater_factors", "rater_rating_factors")
        )

    def call(self, inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        raters = inputs[RATERS]
        mask = tf.cast(raters >= 0, tf.float32)[..., None]
        raters = tf.maximum(raters, 0)
        deviations = tf.cast(inputs[RATER_DEVIATIONS], tf.float32)[..., None]
        factors = self._rater_factors(raters) + deviations * self._rater_rating_factors(raters)
        summed = tf.reduce_sum(mask * factors, 1)
        movie = summed / tf.sqrt(tf.reduce_sum(mask, 1) + 1.0)
        user = self._user_factors(tf.reshape(inputs[f.USER_ID_XF], [-1]))
        return super().call(inputs) + tf.reduce_sum(user * movie, axis=1, keepdims=True)


def build(hp: Hyperparameters, vocab: Vocabularies) -> MovieSideModel:
    """A compiled MovieSideModel (model.build_model's optimizer)."""
    model = MovieSideModel(hp, vocab)
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=hp.learning_rate))
    return model
