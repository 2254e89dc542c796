"""Serving signatures and SavedModel export.

Three signatures, all applying the Transform graph inside the model:
- `serving_default`: serialized tf.Example of raw features (no label) → predicted rating.
  This is what TF Serving's `:predict`/`:regress` and the Evaluator call.
- `transform_features`: serialized tf.Example → transformed features (for TFMA slicing).
- `predict_raw`: named raw tensors (JSON-friendly for `/v1/models/NAME:predict`)
  → predicted rating. `movie_genres` and `user_prior_movies` are [batch, n] string matrices padded
  with ""; `user_prior_movie_ratings` is [batch, n] too, read where `user_prior_movies` is not "".
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from transform import features as f

_RAW_DTYPES = {
    **{name: tf.string for name in f.STRING_FEATURES},
    **{name: tf.int64 for name in f.INT_FEATURES},
    **{name: tf.float32 for name in f.FLOAT_FEATURES if name != f.LABEL_KEY},
}


def _predict(model: tf.keras.Model, transformed: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    rating = tf.clip_by_value(model(transformed), f.RATING_MIN, f.RATING_MAX)
    return {f.PREDICTION_KEY: rating}


def make_signatures(model: tf.keras.Model, tft_output: tft.TFTransformOutput) -> dict:
    """Concrete functions for the three signatures. Attaches the Transform layer to `model`."""
    model.tft_layer = tft_output.transform_features_layer()
    raw_spec = tft_output.raw_feature_spec()
    serving_spec = {name: spec for name, spec in raw_spec.items() if name != f.LABEL_KEY}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(serialized):
        parsed = tf.io.parse_example(serialized, serving_spec)
        return _predict(model, model.tft_layer(parsed))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(serialized):
        parsed = tf.io.parse_example(serialized, raw_spec)
        return model.tft_layer(parsed)

    raw_signature = {name: tf.TensorSpec([None], dtype, name=name) for name, dtype in _RAW_DTYPES.items()}
    lists = {f.MOVIE_GENRES: tf.string, f.USER_PRIOR_MOVIES: tf.string, f.USER_PRIOR_MOVIE_RATINGS: tf.float32}
    for name, dtype in lists.items():
        raw_signature[name] = tf.TensorSpec([None, None], dtype, name=name)

    @tf.function(input_signature=[raw_signature])
    def predict_raw(inputs):
        sizes = tf.stack([tf.shape(inputs[name])[0] for name in sorted(inputs)])
        tf.debugging.assert_equal(
            sizes, tf.fill(tf.shape(sizes), sizes[0]), message=f"{f.RAW_SIGNATURE}: inputs differ in batch size"
        )
        raw = {name: tf.reshape(inputs[name], [-1, 1]) for name in _RAW_DTYPES}
        raw[f.MOVIE_GENRES] = tf.sparse.from_dense(inputs[f.MOVIE_GENRES])  # drops "" padding
        movies = tf.sparse.from_dense(inputs[f.USER_PRIOR_MOVIES])
        raw[f.USER_PRIOR_MOVIES] = movies
        raw[f.USER_PRIOR_MOVIE_RATINGS] = tf.SparseTensor(
            movies.indices, tf.gather_nd(inputs[f.USER_PRIOR_MOVIE_RATINGS], movies.indices), movies.dense_shape
        )
        return _predict(model, model.tft_layer(raw))

    return {
        f.SERVING_SIGNATURE: serve_examples.get_concrete_function(),
        f.TRANSFORM_SIGNATURE: transform_features.get_concrete_function(),
        f.RAW_SIGNATURE: predict_raw,
    }


def export_serving_model(model: tf.keras.Model, tft_output: tft.TFTransformOutput, path: str) -> None:
    """Saves `model` (already called once, so it is built) with its signatures to `path`."""
    model.save(path, save_format="tf", signatures=make_signatures(model, tft_output))
