"""The top-K references of benchmarks/ranking_baselines.py (EASE, item-kNN) and the three-way split their
choices are made on (benchmarks/baselines.py)."""

import functools
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is scripts, not an installed package
from benchmarks import baselines, ranking_baselines  # noqa: E402


def planted(users: int = 60, seed: int = 0) -> np.ndarray:
    """Movies 1 and 2 are rated together by a quarter of the users; each user rates 3 of movies 3..11 at random
    (each of them more popular than the pair)."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(1, users + 1):
        movies = set(rng.choice(np.arange(3, 12), 3, replace=False).tolist())
        if user <= users // 4:
            movies |= {1, 2}
        rows += [[user, movie, 4, user * 100 + i] for i, movie in enumerate(sorted(movies))]
    return np.array(rows, np.int64)


@pytest.mark.parametrize(
    "recommend", [functools.partial(ranking_baselines.ease, regularization=10.0), ranking_baselines.item_knn]
)
def test_a_user_holding_one_movie_of_a_planted_pair_gets_the_other_first(recommend):
    train = planted()
    holder = train[(train[:, 0] == 1) & (train[:, 1] != 2)]  # user 1 without movie 2
    train = np.concatenate([train[train[:, 0] != 1], holder])
    lists = recommend(train, [1, 999], 3)
    assert lists[1][0] == 2 and ranking_baselines.most_popular(train, [1], 3)[1][0] != 2  # not by popularity
    assert not set(lists[1]) & set(holder[:, 1].tolist())  # movies already rated never appear
    assert lists[999] == ranking_baselines.most_popular(train, [999], 3)[999]  # unknown user: most popular


def test_ease_weights_solve_the_regularised_least_squares_with_a_zero_diagonal():
    rated = (np.random.default_rng(1).random((40, 12)) < 0.3).astype(float)
    weights = ranking_baselines.ease_weights(rated, 5.0)
    assert np.allclose(np.diag(weights), 0.0)
    # Column j: argmin ||x_j - X b||² + λ||b||² over b with b_j = 0 (the other columns' ridge regression).
    for j in (0, 7):
        others = np.delete(np.arange(12), j)
        x = rated[:, others]
        ridge = np.linalg.solve(x.T @ x + 5.0 * np.eye(11), x.T @ rated[:, j])
        assert np.allclose(weights[others, j], ridge)


def test_the_regularization_is_the_grids_best_on_the_held_out_ratings():
    data = planted()
    held = data[:, 1] == 2  # every movie-2 rating is held out: the planted pair decides
    seen = []

    def score(lists, relevant):
        seen.append(relevant)
        return float(np.mean([len(set(lists[u]) & relevant[u]) for u in relevant]))

    chosen, figures = ranking_baselines.choose_ease_regularization(data[~held], data[held], score, (1.0, 1e6))
    assert set(figures) == {1.0, 1e6} and figures[chosen] == max(figures.values())
    assert all(relevant == {u: {2} for u in range(1, 16)} for relevant in seen)  # scored on held-out only


def test_the_three_way_split_holds_examplegens_eval_inside_the_non_test_ratings(tmp_path):
    rng = np.random.default_rng(2)
    data = np.stack([rng.integers(1, 30, 900), rng.integers(1, 50, 900), rng.integers(1, 6, 900),
                     rng.integers(0, 10**6, 900)], axis=1)  # fmt: skip
    data = data[np.unique(data[:, [0, 1]], axis=0, return_index=True)[1]]
    np.savetxt(tmp_path / "u.data", data, fmt="%d", delimiter="\t")
    np.savetxt(tmp_path / "u1.base", data[:-150], fmt="%d", delimiter="\t")
    np.savetxt(tmp_path / "u1.test", data[-150:], fmt="%d", delimiter="\t")
    references = {
        "time": baselines.time_split(data),
        "stratified": baselines.stratified_split(data, 43),
        "u1": (data[:-150], data[-150:]),
    }
    keys = lambda rows: {tuple(r) for r in rows.tolist()}  # noqa: E731
    for protocol, (non_test, test_reference) in references.items():
        train, held_out, test = baselines.three_way_split(tmp_path, protocol, 43)
        assert keys(test) == keys(test_reference)  # the test ratings the reference models are scored on
        assert keys(train) | keys(held_out) == keys(non_test) and not keys(train) & keys(held_out)
        assert 0.05 * len(data) < len(held_out) < 0.3 * len(data), protocol
