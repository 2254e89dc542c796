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
    id_embeddings: bool = False  # embed f.ID_FEATURES, add user/movie biases and the movie-side history term
    history_factors: int = 16  # size of the factors of the asymmetric terms (earlier movies, earlier raters); 0: off
    factor_l2: float = 1e-4  # L2 on those factor tables
    cross_layers: int = 0  # DCN-v2 cross layers over the tower's input (0: plain MLP tower)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Vocabularies:
    """Sizes of the Transform vocabularies (without OOV buckets), the train label mean and rows."""

    sizes: dict[str, int]  # transformed feature name -> vocabulary size (those Transform made)
    genres: int
    label_mean: float
    dense: tuple[str, ...] = f.DENSE_FLOAT_FEATURES  # those Transform made (no user age without a users file)
    train_rows: int = 0  # counted with the mean (the Trainer's batch rule reads it)


def _l2(weight: float) -> tf.keras.regularizers.Regularizer | None:
    return tf.keras.regularizers.l2(weight) if weight > 0 else None


def _asymmetric(ids: tf.Tensor, deviations: tf.Tensor, factors, rating_factors) -> tf.Tensor:
    """[batch, k]: sum_j (y(j) + d_j z(j)) / sqrt(n + 1) over a padded list of n ids (-1 = padding) and deviations."""
    mask = tf.cast(ids >= 0, tf.float32)[..., None]
    ids = tf.maximum(ids, 0)
    deviations = tf.cast(deviations, tf.float32)[..., None]
    summed = tf.reduce_sum(mask * (factors(ids) + deviations * rating_factors(ids)), 1)
    return summed / tf.sqrt(tf.reduce_sum(mask, 1) + 1.0)


def _match(query: tf.Tensor, inputs: dict[str, tf.Tensor], lists: tuple[str, str], tables) -> tf.Tensor:
    """[batch, 1]: `query` factors · the asymmetric vector of the padded list `lists` (ids, deviations)."""
    ids, deviations = lists
    return tf.reduce_sum(query * _asymmetric(inputs[ids], inputs[deviations], *tables), axis=1, keepdims=True)


# The transformed lists of the two asymmetric terms: (ids, deviations).
_USER_SIDE = (f.USER_PRIOR_MOVIES_XF, f.USER_PRIOR_DEVIATIONS_XF)
_MOVIE_SIDE = (f.MOVIE_PRIOR_RATERS_XF, f.MOVIE_PRIOR_DEVIATIONS_XF)


def unread_lists(hp: Hyperparameters) -> tuple[str, ...]:
    """The history lists a model built with `hp` never reads (RankingModel.ranker_inputs): the Trainer leaves
    them out of the examples it caches (each list is 50 values a row: most of a row's bytes)."""
    unread = () if hp.history_factors > 0 else _USER_SIDE
    return unread + (() if hp.history_factors > 0 and hp.id_embeddings else _MOVIE_SIDE)


class RankingModel(tfrs.models.Model):
    """Predicts a rating from transformed features.

    prediction = global bias (init: train mean) + linear(dense features)
    + MLP(concat(embeddings of categoricals, genre embedding, dense features)) [through hp.cross_layers DCN-v2
      cross layers first]
    [+ user bias + movie bias, and ids/zip among the embedded categoricals, with hp.id_embeddings]
    + q(movie) · sum_j (y(m_j) + d_j z(m_j)) / sqrt(n + 1), over the user's n earlier movies m_j rated d_j
      away from the user's mean (asymmetric SVD: a user is the movies they rated, so it works for users
      unseen in training as soon as they have rated something), with hp.history_factors;
    [+ p(user) · sum_u (x(u) + e_u w(u)) / sqrt(n + 1), the mirror: the movie as its n earlier raters u, e_u
      away from the movie's mean, with hp.id_embeddings and hp.history_factors (it needs the user's factors p)].
    The dense features include the point-in-time history (shrunk user/movie/genre means), whose
    linear term carries most of the signal for users unseen in training (cold start).
    Unknown ids land in the OOV bucket (index = vocabulary size), which has its own row.
    """

    def __init__(self, hp: Hyperparameters, vocab: Vocabularies):
        super().__init__()
        regularizer = _l2(hp.l2)
        rows = {name: size + f.NUM_OOV_BUCKETS for name, size in vocab.sizes.items()}
        self._id_embeddings = hp.id_embeddings
        embedded = {name: n for name, n in rows.items() if hp.id_embeddings or name not in f.ID_FEATURES}
        self._embeddings = {
            name: tf.keras.layers.Embedding(n, hp.embedding_dim, embeddings_regularizer=regularizer, name=f"{name}_emb")
            for name, n in embedded.items()
        }
        self._user_bias = tf.keras.layers.Embedding(rows[f.USER_ID_XF], 1, embeddings_initializer="zeros")
        self._movie_bias = tf.keras.layers.Embedding(rows[f.MOVIE_ID_XF], 1, embeddings_initializer="zeros")
        self._linear = tf.keras.layers.Dense(1, use_bias=False, name="dense_linear")
        self._genre_depth = vocab.genres + f.NUM_OOV_BUCKETS
        self._dense = vocab.dense
        self._genre_projection = tf.keras.layers.Dense(hp.embedding_dim, use_bias=False, name="genres_emb")
        self._history_factors = hp.history_factors > 0
        self._movie_side = self._history_factors and hp.id_embeddings
        factor_regularizer = _l2(hp.factor_l2)

        def factor_tables(feature: str, names: tuple[str, ...]) -> tuple[tf.keras.layers.Embedding, ...]:
            return tuple(
                tf.keras.layers.Embedding(rows[feature], hp.history_factors, embeddings_regularizer=factor_regularizer,
                                          name=name)
                for name in names
            )  # fmt: skip

        if self._history_factors:
            self._movie_factors, self._prior_factors, self._prior_rating_factors = factor_tables(
                f.MOVIE_ID_XF, ("movie_factors", "prior_movie_factors", "prior_rating_factors")
            )
        if self._movie_side:
            self._user_factors, self._prior_rater_factors, self._prior_rater_rating_factors = factor_tables(
                f.USER_ID_XF, ("user_factors", "prior_rater_factors", "prior_rater_rating_factors")
            )
        self._cross = [
            tfrs.layers.dcn.Cross(kernel_regularizer=regularizer, name=f"cross_{i}") for i in range(hp.cross_layers)
        ]
        self._tower = tf.keras.Sequential(
            [
                tf.keras.layers.Dense(units, activation="relu", kernel_regularizer=regularizer)
                for units in hp.layer_sizes
            ]
            + [tf.keras.layers.Dense(1, bias_initializer=tf.keras.initializers.Constant(vocab.label_mean))]
        )
        # Per-example losses, averaged over the global batch in compute_loss: Keras refuses a reducing
        # loss inside a tf.distribute strategy (the Trainer's MirroredStrategy on GPUs).
        self.task = tfrs.tasks.Ranking(
            loss=tf.keras.losses.MeanSquaredError(reduction=tf.keras.losses.Reduction.NONE),
            metrics=[tf.keras.metrics.RootMeanSquaredError()],
        )
        # Epoch means over examples, like the RMSE beside them (Keras would report the last batch's loss).
        self.loss_mean = tf.keras.metrics.Mean(name="loss")
        self.regularization_mean = tf.keras.metrics.Mean(name="regularization_loss")
        self.total_mean = tf.keras.metrics.Mean(name="total_loss")

    @property
    def ranker_inputs(self) -> tuple[str, ...]:
        """The transformed features `call` reads (what an explanation attributes the prediction to)."""
        names = {*self._embeddings, f.MOVIE_GENRES_XF, *self._dense, f.USER_ID_XF, f.MOVIE_ID_XF}
        if self._history_factors:
            names |= set(_USER_SIDE)
        if self._movie_side:
            names |= set(_MOVIE_SIDE)
        return tuple(sorted(names))

    def call(self, inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        """Transformed features → predicted rating, shape [batch, 1] (not clipped)."""
        parts = [self._embeddings[name](tf.reshape(inputs[name], [-1])) for name in sorted(self._embeddings)]
        genres = tf.one_hot(inputs[f.MOVIE_GENRES_XF], self._genre_depth)  # -1 padding → zero rows
        parts.append(self._genre_projection(tf.reduce_sum(genres, axis=1)))
        dense = tf.stack([tf.cast(tf.reshape(inputs[name], [-1]), tf.float32) for name in self._dense], axis=1)
        parts.append(dense)
        user = tf.reshape(inputs[f.USER_ID_XF], [-1])
        movie = tf.reshape(inputs[f.MOVIE_ID_XF], [-1])
        x0 = tf.concat(parts, axis=1)
        x = x0
        for cross in self._cross:  # x_{l+1} = x0 * (W x_l + b) + x_l
            x = cross(x0, x)
        output = self._tower(x) + self._linear(dense)
        if self._id_embeddings:
            output += self._user_bias(user) + self._movie_bias(movie)
        if self._history_factors:  # the user as their earlier movies, matched with the movie's factors
            tables = (self._prior_factors, self._prior_rating_factors)
            output += _match(self._movie_factors(movie), inputs, _USER_SIDE, tables)
        if self._movie_side:  # the movie as its earlier raters, matched with the user's factors
            tables = (self._prior_rater_factors, self._prior_rater_rating_factors)
            output += _match(self._user_factors(user), inputs, _MOVIE_SIDE, tables)
        return output

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        """Mean squared error over the global batch (this replica's share of it under a strategy)."""
        features, labels = inputs
        per_example = self.task(labels=tf.reshape(labels, [-1, 1]), predictions=self(features))
        return tf.nn.compute_average_loss(per_example)

    def _loss_terms(self, inputs, training: bool) -> tuple[tf.Tensor, tf.Tensor]:
        loss = self.compute_loss(inputs, training=training)
        regularization = tf.add_n(self.losses) if self.losses else tf.constant(0.0)
        # Replicas' gradients are summed: each replica contributes 1/N of the regularization.
        return loss, tf.nn.scale_regularization_loss(regularization)

    # Traced without AutoGraph, like everything the model calls (tf_keras and TFRS are plain graph code).
    # TensorFlow leaves `keras` unconverted but not `tf_keras`: converting its layers cost ~20 s per
    # process, the Tuner's first trial most of it (docs/results.md, "Releases, scale and speed").
    @tf.autograph.experimental.do_not_convert
    def train_step(self, inputs):
        """tfrs.Model.train_step with replica-correct loss scaling (identical on a single device)."""
        with tf.GradientTape() as tape:
            loss, regularization = self._loss_terms(inputs, training=True)
            total = loss + regularization
        gradients = tape.gradient(total, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables, strict=True))
        return self._logs(loss, regularization, tf.shape(inputs[1])[0])

    @tf.autograph.experimental.do_not_convert
    def test_step(self, inputs):
        return self._logs(*self._loss_terms(inputs, training=False), tf.shape(inputs[1])[0])

    def _logs(self, loss: tf.Tensor, regularization: tf.Tensor, examples: tf.Tensor) -> dict:
        """Epoch means so far: loss (MSE) and regularization per example, RMSE over the epoch's examples.

        Keras reports the first replica's values: they are scaled back to whole-batch figures.
        """
        replicas = tf.cast(tf.distribute.get_strategy().num_replicas_in_sync, tf.float32)
        weight = tf.cast(examples, tf.float32)
        self.loss_mean.update_state(loss * replicas, sample_weight=weight)
        self.regularization_mean.update_state(regularization * replicas, sample_weight=weight)
        self.total_mean.update_state((loss + regularization) * replicas, sample_weight=weight)
        return {metric.name: metric.result() for metric in self.metrics}


class EnsembleModel(tf.keras.Model):
    """The mean prediction of ranking models trained with different seeds (not trained itself)."""

    def __init__(self, members: list[RankingModel]):
        super().__init__()
        self.members = members

    @property
    def ranker_inputs(self) -> tuple[str, ...]:
        return tuple(sorted({name for member in self.members for name in member.ranker_inputs}))

    def call(self, inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        """Transformed features → the members' mean predicted rating, shape [batch, 1] (not clipped)."""
        return tf.add_n([member(inputs) for member in self.members]) / len(self.members)


def build_model(hp: Hyperparameters, vocab: Vocabularies) -> RankingModel:
    """A compiled RankingModel."""
    model = RankingModel(hp, vocab)
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=hp.learning_rate))
    return model
