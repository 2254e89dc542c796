"""The TFRS ranking model: id embeddings + user/movie/time features → predicted rating."""

from __future__ import annotations

import dataclasses

import tensorflow as tf
import tensorflow_recommenders as tfrs

from transform import features as f


@dataclasses.dataclass(frozen=True)
class Hyperparameters:
    """What the Tuner searches over; the Trainer's defaults come from TrainerConfig."""

    learning_rate: float
    embedding_dim: int
    layer_sizes: tuple[int, ...]
    l2: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Vocabularies:
    """Sizes of the Transform vocabularies (without OOV buckets) and the train label mean."""

    sizes: dict[str, int]  # transformed feature name -> vocabulary size
    genres: int
    label_mean: float


class RankingModel(tfrs.models.Model):
    """Predicts a rating from transformed features.

    prediction = global bias (init: train mean) + user bias + movie bias + MLP(concat(
    embeddings of ids/categoricals, genre embedding, dense features)).
    Unknown ids land in the OOV bucket (index = vocabulary size), which has its own row.
    """

    def __init__(self, hp: Hyperparameters, vocab: Vocabularies):
        super().__init__()
        regularizer = tf.keras.regularizers.l2(hp.l2) if hp.l2 > 0 else None
        rows = {name: size + f.NUM_OOV_BUCKETS for name, size in vocab.sizes.items()}
        self._embeddings = {
            name: tf.keras.layers.Embedding(n, hp.embedding_dim, embeddings_regularizer=regularizer, name=f"{name}_emb")
            for name, n in rows.items()
        }
        self._user_bias = tf.keras.layers.Embedding(rows[f.USER_ID_XF], 1, embeddings_initializer="zeros")
        self._movie_bias = tf.keras.layers.Embedding(rows[f.MOVIE_ID_XF], 1, embeddings_initializer="zeros")
        self._genre_depth = vocab.genres + f.NUM_OOV_BUCKETS
        self._genre_projection = tf.keras.layers.Dense(hp.embedding_dim, use_bias=False, name="genres_emb")
        self._tower = tf.keras.Sequential(
            [
                tf.keras.layers.Dense(units, activation="relu", kernel_regularizer=regularizer)
                for units in hp.layer_sizes
            ]
            + [tf.keras.layers.Dense(1, bias_initializer=tf.keras.initializers.Constant(vocab.label_mean))]
        )
        self.task = tfrs.tasks.Ranking(
            loss=tf.keras.losses.MeanSquaredError(),
            metrics=[tf.keras.metrics.RootMeanSquaredError()],
        )

    def call(self, inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        """Transformed features → predicted rating, shape [batch, 1] (not clipped)."""
        parts = [self._embeddings[name](tf.reshape(inputs[name], [-1])) for name in sorted(self._embeddings)]
        genres = tf.one_hot(inputs[f.MOVIE_GENRES_XF], self._genre_depth)  # -1 padding → zero rows
        parts.append(self._genre_projection(tf.reduce_sum(genres, axis=1)))
        parts.append(
            tf.stack([tf.cast(tf.reshape(inputs[name], [-1]), tf.float32) for name in f.DENSE_FLOAT_FEATURES], axis=1)
        )
        user = tf.reshape(inputs[f.USER_ID_XF], [-1])
        movie = tf.reshape(inputs[f.MOVIE_ID_XF], [-1])
        return self._tower(tf.concat(parts, axis=1)) + self._user_bias(user) + self._movie_bias(movie)

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        features, labels = inputs
        return self.task(labels=tf.reshape(labels, [-1, 1]), predictions=self(features))


def build_model(hp: Hyperparameters, vocab: Vocabularies) -> RankingModel:
    """A compiled RankingModel."""
    model = RankingModel(hp, vocab)
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=hp.learning_rate))
    return model
