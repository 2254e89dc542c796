"""Feature engineering for the recommender: the Transform component's preprocessing_fn.

Transform analyses the `train` split only, so vocabularies, means and variances
never see eval/test data. Everything here also runs at serving time inside the
exported SavedModel, so it must not depend on the label.

No analyzer's input depends on another analyzer's result, so that Transform analyses the train split in one pass
over it: an analyzer fed by another's output is a second phase, a second read and decode of every train example
(tests/preprocessing_test.py checks there is one).
"""

from __future__ import annotations

import math

import tensorflow as tf
import tensorflow_transform as tft

from transform import features as f

_SECONDS_PER_DAY = 86_400
_SECONDS_PER_YEAR = 365.2425 * _SECONDS_PER_DAY
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday; Monday = 0.


def _dense(x: tf.Tensor | tf.SparseTensor, default) -> tf.Tensor:
    """[batch, 1] (or sparse) input → [batch] dense tensor."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(tf.sparse.reset_shape(x, [x.dense_shape[0], 1]), default_value=default)
    return tf.reshape(x, [-1])


def _vocab(x: tf.Tensor, name: str) -> tf.Tensor:
    return tft.compute_and_apply_vocabulary(x, num_oov_buckets=f.NUM_OOV_BUCKETS, vocab_filename=name)


def z_score_by(x: tf.Tensor, sample: tf.Tensor, mean: tf.Tensor | None = None) -> tf.Tensor:
    """`x`'s z-score with the mean and variance of `sample` (train-split analyzers; `mean`: tft.mean(sample) where the
    caller has it already): `x` − mean where the variance is 0, as tft.scale_to_z_score."""
    mean, std = tft.mean(sample) if mean is None else mean, tf.sqrt(tft.var(sample))
    return tf.where(std > 0, (x - mean) / tf.where(std > 0, std, 1.0), x - mean)


def time_features(timestamp: tf.Tensor) -> dict[str, tf.Tensor]:
    """Hour of day and day of week (UTC), with their cyclic sin/cos encodings."""
    seconds_of_day = tf.math.floormod(timestamp, _SECONDS_PER_DAY)
    hour = seconds_of_day // 3600
    day_of_week = tf.math.floormod(timestamp // _SECONDS_PER_DAY + _EPOCH_WEEKDAY, 7)
    hour_angle = 2.0 * math.pi * tf.cast(seconds_of_day, tf.float32) / _SECONDS_PER_DAY
    dow_angle = 2.0 * math.pi * tf.cast(day_of_week, tf.float32) / 7.0
    return {
        f.HOUR_XF: hour,
        f.DAY_OF_WEEK_XF: day_of_week,
        f.HOUR_SIN_XF: tf.sin(hour_angle),
        f.HOUR_COS_XF: tf.cos(hour_angle),
        f.DOW_SIN_XF: tf.sin(dow_angle),
        f.DOW_COS_XF: tf.cos(dow_angle),
    }


def age_bucket(age: tf.Tensor) -> tf.Tensor:
    """MovieLens-1M demographic age band of each age, as a string (used for slicing)."""
    index = tf.raw_ops.Bucketize(input=tf.cast(age, tf.float32), boundaries=[float(b) for b in f.AGE_BUCKET_BOUNDARIES])
    return tf.gather(tf.constant(f.AGE_BUCKET_NAMES), index)


def genre_indices(genres: tf.SparseTensor) -> tf.Tensor:
    """Genre list → dense [batch, MAX_GENRES] vocabulary indices, -1 as padding."""
    ids = tft.compute_and_apply_vocabulary(genres, num_oov_buckets=f.NUM_OOV_BUCKETS, vocab_filename=f.GENRES_VOCAB)
    dense = tf.sparse.to_dense(ids, default_value=-1)
    padded = tf.pad(dense, [[0, 0], [0, f.MAX_GENRES]], constant_values=-1)[:, : f.MAX_GENRES]
    return tf.reshape(padded, [-1, f.MAX_GENRES])


def title_tokens(title: tf.Tensor) -> tf.Tensor:
    """Movie titles → dense [batch, MAX_TITLE_TOKENS] hashed lower-case words (-1 padding); the year in
    parentheses is a word too. Stateless (no vocabulary), so a movie new to the catalogue gets tokens."""
    words = tf.strings.split(tf.strings.regex_replace(tf.strings.lower(title), r"[^a-z0-9]+", " "))
    ids = tf.strings.to_hash_bucket_fast(words, f.TITLE_HASH_BUCKETS)
    return ids.to_tensor(default_value=-1, shape=[None, f.MAX_TITLE_TOKENS])


def prior_list(
    ids: tf.SparseTensor, ratings: tf.SparseTensor, vocab, center: tf.Tensor, names: tuple[str, str], length: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """Earlier ratings one by one (two lists, oldest first: whose or which, and the rating; raw `names`) →
    dense [batch, length] vocabulary indices (-1 padding) and rating deviations from `center` ([batch]; 0 at
    padding): the user's earlier movies, or the movie's earlier raters.

    Lists longer than `length` keep their latest entries. The two lists must have the same length in every
    example (InvalidArgumentError otherwise).
    """
    ids = tf.RaggedTensor.from_sparse(ids)
    ratings = tf.RaggedTensor.from_sparse(ratings)
    check = tf.debugging.assert_equal(
        ids.row_lengths(), ratings.row_lengths(), message=f"{names[0]} and {names[1]} differ in length"
    )
    with tf.control_dependencies([check]):
        ids, ratings = ids[:, -length:], ratings[:, -length:]
    indices = ids.with_flat_values(tft.apply_vocabulary(ids.flat_values, vocab, num_oov_buckets=f.NUM_OOV_BUCKETS))
    deviations = ratings - tf.expand_dims(center, 1)
    return indices.to_tensor(default_value=-1, shape=[None, length]), deviations.to_tensor(0.0, shape=[None, length])


def user_attribute_features(inputs: dict) -> dict[str, tf.Tensor]:
    """Gender, occupation and zip prefix vocabularies, the age's z-score and band (f.USER_ATTRIBUTE_XF)."""
    age = tf.cast(_dense(inputs[f.USER_AGE], 0), tf.float32)
    zip_prefix = tf.strings.substr(tf.strings.upper(_dense(inputs[f.USER_ZIP], "")), 0, f.ZIP_PREFIX_LENGTH)
    return {
        f.USER_GENDER_XF: _vocab(_dense(inputs[f.USER_GENDER], ""), f.VOCAB_FEATURES[f.USER_GENDER_XF]),
        f.USER_OCCUPATION_XF: _vocab(_dense(inputs[f.USER_OCCUPATION], ""), f.VOCAB_FEATURES[f.USER_OCCUPATION_XF]),
        f.USER_ZIP_PREFIX_XF: _vocab(zip_prefix, f.VOCAB_FEATURES[f.USER_ZIP_PREFIX_XF]),
        f.USER_AGE_XF: tft.scale_to_z_score(age),
        f.USER_AGE_BUCKET_XF: age_bucket(age),
    }


def _float(inputs, name: str) -> tf.Tensor:
    return tf.cast(_dense(inputs[name], 0), tf.float32)


def _shrunk_mean(total: tf.Tensor, count: tf.Tensor, prior: tf.Tensor, pseudo_count: float) -> tf.Tensor:
    """Mean of `count` ratings summing to `total`, starting from `pseudo_count` ratings of `prior`; centred on it."""
    return (total + pseudo_count * prior) / (count + pseudo_count) - prior


def prior_mean(inputs: dict) -> tf.Tensor:
    """The prior every history mean is shrunk towards: Σ movie_prior_rating_sum / Σ movie_prior_count
    over the train split.

    That is the mean of the movies' earlier ratings as the train examples see them, so a rating weighs
    once per later train rating of its movie: a popularity-weighted mean, not the plain mean of the
    train ratings (tests/preprocessing_test.py shows data where the two differ). It is the level of
    the quantity shrunk most (movie means), and an analyzer (a constant in the serving graph) that
    needs no label.
    """
    return tft.mean(_float(inputs, f.MOVIE_PRIOR_RATING_SUM)) / tf.maximum(
        tft.mean(_float(inputs, f.MOVIE_PRIOR_COUNT)), 1e-6
    )


def history_features(inputs: dict, prior: tf.Tensor) -> dict[str, tf.Tensor]:
    """The point-in-time history (sums and counts written by ExampleGen) → shrunk means, spreads, log counts,
    centred on `prior` (see prior_mean)."""
    user_count, user_sum = _float(inputs, f.USER_PRIOR_COUNT), _float(inputs, f.USER_PRIOR_RATING_SUM)
    user_sq_sum = _float(inputs, f.USER_PRIOR_RATING_SQ_SUM)
    genre_count, genre_sum = _float(inputs, f.USER_PRIOR_GENRE_COUNT), _float(inputs, f.USER_PRIOR_GENRE_RATING_SUM)
    recent_count, recent_sum = _float(inputs, f.USER_RECENT_COUNT), _float(inputs, f.USER_RECENT_RATING_SUM)
    movie_count, movie_sum = _float(inputs, f.MOVIE_PRIOR_COUNT), _float(inputs, f.MOVIE_PRIOR_RATING_SUM)
    since_last = _float(inputs, f.USER_SECONDS_SINCE_LAST)
    offset_count, offset_sum = _float(inputs, f.USER_PRIOR_OFFSET_COUNT), _float(inputs, f.USER_PRIOR_OFFSET_SUM)
    # Spread of the user's ratings, shrunk towards 1 (about the spread of all ratings).
    variance = (user_sq_sum - user_sum * user_sum / tf.maximum(user_count, 1.0) + 2.0) / (user_count + 2.0)
    has_history = tf.cast(user_count > 0, tf.float32)
    return {
        f.USER_MEAN_XF: _shrunk_mean(user_sum, user_count, prior, f.USER_MEAN_PSEUDO_COUNT),
        f.USER_STD_XF: tf.sqrt(tf.maximum(variance, 0.0)) - 1.0,
        f.USER_COUNT_XF: tft.scale_to_z_score(tf.math.log1p(user_count)),
        f.USER_GENRE_MEAN_XF: _shrunk_mean(genre_sum, genre_count, prior, f.USER_GENRE_PSEUDO_COUNT),
        f.USER_GENRE_COUNT_XF: tft.scale_to_z_score(tf.math.log1p(genre_count)),
        f.USER_RECENT_MEAN_XF: _shrunk_mean(recent_sum, recent_count, prior, f.USER_RECENT_PSEUDO_COUNT),
        f.USER_SINCE_LAST_XF: has_history * tft.scale_to_z_score(tf.math.log1p(tf.maximum(since_last, 0.0))),
        f.USER_HAS_HISTORY_XF: has_history,
        f.USER_OFFSET_XF: _shrunk_mean(offset_sum, offset_count, 0.0, f.USER_OFFSET_PSEUDO_COUNT),
        f.MOVIE_MEAN_XF: _shrunk_mean(movie_sum, movie_count, prior, f.MOVIE_MEAN_PSEUDO_COUNT),
        f.MOVIE_COUNT_XF: tft.scale_to_z_score(tf.math.log1p(movie_count)),
    }


# Called by the TFX Transform component (and again inside the serving SavedModel).
def preprocessing_fn(inputs: dict[str, tf.Tensor | tf.SparseTensor]) -> dict[str, tf.Tensor]:
    """Raw MovieLens features → model features. See transform/features.py for the names.

    Releases without a users file have no f.USER_ATTRIBUTES in the schema (so not in `inputs`): the features made
    from them are left out (user_attribute_features).
    """
    timestamp = _dense(inputs[f.TIMESTAMP], 0)
    year = _dense(inputs[f.MOVIE_RELEASE_YEAR], f.RELEASE_YEAR_UNKNOWN)
    year_known = tf.not_equal(year, f.RELEASE_YEAR_UNKNOWN)
    year_float = tf.cast(year, tf.float32)
    rating_year = 1970.0 + tf.cast(timestamp, tf.float32) / _SECONDS_PER_YEAR
    # Unknown release years are imputed with the mean of the known ones (train split), and both z-scores use the
    # statistics of the examples whose year is known (an unknown year scores 0), not of the imputed values: those
    # would need the mean first, a second analysis pass.
    known_years = tf.boolean_mask(year_float, year_known)
    mean_year = tft.mean(known_years)
    year_imputed = tf.where(year_known, year_float, mean_year)

    def age_at_rating(release_year: tf.Tensor) -> tf.Tensor:
        return tf.maximum(rating_year - (release_year + 0.5), 0.0)

    movie_age = age_at_rating(year_imputed)
    known_ages = tf.boolean_mask(age_at_rating(year_float), year_known)  # from the raw years, not from the mean

    user_id = _dense(inputs[f.USER_ID], "")
    user_vocab = tft.vocabulary(user_id, vocab_filename=f.VOCAB_FEATURES[f.USER_ID_XF])
    user_known = tft.apply_vocabulary(user_id, user_vocab, default_value=-1) >= 0

    movie_id = _dense(inputs[f.MOVIE_ID], "")
    movie_vocab = tft.vocabulary(movie_id, vocab_filename=f.VOCAB_FEATURES[f.MOVIE_ID_XF])
    prior = prior_mean(inputs)
    history = history_features(inputs, prior)
    user_mean, movie_mean = history[f.USER_MEAN_XF] + prior, history[f.MOVIE_MEAN_XF] + prior

    outputs = {
        f.USER_ID_XF: tft.apply_vocabulary(user_id, user_vocab, num_oov_buckets=f.NUM_OOV_BUCKETS),
        f.USER_SEEN_XF: tf.where(user_known, *f.USER_SEEN_VALUES),
        f.MOVIE_ID_XF: tft.apply_vocabulary(movie_id, movie_vocab, num_oov_buckets=f.NUM_OOV_BUCKETS),
        f.MOVIE_GENRES_XF: genre_indices(inputs[f.MOVIE_GENRES]),
        f.MOVIE_TITLE_TOKENS_XF: title_tokens(_dense(inputs[f.MOVIE_TITLE], "")),
        f.MOVIE_YEAR_XF: z_score_by(year_imputed, known_years, mean_year),
        f.MOVIE_YEAR_MISSING_XF: 1.0 - tf.cast(year_known, tf.float32),
        f.MOVIE_AGE_XF: z_score_by(movie_age, known_ages),
        **time_features(timestamp),
        **history,
    }
    user_side, movie_side = f.HISTORY_LISTS
    outputs[f.USER_PRIOR_MOVIES_XF], outputs[f.USER_PRIOR_DEVIATIONS_XF] = prior_list(
        *(inputs[name] for name in user_side), movie_vocab, user_mean, user_side, f.MAX_PRIOR_MOVIES
    )
    outputs[f.MOVIE_PRIOR_RATERS_XF], outputs[f.MOVIE_PRIOR_DEVIATIONS_XF] = prior_list(
        *(inputs[name] for name in movie_side), user_vocab, movie_mean, movie_side, f.MAX_PRIOR_RATERS
    )
    if f.USER_AGE in inputs:
        outputs |= user_attribute_features(inputs)
    for name in f.present(f.PASSTHROUGH_FEATURES, inputs):
        outputs[name] = _dense(inputs[name], "" if inputs[name].dtype == tf.string else 0)
    if f.LABEL_KEY in inputs:  # Absent at serving time.
        outputs[f.LABEL_XF] = tf.cast(_dense(inputs[f.LABEL_KEY], 0.0), tf.float32)
    return outputs
