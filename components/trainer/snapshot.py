"""The recommender's snapshot: every user's and movie's state as of the newest rating the model was trained on.

Built once at export from the ratings the Trainer read (train and eval splits, passed through by
Transform under their raw names), and baked into the SavedModel by `recommend.py`, so a request for a
known user needs only `user_id`. The user state is what ExampleGen's `history.user_histories` would
compute for a request one second after the newest rating (tests/snapshot_test.py checks it against
`serving_history.history_features`), kept as sums so that a request's own recent ratings can be added.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from transform import features as f


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """Arrays indexed by movie (m) and user (u); strings as numpy object arrays."""

    now: int  # the newest timestamp; requests are scored one second later
    genres: tuple[str, ...]  # the genre axis (g) of the per-genre arrays
    movie_ids: np.ndarray  # [m] str, sorted
    titles: np.ndarray  # [m] str
    release_years: np.ndarray  # [m] int64 (features.RELEASE_YEAR_UNKNOWN when unknown)
    movie_genres: np.ndarray  # [m, g] float32 0/1
    movie_counts: np.ndarray  # [m] int64 ratings of the movie
    movie_sums: np.ndarray  # [m] float32
    recent_raters: np.ndarray  # [m, MAX_PRIOR_RATERS] int64 user index, oldest first, -1 after the end
    recent_rater_ratings: np.ndarray  # [m, MAX_PRIOR_RATERS] float32, 0 after the end
    user_ids: np.ndarray  # [u] str, sorted
    ages: np.ndarray | None  # [u] int64; these four are None in releases without a users file
    genders: np.ndarray | None  # [u] str
    occupations: np.ndarray | None  # [u] str
    zips: np.ndarray | None  # [u] str
    counts: np.ndarray  # [u] float32: the user's ratings, their sum and sum of squares
    sums: np.ndarray
    squares: np.ndarray
    genre_counts: np.ndarray  # [u, g] float32: ratings of movies of each genre, and their sum
    genre_sums: np.ndarray
    last_timestamps: np.ndarray  # [u] int64
    offset_counts: np.ndarray  # [u] float32 (see history.UserHistory.offset_*)
    offset_sums: np.ndarray
    recent_movies: np.ndarray  # [u, MAX_PRIOR_MOVIES] int64 movie index, oldest first, -1 after the end
    recent_ratings: np.ndarray  # [u, MAX_PRIOR_MOVIES] float32, 0 after the end
    rated_splits: np.ndarray  # [u + 1] int64: user i rated movies rated_values[splits[i]:splits[i + 1]]
    rated_values: np.ndarray  # [ratings] int64 movie index, oldest first
    rated_ratings: np.ndarray  # [ratings] float32, the ratings given

    @property
    def request_time(self) -> int:
        return self.now + 1

    def nbytes(self) -> int:
        """Bytes of the arrays (what the snapshot adds to a SavedModel, strings at their UTF-8 length)."""
        total = 0
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, np.ndarray):
                total += sum(len(str(v).encode()) for v in value.ravel()) if value.dtype == object else value.nbytes
        return total


def build(rows: dict[str, np.ndarray], genre_lists: list[tuple[str, ...]]) -> Snapshot:
    """The snapshot of a set of ratings.

    Args:
      rows: one array per raw feature of features.PASSTHROUGH_FEATURES plus features.RATING, one entry per
        rating (strings as str or bytes); without features.USER_ATTRIBUTES in releases lacking them.
      genre_lists: each rating's movie genres.
    """
    names = (f.USER_ID, f.MOVIE_ID, f.MOVIE_TITLE, f.USER_GENDER, f.USER_OCCUPATION, f.USER_ZIP)
    strings = {name: text(rows[name]) for name in f.present(names, rows)}
    attributes = f.USER_AGE in rows
    if not len(strings[f.USER_ID]):
        raise ValueError("no ratings to build the recommender's snapshot from")
    rating = np.asarray(rows[f.RATING], np.float64).reshape(-1)
    timestamp = np.asarray(rows[f.TIMESTAMP], np.int64).reshape(-1)
    genres = tuple(sorted({g for gs in genre_lists for g in gs}))
    genre_index = {g: i for i, g in enumerate(genres)}

    movie_ids, movie_of = np.unique(strings[f.MOVIE_ID], return_inverse=True)
    first = _first_index(movie_of, len(movie_ids))
    movie_genres = np.zeros((len(movie_ids), len(genres)), np.float32)
    for m, row in enumerate(first):
        movie_genres[m, [genre_index[g] for g in genre_lists[row]]] = 1.0

    user_ids, user_of = np.unique(strings[f.USER_ID], return_inverse=True)
    users = len(user_ids)
    first_user = _first_index(user_of, users)
    # Each user's ratings in history order: by time, ties by movie id (history._by_second).
    order = np.lexsort((movie_of, timestamp, user_of))  # movie_of sorts as the ids do
    splits = np.searchsorted(user_of[order], np.arange(users + 1))
    prior_count = np.asarray(rows[f.MOVIE_PRIOR_COUNT], np.float64).reshape(-1)
    prior_sum = np.asarray(rows[f.MOVIE_PRIOR_RATING_SUM], np.float64).reshape(-1)
    has_prior = prior_count > 0
    offset = np.where(has_prior, rating - prior_sum / np.maximum(prior_count, 1), 0.0)
    rating_genres = movie_genres[movie_of]

    recent_movies, recent_ratings = _latest(order, splits, movie_of, rating, f.MAX_PRIOR_MOVIES)
    # Each movie's ratings in history order: by time, ties by user id (history.movie_histories).
    movie_order = np.lexsort((user_of, timestamp, movie_of))
    movie_splits = np.searchsorted(movie_of[movie_order], np.arange(len(movie_ids) + 1))
    recent_raters, recent_rater_ratings = _latest(movie_order, movie_splits, user_of, rating, f.MAX_PRIOR_RATERS)

    def per_user(values: np.ndarray) -> np.ndarray:
        return np.bincount(user_of, weights=values, minlength=users).astype(np.float32)

    return Snapshot(
        now=int(timestamp.max()),
        genres=genres,
        movie_ids=movie_ids.astype(object),
        titles=strings[f.MOVIE_TITLE][first],
        release_years=np.asarray(rows[f.MOVIE_RELEASE_YEAR], np.int64).reshape(-1)[first],
        movie_genres=movie_genres,
        movie_counts=np.bincount(movie_of, minlength=len(movie_ids)).astype(np.int64),
        movie_sums=np.bincount(movie_of, weights=rating, minlength=len(movie_ids)).astype(np.float32),
        recent_raters=recent_raters,
        recent_rater_ratings=recent_rater_ratings,
        user_ids=user_ids.astype(object),
        ages=np.asarray(rows[f.USER_AGE], np.int64).reshape(-1)[first_user] if attributes else None,
        genders=strings[f.USER_GENDER][first_user] if attributes else None,
        occupations=strings[f.USER_OCCUPATION][first_user] if attributes else None,
        zips=strings[f.USER_ZIP][first_user] if attributes else None,
        counts=per_user(np.ones_like(rating)),
        sums=per_user(rating),
        squares=per_user(rating * rating),
        genre_counts=np.stack([per_user(rating_genres[:, g]) for g in range(len(genres))], 1).reshape(users, -1),
        genre_sums=np.stack([per_user(rating_genres[:, g] * rating) for g in range(len(genres))], 1).reshape(users, -1),
        last_timestamps=np.maximum.reduceat(timestamp[order], splits[:-1]).astype(np.int64),
        offset_counts=per_user(has_prior.astype(np.float64)),
        offset_sums=per_user(offset),
        recent_movies=recent_movies,
        recent_ratings=recent_ratings,
        rated_splits=splits.astype(np.int64),
        rated_values=movie_of[order].astype(np.int64),
        rated_ratings=rating[order].astype(np.float32),
    )


def _latest(
    order: np.ndarray, splits: np.ndarray, ids: np.ndarray, rating: np.ndarray, length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per group of `order` (split at `splits`): its last `length` rows' `ids` and ratings, oldest first, padded."""
    groups = len(splits) - 1
    latest_ids, latest_ratings = np.full((groups, length), -1, np.int64), np.zeros((groups, length), np.float32)
    for group in range(groups):
        last = order[splits[group] : splits[group + 1]][-length:]
        latest_ids[group, : len(last)] = ids[last]
        latest_ratings[group, : len(last)] = rating[last]
    return latest_ids, latest_ratings


def text(values: np.ndarray) -> np.ndarray:
    """Strings (str or UTF-8 bytes) → a numpy object array of str."""
    flat = np.asarray(values).reshape(-1)
    return np.array([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in flat], dtype=object)


def _first_index(group_of: np.ndarray, groups: int) -> np.ndarray:
    """For each group, the index of its first row."""
    first = np.full(groups, -1, np.int64)
    rows = np.arange(len(group_of))[::-1]
    first[group_of[::-1]] = rows
    return first
