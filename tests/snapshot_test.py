"""The recommender's snapshot equals what ExampleGen's history code computes one second after the newest rating."""

import random

import numpy as np
import pytest

from components.example_gen.serving_history import EarlierRating, history_features
from components.trainer import snapshot
from transform import features as f

GENRES = ("Action", "Comedy", "Drama", "Western")


def _ratings(seed: int = 3):
    """Ratings of 6 users × 30 movies (some in the same second), with each movie's earlier ratings."""
    rng = random.Random(seed)
    movie_genres = {str(m): tuple(sorted(rng.sample(GENRES, rng.randint(1, 2)))) for m in range(1, 31)}
    rows, seen = [], set()
    for _ in range(150):
        user, movie = str(rng.randint(1, 6)), str(rng.randint(1, 30))
        if (user, movie) in seen:
            continue
        seen.add((user, movie))
        rows.append((user, movie, float(rng.randint(1, 5)), 1_000_000 + rng.randint(0, 40) * 60))
    # Each rating's movie history: that movie's ratings strictly earlier (as ExampleGen writes it).
    history = {}
    for user, movie, _value, at in rows:
        earlier = [v for u, m, v, t in rows if m == movie and t < at]
        history[(user, movie)] = (len(earlier), float(sum(earlier)))
    return rows, movie_genres, history


def _build(rows, movie_genres, history):
    columns = {
        f.USER_ID: np.array([r[0] for r in rows], object),
        f.MOVIE_ID: np.array([r[1] for r in rows], object),
        f.RATING: np.array([r[2] for r in rows]),
        f.TIMESTAMP: np.array([r[3] for r in rows]),
        f.USER_AGE: np.full(len(rows), 30),
        f.USER_GENDER: np.array(["F"] * len(rows), object),
        f.USER_OCCUPATION: np.array(["writer"] * len(rows), object),
        f.USER_ZIP: np.array(["55414"] * len(rows), object),
        f.MOVIE_TITLE: np.array([f"Movie {r[1]}" for r in rows], object),
        f.MOVIE_RELEASE_YEAR: np.full(len(rows), 1990),
        f.MOVIE_PRIOR_COUNT: np.array([history[r[:2]][0] for r in rows]),
        f.MOVIE_PRIOR_RATING_SUM: np.array([history[r[:2]][1] for r in rows]),
    }
    return snapshot.build(columns, [movie_genres[r[1]] for r in rows])


@pytest.mark.parametrize("candidate_genres", [("Drama",), ("Action", "Western")])
def test_every_users_state_matches_the_history_features_of_a_request_after_the_newest_rating(candidate_genres):
    rows, movie_genres, history = _ratings()
    state = _build(rows, movie_genres, history)
    assert state.request_time == max(r[3] for r in rows) + 1
    assert list(state.movie_ids) == sorted({r[1] for r in rows})
    for u, user in enumerate(state.user_ids):
        mine = [r for r in rows if r[0] == user]
        expected = history_features(
            [EarlierRating(m, v, t, movie_genres[m], *history[(user, m)]) for _, m, v, t in mine],
            state.request_time,
            candidate_genres,
        )
        listed = [state.movie_ids[i] for i in state.recent_movies[u] if i >= 0]
        assert tuple(listed) == expected[f.USER_PRIOR_MOVIES]
        n = len(listed)
        assert tuple(state.recent_ratings[u, :n]) == expected[f.USER_PRIOR_MOVIE_RATINGS]
        assert state.counts[u] == expected[f.USER_PRIOR_COUNT]
        assert state.sums[u] == pytest.approx(expected[f.USER_PRIOR_RATING_SUM])
        assert state.squares[u] == pytest.approx(expected[f.USER_PRIOR_RATING_SQ_SUM])
        mask = np.array([g in candidate_genres for g in state.genres], np.float32)
        assert state.genre_counts[u] @ mask == expected[f.USER_PRIOR_GENRE_COUNT]
        assert state.genre_sums[u] @ mask == pytest.approx(expected[f.USER_PRIOR_GENRE_RATING_SUM])
        assert state.request_time - state.last_timestamps[u] == expected[f.USER_SECONDS_SINCE_LAST]
        assert state.offset_counts[u] == expected[f.USER_PRIOR_OFFSET_COUNT]
        assert state.offset_sums[u] == pytest.approx(expected[f.USER_PRIOR_OFFSET_SUM], abs=1e-5)
        rated = state.rated_values[state.rated_splits[u] : state.rated_splits[u + 1]]
        assert sorted(state.movie_ids[rated]) == sorted(m for _, m, _, _ in mine)


def test_every_movies_raters_match_the_history_features_of_a_request_after_the_newest_rating():
    rows, movie_genres, history = _ratings()
    state = _build(rows, movie_genres, history)
    for m, movie in enumerate(state.movie_ids):
        ratings = [(u, v, t) for u, mm, v, t in rows if mm == movie]
        expected = history_features([], state.request_time, movie_ratings=ratings)
        listed = [state.user_ids[i] for i in state.recent_raters[m] if i >= 0]
        assert tuple(listed) == expected[f.MOVIE_PRIOR_RATERS]
        assert tuple(state.recent_rater_ratings[m, : len(listed)]) == expected[f.MOVIE_PRIOR_RATER_RATINGS]
        assert (state.movie_counts[m], state.movie_sums[m]) == (
            expected[f.MOVIE_PRIOR_COUNT], pytest.approx(expected[f.MOVIE_PRIOR_RATING_SUM])
        )  # fmt: skip


def test_the_list_keeps_the_last_50_ratings_oldest_first_and_movies_their_counts():
    rows = [("7", str(m), 1.0 + m % 5, 1_000 + m) for m in range(60)]
    state = _build(rows, {str(m): ("Drama",) for m in range(60)}, {r[:2]: (0, 0.0) for r in rows})
    assert [state.movie_ids[i] for i in state.recent_movies[0]] == [str(m) for m in range(10, 60)]
    assert state.counts[0] == 60 and state.offset_counts[0] == 0
    assert state.movie_counts.tolist() == [1] * 60 and state.genres == ("Drama",)


def test_no_ratings_is_an_error():
    with pytest.raises(ValueError, match="no ratings"):
        snapshot.build({name: np.array([]) for name in (*f.PASSTHROUGH_FEATURES, f.RATING)}, [])
