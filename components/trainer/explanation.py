"""Signatures that let a client explain and show the model (recommender/explanations.py, the app).

- `pair_inputs`: (user, movie) pairs → the ranker's inputs (Transform outputs), built from the snapshot exactly as
  the `recommend` signature builds them for its candidates.
- `rank_inputs`: any ranker inputs → the ranker's rating before clipping. SHAP evaluates it on mixtures of a pair's
  inputs and background pairs' inputs (mixing Transform outputs, not raw features: raw mixtures break the history
  features' coherence and `predict_raw` refuses them).
- `user_ratings`: a user id → the ratings the snapshot holds for them, oldest first.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from components.trainer.recommend import Recommender
from transform import features as f


def _spec(name: str, feature) -> tf.TensorSpec:
    return tf.TensorSpec([None, *feature.shape], feature.dtype, name=name)


def make_signatures(model: tf.keras.Model, recommender: Recommender, tft_output: tft.TFTransformOutput) -> dict:
    """The three concrete functions. `model` is the RankingModel with its Transform layer attached (tft_layer)."""
    r = recommender
    names = model.ranker_inputs
    made = tft_output.transformed_feature_spec()
    specs = {name: _spec(name, made[name]) for name in names}

    @tf.function(
        autograph=False,
        input_signature=[
            tf.TensorSpec([None], tf.string, name=f.REQUEST_USER_ID),
            tf.TensorSpec([None], tf.string, name=f.REQUEST_MOVIE_ID),
            tf.TensorSpec([None, None], tf.string, name=f.REQUEST_MOVIES),
            tf.TensorSpec([None, None], tf.float32, name=f.REQUEST_RATINGS),
        ],
    )
    def pair_inputs(user_id, movie_id, recent_movies, recent_ratings):
        state = r.user_state(user_id, recent_movies, recent_ratings)
        movie = r.movie_table.lookup(movie_id)
        known = tf.debugging.Assert(
            tf.reduce_all(movie < r.movies), [f"{f.PAIR_INPUTS_SIGNATURE}: a movie id is not in the catalogue"]
        )
        with tf.control_dependencies([known]):
            movie = tf.identity(movie)
        transformed = model.tft_layer(r.pair_features(state, movie[:, None]))
        return {name: tf.cast(transformed[name], specs[name].dtype) for name in names}

    @tf.function(autograph=False, input_signature=[specs])
    def rank_inputs(inputs):
        return {f.OUT_RAW_RATING: tf.reshape(model(inputs), [-1])}

    @tf.function(autograph=False, input_signature=[tf.TensorSpec([], tf.string, name=f.REQUEST_USER_ID)])
    def user_ratings(user_id):
        row = r.user_table.lookup(user_id)
        start = tf.gather(r.rated_splits, row)
        end = tf.gather(r.rated_splits, row + 1)
        movies = r.rated_values[start:end]
        return {
            f.OUT_MOVIE_IDS: tf.gather(r.movie_ids, movies),
            f.OUT_TITLES: tf.gather(r.titles, movies),
            f.OUT_GENRES: tf.gather(r.genre_text, movies),
            f.OUT_RATED: r.rated_ratings[start:end],
        }

    return {
        f.PAIR_INPUTS_SIGNATURE: pair_inputs.get_concrete_function(),
        f.RANK_INPUTS_SIGNATURE: rank_inputs.get_concrete_function(),
        f.USER_RATINGS_SIGNATURE: user_ratings.get_concrete_function(),
    }
