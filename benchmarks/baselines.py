"""Reference baselines and the protocols' splits for benchmarks/benchmark.py (numpy only).

The splits follow ExampleGen's own rules (components/example_gen/splits.py), so a reference
model and the pipeline see the same test ratings for the same protocol and seed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # movielens imports TensorFlow (for tf.train.Example)
from components.example_gen import movielens, splits  # noqa: E402


def load(directory: Path, name: str = movielens.RATINGS_FILE) -> np.ndarray:
    """[n, 4] int array: user, movie, rating, timestamp."""
    return np.loadtxt(directory / name, dtype=np.int64, delimiter="\t").reshape(-1, 4)


def time_split_index(ratings: np.ndarray) -> np.ndarray:
    """Each rating's split under ExampleGen's time rule: 0 train, 1 eval, 2 test."""
    split = movielens.TimeSplit(("train", "eval", "test"), (0.6, 0.2, 0.2))
    lo, hi = int(ratings[:, 3].min()), int(ratings[:, 3].max())
    return np.array([split.index(int(t), lo, hi) for t in ratings[:, 3]])


def time_split(ratings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Train+eval (oldest 80% of the time range) and test, with ExampleGen's own rule."""
    index = time_split_index(ratings)
    return ratings[index < 2], ratings[index == 2]


def stratified_split_index(ratings: np.ndarray, seed: int) -> np.ndarray:
    """Each rating's split under the per-user stratified protocol with `seed`: 0 train, 1 eval, 2 test."""
    split = np.zeros(len(ratings), np.int64)
    for user in np.unique(ratings[:, 0]):
        rows = np.flatnonzero(ratings[:, 0] == user)
        by_key = {(str(u), str(m), int(t)): i for i, (u, m, _, t) in zip(rows, ratings[rows], strict=True)}
        events = [movielens.Rating(u, m, 0.0, t) for u, m, t in by_key]
        for rating, index in movielens.stratified_indices(events, splits.STRATIFIED_FRACTIONS, seed):
            split[by_key[rating.key]] = index
    return split


def stratified_split(ratings: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train+eval, test) of the per-user stratified protocol: the very rows ExampleGen draws with `seed`."""
    test = stratified_split_index(ratings, seed) == 2
    return ratings[~test], ratings[test]


def three_way_split(directory: Path, protocol: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, eval, test) of one protocol and seed, with ExampleGen's rules: what a reference model's choices
    (a regularisation, a neighbourhood size) are made on (eval) before it refits on train + eval for test."""
    if protocol in splits.FOLDS:
        base, test = load(directory, f"{protocol}.base"), load(directory, f"{protocol}.test")
        index = np.array(  # no base rating is in the fold's test: no test keys
            [movielens.fold_index(movielens.Rating(str(u), str(m), 0.0, int(t)), (), seed) for u, m, _, t in base]
        )
        return base[index == 0], base[index == 1], test
    ratings = load(directory)
    index = time_split_index(ratings) if splits.by_time(protocol) else stratified_split_index(ratings, seed)
    return ratings[index == 0], ratings[index == 1], ratings[index == 2]


def fit_biases(train: np.ndarray, reg_user: float = 5.0, reg_movie: float = 10.0, iterations: int = 15):
    """mu, user bias dict, movie bias dict by alternating regularised least squares."""
    mu = train[:, 2].mean()
    users, user_index = np.unique(train[:, 0], return_inverse=True)
    movies, movie_index = np.unique(train[:, 1], return_inverse=True)
    b_user, b_movie = np.zeros(len(users)), np.zeros(len(movies))
    residual = train[:, 2] - mu
    for _ in range(iterations):
        b_movie = np.bincount(movie_index, residual - b_user[user_index], len(movies)) / (
            np.bincount(movie_index, minlength=len(movies)) + reg_movie
        )
        b_user = np.bincount(user_index, residual - b_movie[movie_index], len(users)) / (
            np.bincount(user_index, minlength=len(users)) + reg_user
        )
    return mu, dict(zip(users, b_user, strict=True)), dict(zip(movies, b_movie, strict=True))


def online_biases(ratings: np.ndarray, reg_user: float, reg_movie: float) -> np.ndarray:
    """Each rating's prediction by user + movie biases fitted on every rating strictly before it (the
    "online" regime: what a live system knows), in one pass over time, O(n).

    The mean, and each movie's and user's shrunk sums of residuals, are running sums; a rating's
    residual is taken against the estimates of its time (no refit of the past: that is what keeps it one
    pass). Ratings in the same second are predicted before any of them is counted.
    """
    order = np.lexsort((ratings[:, 1], ratings[:, 0], ratings[:, 3]))
    total = count = 0.0
    movie_sum: dict[int, float] = {}
    movie_count: dict[int, int] = {}
    user_sum: dict[int, float] = {}
    user_count: dict[int, int] = {}
    predictions = np.empty(len(ratings))
    pending: list[tuple[int, int, int, float]] = []  # (row, user, movie, rating) of the current second
    second = None

    def estimate(user: int, movie: int) -> tuple[float, float, float]:
        mu = total / count if count else 3.5
        b_movie = movie_sum.get(movie, 0.0) / (movie_count.get(movie, 0) + reg_movie)
        b_user = user_sum.get(user, 0.0) / (user_count.get(user, 0) + reg_user)
        return mu, b_movie, b_user

    def learn() -> None:
        nonlocal total, count
        for _, user, movie, rating in pending:
            mu, b_movie, _ = estimate(user, movie)
            movie_sum[movie] = movie_sum.get(movie, 0.0) + rating - mu
            movie_count[movie] = movie_count.get(movie, 0) + 1
            user_sum[user] = user_sum.get(user, 0.0) + rating - mu - b_movie
            user_count[user] = user_count.get(user, 0) + 1
        for _, _, _, rating in pending:
            total += rating
            count += 1
        pending.clear()

    for row in order:
        user, movie, rating, timestamp = (int(x) for x in ratings[row])
        if timestamp != second:
            learn()
            second = timestamp
        predictions[row] = sum(estimate(user, movie))
        pending.append((row, user, movie, float(rating)))
    return predictions


ONLINE_SHRINKAGE = (2.0, 5.0, 10.0, 25.0, 50.0)


def online_biases_time_split(ratings: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """(predictions of time_split's test rows, in its order; the (user, movie) shrinkage chosen on the eval
    period) of online biases: shrinkage picked by RMSE on eval ratings, then one pass over everything."""
    index = time_split_index(ratings)
    known = ratings[index < 2]
    eval_rows = index[index < 2] == 1
    best = None
    for reg_user in ONLINE_SHRINKAGE:
        for reg_movie in ONLINE_SHRINKAGE:
            predicted = np.clip(online_biases(known, reg_user, reg_movie)[eval_rows], 1, 5)
            error = float(np.sqrt(np.mean((predicted - known[eval_rows, 2]) ** 2)))
            if best is None or error < best[0]:
                best = (error, reg_user, reg_movie)
    _, reg_user, reg_movie = best
    return online_biases(ratings, reg_user, reg_movie)[index == 2], (reg_user, reg_movie)
