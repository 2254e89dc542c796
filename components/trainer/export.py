"""Serving signatures and SavedModel export.

Four signatures, all applying the Transform graph inside the model:
- `serving_default`: serialized tf.Example of raw features (no label) → predicted rating.
  This is what TF Serving's `:predict`/`:regress` and the Evaluator call.
- `transform_features`: serialized tf.Example → transformed features.
- `slice_features`: serialized tf.Example → only the Transform outputs the Evaluator slices by (TFMA carries
  every feature it is given through its per-example work: fewer features, a faster Evaluator).
- `predict_raw`: named raw tensors (JSON-friendly for `/v1/models/NAME:predict`)
  → predicted rating. `movie_genres` and `user_prior_movies` are [batch, n] string matrices padded
  with ""; `user_prior_movie_ratings` is [batch, n] too, read where `user_prior_movies` is not "".
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from components.trainer import data, explanation, recommend
from transform import features as f

_RAW_DTYPES = {
    **{name: tf.string for name in f.STRING_FEATURES},
    **{name: tf.int64 for name in f.INT_FEATURES},
    **{name: tf.float32 for name in f.FLOAT_FEATURES if name != f.LABEL_KEY},
}


def _vector(raw: dict, name: str, dtype=tf.float32) -> tf.Tensor:
    return tf.cast(tf.reshape(raw[name], [-1]), dtype)


def _close(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """Equal up to float32 rounding of sums of ratings."""
    return tf.abs(a - b) <= 1e-2 + 1e-5 * tf.abs(b)


def _check(condition: tf.Tensor, message: str) -> tf.Operation:
    return tf.debugging.Assert(tf.reduce_all(condition), [f"incoherent request: {message}"], name="coherence")


def coherence_checks(raw: dict, rating_range: tuple[float, float] = (f.RATING_MIN, f.RATING_MAX)) -> list[tf.Operation]:
    """Assertions that a request's history features agree with each other, as ExampleGen writes them.

    `raw` holds the parsed raw features (scalars [batch] or [batch, 1]; the lists as SparseTensors).
    Each failing check names the features that disagree (README, "Serving contract").
    """
    count = _vector(raw, f.USER_PRIOR_COUNT)
    movie, movie_sum = _vector(raw, f.MOVIE_PRIOR_COUNT), _vector(raw, f.MOVIE_PRIOR_RATING_SUM)
    # Both lists of ratings given, as one ragged row per request.
    ratings, rater_ratings = (tf.RaggedTensor.from_sparse(raw[values]) for _, values in f.HISTORY_LISTS)
    user_lengths, user_range, user_listed = _list_checks(
        raw, f.HISTORY_LISTS[0], ratings, f.USER_PRIOR_COUNT, f.MAX_PRIOR_MOVIES, "movies of the user", rating_range
    )
    rater_checks = _list_checks(
        raw, f.HISTORY_LISTS[1], rater_ratings, f.MOVIE_PRIOR_COUNT, f.MAX_PRIOR_RATERS, "raters of the movie",
        rating_range,
    )  # fmt: skip
    window = tf.cast(ratings.row_lengths(), tf.float32)
    recent, recent_sum = _vector(raw, f.USER_RECENT_COUNT), _vector(raw, f.USER_RECENT_RATING_SUM)
    total, squares = _vector(raw, f.USER_PRIOR_RATING_SUM), _vector(raw, f.USER_PRIOR_RATING_SQ_SUM)
    position = tf.cast(tf.ragged.range(ratings.row_lengths()), tf.float32)
    last = tf.cast(position >= tf.expand_dims(window - recent, 1), tf.float32)  # the last `recent` of each row
    listed_recent = tf.reduce_sum(ratings * last, axis=1)
    listed_total = tf.reduce_sum(ratings, axis=1)
    listed_squares = tf.reduce_sum(ratings * ratings, axis=1)
    genre, genre_sum = _vector(raw, f.USER_PRIOR_GENRE_COUNT), _vector(raw, f.USER_PRIOR_GENRE_RATING_SUM)
    offsets = _vector(raw, f.USER_PRIOR_OFFSET_COUNT)
    since = _vector(raw, f.USER_SECONDS_SINCE_LAST)
    low, high = rating_range
    recent_window = float(f.RECENT_RATINGS)
    whole_list = tf.equal(window, count)  # the list holds every earlier rating: its sums are the user's
    return [
        user_lengths,
        user_range,
        *[
            _check(value >= 0, f"{name} is a count (>= 0)")
            for name, value in (
                (f.USER_PRIOR_COUNT, count),
                (f.USER_RECENT_COUNT, recent),
                (f.USER_PRIOR_GENRE_COUNT, genre),
                (f.USER_PRIOR_OFFSET_COUNT, offsets),
                (f.MOVIE_PRIOR_COUNT, movie),
            )  # fmt: skip
        ],
        user_listed,
        _check(
            tf.equal(recent, tf.minimum(count, recent_window)),
            f"{f.USER_RECENT_COUNT} must be min({f.USER_PRIOR_COUNT}, {f.RECENT_RATINGS})",
        ),
        _check(
            _close(recent_sum, listed_recent),
            f"{f.USER_RECENT_RATING_SUM} must be the sum of the last {f.USER_RECENT_COUNT} "
            f"{f.USER_PRIOR_MOVIE_RATINGS}",
        ),
        _check(
            (total >= low * count - 1e-2)
            & (total <= high * count + 1e-2)
            & (~whole_list | _close(total, listed_total)),
            f"{f.USER_PRIOR_RATING_SUM} must be the sum of the {f.USER_PRIOR_COUNT} earlier ratings of the user "
            f"(of {f.USER_PRIOR_MOVIE_RATINGS} when it lists them all)",
        ),
        _check(
            (squares >= low * low * count - 1e-2)
            & (squares <= high * high * count + 1e-2)
            & (~whole_list | _close(squares, listed_squares)),
            f"{f.USER_PRIOR_RATING_SQ_SUM} must be the sum of squares of the {f.USER_PRIOR_COUNT} earlier "
            "ratings of the user",
        ),
        _check(
            (genre_sum >= low * genre - 1e-2) & (genre_sum <= high * genre + 1e-2),
            f"{f.USER_PRIOR_GENRE_RATING_SUM} must lie within {low:g}..{high:g} × {f.USER_PRIOR_GENRE_COUNT}",
        ),
        _check(offsets <= count, f"{f.USER_PRIOR_OFFSET_COUNT} cannot exceed {f.USER_PRIOR_COUNT}"),
        _check(
            tf.where(count > 0, since >= 0, tf.equal(since, -1.0)),
            f"{f.USER_SECONDS_SINCE_LAST} must be -1 when {f.USER_PRIOR_COUNT} is 0, else >= 0",
        ),
        _check(
            (movie_sum >= low * movie - 1e-2)
            & (movie_sum <= high * movie + 1e-2)
            & (
                ~tf.equal(tf.cast(rater_ratings.row_lengths(), tf.float32), movie)
                | _close(movie_sum, tf.reduce_sum(rater_ratings, axis=1))
            ),
            f"{f.MOVIE_PRIOR_RATING_SUM} must be the sum of the {f.MOVIE_PRIOR_COUNT} earlier ratings of the movie "
            f"(of {f.MOVIE_PRIOR_RATER_RATINGS} when it lists them all)",
        ),
        *rater_checks,
    ]


def _list_checks(
    raw: dict,
    names: tuple[str, str],
    ratings: tf.RaggedTensor,
    count_name: str,
    limit: int,
    what: str,
    rating_range: tuple[float, float],
) -> tuple[tf.Operation, tf.Operation, tf.Operation]:
    """What every list of earlier ratings (`names`: ids, ratings given; [batch, None] SparseTensors; `ratings`: the
    second as one ragged row per request) must satisfy: equal lengths, ratings in range, the last min(count, limit)
    of them listed."""
    ids, ratings_name = names
    listed = tf.cast(tf.RaggedTensor.from_sparse(raw[ids]).row_lengths(), tf.float32)
    count, (low, high), most = _vector(raw, count_name), rating_range, float(limit)
    return (
        _check(
            tf.equal(listed, tf.cast(ratings.row_lengths(), tf.float32)), f"{ids} and {ratings_name} differ in length"
        ),
        _check(
            (ratings.flat_values >= low) & (ratings.flat_values <= high),
            f"{ratings_name} must lie within {low:g}..{high:g}",
        ),
        _check(
            tf.equal(tf.minimum(listed, most), tf.minimum(count, most)),
            f"{ids} must list the last min({count_name}, {limit}) earlier {what}",
        ),
    )


def _predict(model: tf.keras.Model, transformed: dict[str, tf.Tensor], rating_range) -> dict[str, tf.Tensor]:
    rating = tf.clip_by_value(model(transformed), *rating_range)
    return {f.PREDICTION_KEY: rating}


def make_signatures(model: tf.keras.Model, tft_output: tft.TFTransformOutput) -> dict:
    """Concrete functions for the four signatures. Attaches the Transform layer to `model`.

    The raw inputs are the schema's (no user attributes in releases without a users file); predictions are
    clipped to the schema's rating range. Every signature here, in recommend.py and explanation.py is traced
    without AutoGraph: it is graph code (RankingModel.train_step says what converting it cost).
    """
    model.tft_layer = tft_output.transform_features_layer()
    raw_spec = tft_output.raw_feature_spec()
    rating_range = data.rating_range(tft_output)
    raw_dtypes = {name: dtype for name, dtype in _RAW_DTYPES.items() if name in raw_spec}
    serving_spec = {name: spec for name, spec in raw_spec.items() if name != f.LABEL_KEY}

    @tf.function(autograph=False, input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(serialized):
        parsed = tf.io.parse_example(serialized, serving_spec)
        with tf.control_dependencies(coherence_checks(parsed, rating_range)):
            return _predict(model, model.tft_layer(parsed), rating_range)

    @tf.function(autograph=False, input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(serialized):
        parsed = tf.io.parse_example(serialized, raw_spec)
        return model.tft_layer(parsed)

    @tf.function(autograph=False, input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def slice_features(serialized):
        transformed = model.tft_layer(tf.io.parse_example(serialized, serving_spec))
        return {name: transformed[name] for name in f.present(f.SLICE_FEATURES, transformed)}

    raw_signature = {name: tf.TensorSpec([None], dtype, name=name) for name, dtype in raw_dtypes.items()}
    for name in (*f.MULTI_STRING_FEATURES, *f.MULTI_FLOAT_FEATURES):
        dtype = tf.string if name in f.MULTI_STRING_FEATURES else tf.float32
        raw_signature[name] = tf.TensorSpec([None, None], dtype, name=name)

    @tf.function(autograph=False, input_signature=[raw_signature])
    def predict_raw(inputs):
        batch = tf.shape(inputs[f.USER_ID])[0]
        checks = [
            tf.debugging.Assert(
                tf.equal(tf.shape(inputs[name])[0], batch),
                [
                    f"{f.RAW_SIGNATURE}: {name} has another batch size than {f.USER_ID}:",
                    tf.shape(inputs[name])[0],
                    batch,
                ],
            )
            for name in sorted(inputs)
        ]
        checks += [
            tf.debugging.Assert(
                tf.reduce_all(tf.equal(tf.shape(inputs[values]), tf.shape(inputs[ids]))),
                [f"{f.RAW_SIGNATURE}: {values} must have the shape of {ids}"],
            )
            for ids, values in f.HISTORY_LISTS
        ]
        with tf.control_dependencies(checks):
            inputs = {name: tf.identity(value) for name, value in inputs.items()}
        raw = {name: tf.reshape(inputs[name], [-1, 1]) for name in raw_dtypes}
        raw[f.MOVIE_GENRES] = tf.sparse.from_dense(inputs[f.MOVIE_GENRES])  # drops "" padding
        for ids, values in f.HISTORY_LISTS:  # a rating next to a "" id is padding too
            listed = tf.sparse.from_dense(inputs[ids])
            raw[ids] = listed
            raw[values] = tf.SparseTensor(
                listed.indices, tf.gather_nd(inputs[values], listed.indices), listed.dense_shape
            )
        with tf.control_dependencies(coherence_checks(raw, rating_range)):
            return _predict(model, model.tft_layer(raw), rating_range)

    return {
        f.SERVING_SIGNATURE: serve_examples.get_concrete_function(),
        f.TRANSFORM_SIGNATURE: transform_features.get_concrete_function(),
        f.SLICE_SIGNATURE: slice_features.get_concrete_function(),
        f.RAW_SIGNATURE: predict_raw,
    }


def export_serving_model(
    model: tf.keras.Model, tft_output: tft.TFTransformOutput, path: str, recommender: recommend.Recommender
) -> None:
    """Saves `model` (already called once, so it is built) with its signatures, `recommend` included, to `path`."""
    signatures = make_signatures(model, tft_output)
    model.recommender = recommender  # tracked by the model, so its variables and tables are saved
    signatures.update(recommend.make_signatures(model, recommender))
    signatures.update(explanation.make_signatures(model, recommender, tft_output))
    model.save(path, save_format="tf", signatures=signatures)
