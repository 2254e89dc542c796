"""The TFRS two-tower retrieval model: which movies will this user rate next?

Query tower: what the ranker knows of a user at a rating — attributes, history means and counts, and the
bag of their last movies (weighted, and weighted by how they rated them) — so it answers for users unseen
in training as soon as they have rated something, and for users with nothing (then it learns what people
start with). Candidate tower: movie id, title words, genres and release year, so a movie with few ratings
still lands near similar ones. Trained on every (user, movie) rating with in-batch softmax, corrected for
sampling bias (log-Q: popular movies are over-represented as negatives), so `query · candidate` ranks like
log P(movie | user), popularity included.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from components.trainer.model import Vocabularies
from transform import features as f

USER_CATEGORICAL = (f.USER_GENDER_XF, f.USER_OCCUPATION_XF)
USER_DENSE = (
    f.USER_AGE_XF,
    f.USER_MEAN_XF,
    f.USER_STD_XF,
    f.USER_COUNT_XF,
    f.USER_RECENT_MEAN_XF,
    f.USER_SINCE_LAST_XF,
    f.USER_HAS_HISTORY_XF,
    f.USER_OFFSET_XF,
)
QUERY_FEATURES = (*USER_CATEGORICAL, *USER_DENSE, f.PROFILE_MOVIES, f.PROFILE_DEVIATIONS)
CANDIDATE_FEATURES = (
    f.MOVIE_ID_XF,
    f.MOVIE_GENRES_XF,
    f.MOVIE_TITLE_TOKENS_XF,
    f.MOVIE_YEAR_XF,
    f.MOVIE_YEAR_MISSING_XF,
)


@dataclasses.dataclass(frozen=True)
class RetrievalHyperparameters:
    dim: int = 32
    learning_rate: float = 0.003
    l2: float = 1e-6


def _column(inputs: dict, name: str) -> tf.Tensor:
    return tf.cast(tf.reshape(inputs[name], [-1]), tf.float32)


def _masked_mean(embedded: tf.Tensor, ids: tf.Tensor, weights: tf.Tensor | None = None) -> tf.Tensor:
    """Σ embedding / sqrt(n + 1) over the ids >= 0 of each row (-1 = padding)."""
    mask = tf.cast(ids >= 0, tf.float32)[..., None]
    if weights is not None:
        mask *= tf.cast(weights, tf.float32)[..., None]
    return tf.reduce_sum(embedded * mask, 1) / tf.sqrt(tf.reduce_sum(tf.cast(ids >= 0, tf.float32), 1, True) + 1.0)


class QueryTower(tf.keras.Model):
    """Transformed user features (as in a ranker example) → query vector."""

    def __init__(self, hp: RetrievalHyperparameters, vocab: Vocabularies, movie_rows: int):
        super().__init__()
        reg = tf.keras.regularizers.l2(hp.l2)
        self._categorical = {  # the user attributes, in releases that have them
            name: tf.keras.layers.Embedding(vocab.sizes[name] + f.NUM_OOV_BUCKETS, 8, name=f"{name}_q")
            for name in f.present(USER_CATEGORICAL, vocab.sizes)
        }
        self._dense = f.present(USER_DENSE, vocab.dense)
        self._movies = tf.keras.layers.Embedding(movie_rows, hp.dim, embeddings_regularizer=reg, name="prior_q")
        self._ratings = tf.keras.layers.Embedding(movie_rows, hp.dim, embeddings_regularizer=reg, name="prior_rating_q")
        self._mlp = tf.keras.Sequential(
            [tf.keras.layers.Dense(2 * hp.dim, activation="relu"), tf.keras.layers.Dense(hp.dim)]
        )

    def call(self, inputs: dict) -> tf.Tensor:
        prior = tf.cast(inputs[f.PROFILE_MOVIES], tf.int64)
        safe = tf.maximum(prior, 0)
        parts = [self._categorical[name](tf.reshape(inputs[name], [-1])) for name in sorted(self._categorical)]
        parts.append(tf.stack([_column(inputs, name) for name in self._dense], axis=1))
        parts.append(_masked_mean(self._movies(safe), prior))
        parts.append(_masked_mean(self._ratings(safe), prior, inputs[f.PROFILE_DEVIATIONS]))
        return self._mlp(tf.concat(parts, axis=1))


class CandidateTower(tf.keras.Model):
    """Transformed movie features → candidate vector."""

    def __init__(self, hp: RetrievalHyperparameters, vocab: Vocabularies, movie_rows: int):
        super().__init__()
        reg = tf.keras.regularizers.l2(hp.l2)
        self._movie = tf.keras.layers.Embedding(movie_rows, hp.dim, embeddings_regularizer=reg, name="movie_c")
        self._title = tf.keras.layers.Embedding(
            f.TITLE_HASH_BUCKETS, hp.dim, embeddings_regularizer=reg, name="title_c"
        )
        self._genre_depth = vocab.genres + f.NUM_OOV_BUCKETS
        self._genres = tf.keras.layers.Dense(hp.dim, use_bias=False, name="genres_c")
        self._mlp = tf.keras.Sequential(
            [tf.keras.layers.Dense(2 * hp.dim, activation="relu"), tf.keras.layers.Dense(hp.dim)]
        )

    def call(self, inputs: dict) -> tf.Tensor:
        tokens = tf.cast(inputs[f.MOVIE_TITLE_TOKENS_XF], tf.int64)
        genres = tf.reduce_sum(tf.one_hot(inputs[f.MOVIE_GENRES_XF], self._genre_depth), axis=1)
        dense = tf.stack([_column(inputs, f.MOVIE_YEAR_XF), _column(inputs, f.MOVIE_YEAR_MISSING_XF)], axis=1)
        parts = [
            self._movie(tf.reshape(inputs[f.MOVIE_ID_XF], [-1])),
            _masked_mean(self._title(tf.maximum(tokens, 0)), tokens),
            self._genres(genres),
            dense,
        ]
        return self._mlp(tf.concat(parts, axis=1))


class RetrievalModel(tfrs.models.Model):
    """Two towers and a `tfrs.tasks.Retrieval` task (in-batch softmax, log-Q corrected)."""

    def __init__(self, hp: RetrievalHyperparameters, vocab: Vocabularies, sampling: np.ndarray):
        """`sampling`: each movie vocabulary index's share of the training ratings (the in-batch negatives'
        sampling probability)."""
        super().__init__()
        movie_rows = vocab.sizes[f.MOVIE_ID_XF] + f.NUM_OOV_BUCKETS
        self.query_tower = QueryTower(hp, vocab, movie_rows)
        self.candidate_tower = CandidateTower(hp, vocab, movie_rows)
        self._sampling = tf.constant(np.maximum(sampling, 1e-9), tf.float32)
        # No metrics of its own: the Trainer scores top-K on eval users itself (retrieval_training.EvalNdcg).
        self.task = tfrs.tasks.Retrieval(remove_accidental_hits=True)

    # Without AutoGraph, as RankingModel.train_step says why.
    train_step = tf.autograph.experimental.do_not_convert(tfrs.models.Model.train_step)
    test_step = tf.autograph.experimental.do_not_convert(tfrs.models.Model.test_step)

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        features = inputs[0] if isinstance(inputs, tuple) else inputs
        movie = tf.reshape(features[f.MOVIE_ID_XF], [-1])
        return self.task(
            self.query_tower(features),
            self.candidate_tower(features),
            candidate_sampling_probability=tf.gather(self._sampling, movie),
            candidate_ids=movie,
            compute_metrics=not training,
        )


def candidate_features(rows: dict[str, np.ndarray], first: np.ndarray) -> dict[str, np.ndarray]:
    """The candidate tower's inputs of each movie, from the first transformed example of it (`first`: row indices)."""
    return {name: np.asarray(rows[name])[first] for name in CANDIDATE_FEATURES}


def build_retrieval(hp: RetrievalHyperparameters, vocab: Vocabularies, sampling: np.ndarray) -> RetrievalModel:
    """A compiled RetrievalModel."""
    model = RetrievalModel(hp, vocab, sampling)
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=hp.learning_rate))
    return model
