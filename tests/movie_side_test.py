"""The movie-side variant's histories (benchmarks/movie_side.py): a movie's earlier raters, point in time."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is scripts, not an installed package
from benchmarks import movie_side  # noqa: E402


def test_by_hand():
    # movie, user, rating, second: user 7 first; users 8 and 9 in the same later second; a hidden rating by 6.
    movie = np.array([1, 1, 1, 1, 2])
    user = np.array([7, 8, 9, 6, 7])
    rating = np.array([5.0, 3.0, 4.0, 1.0, 2.0])
    second = np.array([0, 10, 10, 5, 3])
    hidden = np.array([False, False, False, True, False])
    raters, deviations = movie_side.rater_histories(movie, user, rating, second, hidden, mean=3.0)
    assert (raters[0] == -1).all()  # nobody before
    assert list(raters[1, :2]) == [7, -1] and list(raters[2, :2]) == [7, -1]  # the same second is not "before"
    assert deviations[1, 0] == 5.0 - 3.0  # the movie's mean before user 7: the prior (3.0) alone
    assert list(raters[3, :2]) == [7, -1]  # a hidden rating gets a history ...
    assert (raters[4] == -1).all()  # ... but is never part of one; other movies' raters are not either


def test_a_history_never_holds_its_own_second_or_later_and_keeps_the_latest():
    rng = np.random.default_rng(0)
    n = 3000
    movie, user = rng.integers(0, 5, n), rng.integers(0, 400, n)
    rating, second = rng.integers(1, 6, n).astype(float), rng.integers(0, 1000, n)
    hidden = np.zeros(n, bool)
    before = movie_side.rater_histories(movie, user, rating, second, hidden, 3.5)
    changed = rating.copy()
    changed[second >= 500] = 6 - changed[second >= 500]
    after = movie_side.rater_histories(movie, user, changed, second, hidden, 3.5)
    early = second <= 500
    assert np.array_equal(before[1][early], after[1][early])
    assert (before[1][~early] != after[1][~early]).any(axis=1).mean() > 0.9  # the test can fail
    last = int(np.argmax(second))  # a late rating: its movie's 50 latest earlier raters, oldest first
    earlier = np.flatnonzero((movie == movie[last]) & (second < second[last]))
    earlier = earlier[np.lexsort((user[earlier], second[earlier]))][-movie_side.MAX_RATERS :]
    assert list(before[0][last]) == list(user[earlier])
