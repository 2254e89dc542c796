"""The history features of a serving request, computed by the same code as ExampleGen's.

A client scoring "how would this user rate this movie now?" must send the point-in-time history
features the model was trained on (README, "Serving contract"). `history_features` computes them
from what a client knows — the user's earlier ratings and the movie's earlier ratings — with
`history.user_histories` / `movie_histories`, the functions ExampleGen runs, so nobody has to
re-implement them (and the serving signatures reject requests whose history is incoherent).
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from components.example_gen import history, movielens
from transform import features

_QUERY = "\x00request"  # an id no MovieLens user or movie has: the request itself, which feeds no history


@dataclasses.dataclass(frozen=True)
class EarlierRating:
    """One of the user's earlier ratings.

    `movie_prior_count` / `movie_prior_rating_sum`: that movie's ratings (by anyone) strictly before
    this one, for the user's offset against movie means; leave them 0 when unknown (the rating then
    counts everywhere except in the offset features, as for a movie nobody had rated before).
    """

    movie_id: str
    rating: float
    timestamp: int
    genres: tuple[str, ...] = ()
    movie_prior_count: int = 0
    movie_prior_rating_sum: float = 0.0


def history_features(
    user_ratings: Iterable[EarlierRating],
    at: int,
    genres: Sequence[str] = (),
    movie_ratings: Iterable[tuple[str, float, int]] = (),
) -> dict[str, int | float | tuple]:
    """Every history feature of a request for a rating at time `at`, by feature name.

    Args:
      user_ratings: The user's ratings (any order); only those strictly before `at` count.
      at: The request's timestamp (seconds since the epoch), as sent in `timestamp`.
      genres: The candidate movie's genres (for the genre-overlap features).
      movie_ratings: The candidate movie's ratings by anyone as (user id, rating, timestamp); only earlier ones
        count.

    Returns:
      {feature name: value}: ints, floats, and the four lists as tuples (`user_prior_movies`,
      `user_prior_movie_ratings`, `movie_prior_raters`, `movie_prior_rater_ratings`, oldest first), exactly as
      ExampleGen would write them.
    """
    query = movielens.Rating(_QUERY, _QUERY, 0.0, at)
    events = [
        (
            movielens.Rating(_QUERY, r.movie_id, float(r.rating), int(r.timestamp)),
            tuple(r.genres),
            history.MovieHistory(r.movie_prior_count, r.movie_prior_rating_sum),
        )
        for r in user_ratings
    ]
    events.append((query, tuple(genres), history.MovieHistory()))
    [user_history] = [h for r, h in history.user_histories(events, hidden={query.key}) if r is query]
    earlier = []
    for rated in movie_ratings:
        if len(rated) != 3:
            raise ValueError(f"movie_ratings: expected (user id, rating, timestamp) triples, got {rated!r:.60}")
        user, value, at_time = rated
        earlier.append(movielens.Rating(str(user), _QUERY, float(value), int(at_time)))
    [movie_history] = [h for r, h in history.movie_histories([*earlier, query], hidden={query.key}) if r is query]
    return history.history_values(user_history, movie_history)


def _convert(name: str, value: Any, index: int) -> Any:
    """One instance's value of `name`, checked against the type predict_raw takes."""
    where = f"instance {index}: {name}"
    if name in features.MULTI_STRING_FEATURES or name in features.MULTI_FLOAT_FEATURES:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {type(value).__name__} {value!r:.60}")
        return [_convert_scalar(name, item, f"{where}[{i}]") for i, item in enumerate(value)]
    return _convert_scalar(name, value, where)


def _convert_scalar(name: str, value: Any, where: str) -> Any:
    if name in features.STRING_FEATURES or name in features.MULTI_STRING_FEATURES:
        if isinstance(value, str):
            return value
        expected = "a string"
    elif name in features.INT_FEATURES:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
        expected = "an integer"
    else:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return float(value)
        expected = "a number"
    raise ValueError(f"{where}: expected {expected}, got {type(value).__name__} {value!r:.60}")


def raw_request(instances: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """`predict_raw`'s named tensors from JSON-like instances (one dict of raw features per request),
    as TF Serving builds them from a REST request: lists padded with "" (movies, genres) or 0.

    Raises:
      ValueError: naming the instance and the feature, when a feature is missing or of the wrong type.
    """
    import tensorflow as tf

    scalar_dtypes = {
        **dict.fromkeys(features.STRING_FEATURES, tf.string),
        **dict.fromkeys(features.INT_FEATURES, tf.int64),
    }
    tensors = {}
    for name in features.SERVING_FEATURES:
        column = []
        for index, instance in enumerate(instances):
            if name not in instance:
                raise ValueError(f"instance {index}: {name}: missing (every predict_raw input is required)")
            column.append(_convert(name, instance[name], index))
        if name in features.MULTI_STRING_FEATURES or name in features.MULTI_FLOAT_FEATURES:
            width = max((len(row) for row in column), default=0)
            pad = "" if name in features.MULTI_STRING_FEATURES else 0.0
            column = [row + [pad] * (width - len(row)) for row in column]
            dtype = tf.string if name in features.MULTI_STRING_FEATURES else tf.float32
            tensors[name] = tf.constant(column, dtype, shape=[len(column), width])
        else:
            tensors[name] = tf.constant(column, scalar_dtypes.get(name, tf.float32), shape=[len(column)])
    return tensors
