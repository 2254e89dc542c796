"""Split protocols (pure functions): per-user stratified draws, uK folds, hidden test ratings."""

import random

import pytest

from components.example_gen import history, movielens, splits
from components.example_gen.history import MovieHistory
from components.example_gen.movielens import Rating
from pipeline.config import PipelineConfig


def _ratings(user: str, n: int) -> list[Rating]:
    return [Rating(user, str(m), float(1 + m % 5), 1000 + m // 3) for m in range(n)]  # same-second triples


@pytest.mark.parametrize("n", [1, 4, 20, 37, 200])
def test_stratified_gives_each_split_its_rounded_share_per_user(n):
    indexed = movielens.stratified_indices(_ratings("u", n), splits.STRATIFIED_FRACTIONS, seed=1)
    counts = [sum(1 for _, i in indexed if i == k) for k in range(3)]
    assert counts[2] == round(0.25 * n) and counts[1] == round(0.10 * n) and sum(counts) == n
    assert sorted(r.key for r, _ in indexed) == sorted(r.key for r in _ratings("u", n))


def test_stratified_is_deterministic_in_any_order_and_changes_with_the_seed():
    ratings = _ratings("u", 60)
    reference = sorted(movielens.stratified_indices(ratings, splits.STRATIFIED_FRACTIONS, seed=1), key=str)
    shuffled = ratings[:]
    random.Random(0).shuffle(shuffled)
    assert sorted(movielens.stratified_indices(shuffled, splits.STRATIFIED_FRACTIONS, seed=1), key=str) == reference
    other = sorted(movielens.stratified_indices(ratings, splits.STRATIFIED_FRACTIONS, seed=2), key=str)
    assert other != reference


def test_fold_index_puts_listed_ratings_in_test_and_a_tenth_of_the_rest_in_eval():
    ratings = [Rating(str(u), str(m), 3.0, 100 + m) for u in range(30) for m in range(100)]
    listed = {r.key for r in ratings[::5]}
    indices = [movielens.fold_index(r, listed, seed=0) for r in ratings]
    assert [i == 2 for i in indices] == [r.key in listed for r in ratings]
    rest = [i for i in indices if i != 2]
    assert abs(rest.count(1) / len(rest) - splits.FOLD_EVAL_FRACTION) < 0.02
    assert indices == [movielens.fold_index(r, listed, seed=0) for r in ratings]  # a hash, not random state


def test_hidden_ratings_get_a_history_but_feed_none():
    events = [
        (Rating("u", "a", 5.0, 100), ("Drama",), MovieHistory()),
        (Rating("u", "b", 1.0, 200), ("Drama",), MovieHistory(1, 4.0)),  # hidden (a test rating)
        (Rating("u", "c", 3.0, 300), ("Drama",), MovieHistory()),
    ]
    hidden = {events[1][0].key}
    histories = {r.movie_id: h for r, h in history.user_histories(events, hidden)}
    assert histories["b"].count == 1 and histories["b"].movies == ("a",)  # b itself sees a
    assert histories["c"].count == 1 and histories["c"].movies == ("a",) and histories["c"].rating_sum == 5.0
    assert histories["c"].offset_count == 0  # a's movie had no earlier rating; b is hidden
    assert histories["c"].seconds_since_last == 200  # since a, the last rating it may know of: b is hidden
    # A rating whose only earlier ratings are hidden knows of none: not even when the last one was.
    first_hidden = {events[0][0].key}
    alone = {r.movie_id: h for r, h in history.user_histories(events[:2], first_hidden)}
    assert alone["b"].count == 0 and alone["b"].seconds_since_last == -1
    movie = [Rating("x", "m", 4.0, 1), Rating("y", "m", 2.0, 2), Rating("z", "m", 5.0, 3)]
    by_user = {r.user_id: h for r, h in history.movie_histories(movie, {movie[1].key})}
    assert by_user["z"] == MovieHistory(1, 4.0, ("x",), (4.0,))  # y is hidden: neither counted nor listed


def test_only_random_protocols_hide_test_and_unknown_ones_are_refused():
    assert not splits.hides_test(splits.TIME)
    assert all(splits.hides_test(p) for p in (splits.TIME_FROZEN, splits.STRATIFIED, *splits.FOLDS))
    assert [p for p in splits.PROTOCOLS if splits.by_time(p)] == [splits.TIME, splits.TIME_FROZEN]
    with pytest.raises(ValueError, match="unknown split protocol 'u6'"):
        PipelineConfig(pipeline_root="/r", data_dir="/d", serving_dir="/s", split_protocol="u6")
