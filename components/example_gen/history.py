"""Point-in-time history: what a user and a movie had done strictly before each rating, and the tf.Example
that joins a rating with its user, movie and histories.

Pure functions, shared by ExampleGen's Beam glue (`executor.py`) and serving clients (`serving_history.py`).
Parsing the raw files is `movielens.py`'s job.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Collection, Iterable

import pyarrow as pa
import tensorflow as tf
from tfx_bsl.coders import example_coder

from components.example_gen.movielens import Movie, Rating, User
from transform import features

RECENT_RATINGS = features.RECENT_RATINGS


@dataclasses.dataclass(frozen=True)
class UserHistory:
    """What a user did strictly before one rating (events at the same second are not "before")."""

    count: int = 0
    rating_sum: float = 0.0
    rating_sq_sum: float = 0.0
    genre_count: int = 0  # earlier ratings of movies sharing a genre with this one, counted per shared genre
    genre_rating_sum: float = 0.0
    recent_count: int = 0  # the last RECENT_RATINGS earlier ratings
    recent_rating_sum: float = 0.0
    seconds_since_last: int = -1  # -1: no earlier rating
    # How the user rates relative to others: over earlier ratings whose movie had been rated before
    # (by anyone, strictly before that rating), the sum of (rating - that movie's mean at the time).
    offset_count: int = 0
    offset_sum: float = 0.0
    # The last features.MAX_PRIOR_MOVIES earlier ratings one by one, oldest first: which movie, and how it was rated.
    movies: tuple[str, ...] = ()
    movie_ratings: tuple[float, ...] = ()


@dataclasses.dataclass(frozen=True)
class MovieHistory:
    """A movie's ratings strictly before one rating."""

    count: int = 0
    rating_sum: float = 0.0
    # The last features.MAX_PRIOR_RATERS of them one by one, oldest first: who rated it, and how.
    raters: tuple[str, ...] = ()
    rater_ratings: tuple[float, ...] = ()


def _by_second(events: list, key) -> list[list]:
    """Events sorted by timestamp (ties ordered by `key`, for determinism), grouped per second."""
    ordered = sorted(events, key=lambda e: (e[0].timestamp, key(e)))
    groups: list[list] = []
    for event in ordered:
        if groups and groups[-1][0][0].timestamp == event[0].timestamp:
            groups[-1].append(event)
        else:
            groups.append([event])
    return groups


def user_histories(
    events: Iterable[tuple[Rating, tuple[str, ...], MovieHistory]],
    hidden: Collection[tuple] = frozenset(),
) -> list[tuple[Rating, UserHistory]]:
    """One user's (rating, movie genres, the movie's history at that rating) events → each rating
    with the user's history before it.

    Only events with a strictly smaller timestamp count; ratings in the same second see the
    same history (none of each other), so the result does not depend on input order. Ratings
    whose key is in `hidden` get a history but are never part of one (see splits.hides_test).
    """
    count, total, squares, last = 0, 0.0, 0.0, None
    offset_count, offset_sum = 0, 0.0
    per_genre: dict[str, list] = {}
    recent: list[float] = []
    rated: list[Rating] = []  # the last features.MAX_PRIOR_MOVIES, oldest first
    result = []
    for group in _by_second(list(events), key=lambda e: e[0].movie_id):
        for rating, genres, _ in group:
            shared = [per_genre[g] for g in genres if g in per_genre]
            history = UserHistory(
                count=count,
                rating_sum=total,
                rating_sq_sum=squares,
                genre_count=sum(c for c, _ in shared),
                genre_rating_sum=sum(s for _, s in shared),
                recent_count=len(recent),
                recent_rating_sum=sum(recent),
                seconds_since_last=-1 if last is None else rating.timestamp - last,
                offset_count=offset_count,
                offset_sum=offset_sum,
                movies=tuple(r.movie_id for r in rated),
                movie_ratings=tuple(float(r.rating) for r in rated),
            )
            result.append((rating, history))
        for rating, genres, movie in group:
            if rating.key in hidden:
                continue
            count, total, squares = count + 1, total + rating.rating, squares + rating.rating**2
            if movie.count:
                offset_count, offset_sum = offset_count + 1, offset_sum + rating.rating - movie.rating_sum / movie.count
            for genre in genres:
                slot = per_genre.setdefault(genre, [0, 0.0])
                slot[0] += 1
                slot[1] += rating.rating
            recent = (recent + [rating.rating])[-RECENT_RATINGS:]
            rated = (rated + [rating])[-features.MAX_PRIOR_MOVIES :]
            last = rating.timestamp  # hidden ratings do not move it either: their time is test data too
    return result


def movie_histories(
    ratings: Iterable[Rating], hidden: Collection[tuple] = frozenset()
) -> list[tuple[Rating, MovieHistory]]:
    """One movie's ratings → each rating with the movie's ratings strictly before it (`hidden` ones excepted)."""
    count, total, result = 0, 0.0, []
    rated: list[Rating] = []  # the last features.MAX_PRIOR_RATERS, oldest first
    for group in _by_second([(r,) for r in ratings], key=lambda e: (e[0].user_id, e[0].movie_id, e[0].rating)):
        raters, rater_ratings = tuple(r.user_id for r in rated), tuple(float(r.rating) for r in rated)
        result += [(rating, MovieHistory(count, total, raters, rater_ratings)) for (rating,) in group]
        counted = [rating for (rating,) in group if rating.key not in hidden]
        count += len(counted)
        total += sum(rating.rating for rating in counted)
        rated = (rated + counted)[-features.MAX_PRIOR_RATERS :]
    return result


def history_values(user_history: UserHistory, movie_history: MovieHistory) -> dict[str, int | float | tuple]:
    """The history features of one rating by name: what ExampleGen writes and what a serving request carries."""
    f = features
    return {
        f.USER_PRIOR_COUNT: user_history.count,
        f.USER_PRIOR_RATING_SUM: user_history.rating_sum,
        f.USER_PRIOR_RATING_SQ_SUM: user_history.rating_sq_sum,
        f.USER_PRIOR_GENRE_COUNT: user_history.genre_count,
        f.USER_PRIOR_GENRE_RATING_SUM: user_history.genre_rating_sum,
        f.USER_RECENT_COUNT: user_history.recent_count,
        f.USER_RECENT_RATING_SUM: user_history.recent_rating_sum,
        f.USER_SECONDS_SINCE_LAST: user_history.seconds_since_last,
        f.USER_PRIOR_OFFSET_COUNT: user_history.offset_count,
        f.USER_PRIOR_OFFSET_SUM: user_history.offset_sum,
        f.MOVIE_PRIOR_COUNT: movie_history.count,
        f.MOVIE_PRIOR_RATING_SUM: movie_history.rating_sum,
        f.USER_PRIOR_MOVIES: user_history.movies,
        f.USER_PRIOR_MOVIE_RATINGS: user_history.movie_ratings,
        f.MOVIE_PRIOR_RATERS: movie_history.raters,
        f.MOVIE_PRIOR_RATER_RATINGS: movie_history.rater_ratings,
    }


# Each raw feature's tf.train.Feature list, looked up once per name instead of scanning features.py's tuples
# for every value written (ExampleGen writes 23 features per rating).
_INT64, _BYTES, _FLOAT = "int64_list", "bytes_list", "float_list"
_LIST_KIND = {name: _INT64 for name in features.INT_FEATURES} | {
    name: _BYTES for name in features.STRING_FEATURES + features.MULTI_STRING_FEATURES
}


def _encoded(values) -> list[bytes]:
    """Strings as UTF-8 bytes: one join, encode and split for a list of ids (ExampleGen's 100 a rating), per
    value only where a value holds the separator itself."""
    joined = "\x1f".join(values)
    if joined.count("\x1f") == len(values) - 1:
        return joined.encode("utf-8").split(b"\x1f")
    return [value.encode("utf-8") for value in values]


def _as_values(value) -> tuple | list:
    """A feature's values: a tuple or list as it is, a scalar as one value."""
    return value if isinstance(value, tuple | list) else (value,)


def set_feature(feature, name: str, value) -> None:
    """Appends `value` (a scalar, tuple or list) to an example's `feature` map under `name`, typed by features.py."""
    values = _as_values(value)
    kind = _LIST_KIND.get(name, _FLOAT)
    if kind is _BYTES:
        feature[name].bytes_list.value.extend(_encoded(values))
    else:
        getattr(feature[name], kind).value.extend(values)


def example_values(
    rating: Rating,
    user: User | None,
    movie: Movie,
    user_history: UserHistory = UserHistory(),
    movie_history: MovieHistory = MovieHistory(),
) -> dict[str, int | float | str | tuple]:
    """The raw features of one rating joined with its user, its movie and their histories, by name.

    `user` is None in releases without a users file: the example has no user attribute features at all.
    """
    f = features
    values = {
        f.USER_ID: rating.user_id,
        f.MOVIE_ID: rating.movie_id,
        f.RATING: rating.rating,
        f.TIMESTAMP: rating.timestamp,
        f.MOVIE_TITLE: movie.title,
        f.MOVIE_GENRES: tuple(movie.genres),
        f.MOVIE_RELEASE_YEAR: movie.release_year,
    }
    if user is not None:
        values |= {f.USER_AGE: user.age, f.USER_GENDER: user.gender, f.USER_OCCUPATION: user.occupation,
                   f.USER_ZIP: user.zip_code}  # fmt: skip
    return values | history_values(user_history, movie_history)


def to_example(
    rating: Rating,
    user: User | None,
    movie: Movie,
    user_history: UserHistory = UserHistory(),
    movie_history: MovieHistory = MovieHistory(),
) -> tf.train.Example:
    """One rating's tf.Example of raw features (example_values), for callers that want the message.

    (Filled in place: 4× faster than building Feature messages and copying them in.)
    """
    example = tf.train.Example()
    feature = example.features.feature
    for name, value in example_values(rating, user, movie, user_history, movie_history).items():
        set_feature(feature, name, value)
    return example


_ARROW_TYPES = {_INT64: pa.list_(pa.int64()), _BYTES: pa.list_(pa.binary()), _FLOAT: pa.list_(pa.float32())}


@functools.cache
def _encoder() -> example_coder.RecordBatchToExamplesEncoder:
    return example_coder.RecordBatchToExamplesEncoder()


def serialized_examples(rows: list[dict]) -> list[bytes]:
    """Serialized tf.Examples of `rows` (example_values of one release: the same names in each), in order.

    What ExampleGen writes: the rows become one Arrow record batch, a list column per feature typed as
    features.py says, and tfx_bsl's C++ encoder writes the Examples (the examples parse to the same messages
    as `to_example`'s; building each message in Python took 100 µs a rating at full histories, a third of
    ExampleGen's time: benchmarks/example_writing.py).
    """
    if not rows:
        return []
    columns = []
    for name in rows[0]:
        kind = _LIST_KIND.get(name, _FLOAT)
        values = [_as_values(row[name]) for row in rows]
        if kind is _BYTES:
            values = [_encoded(value) for value in values]
        columns.append(pa.array(values, _ARROW_TYPES[kind]))
    return _encoder().encode(pa.RecordBatch.from_arrays(columns, list(rows[0])))
