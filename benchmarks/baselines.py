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


def time_split(ratings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Train+eval (oldest 80% of the time range) and test, with ExampleGen's own rule."""
    split = movielens.TimeSplit(("train", "eval", "test"), (0.6, 0.2, 0.2))
    lo, hi = int(ratings[:, 3].min()), int(ratings[:, 3].max())
    index = np.array([split.index(int(t), lo, hi) for t in ratings[:, 3]])
    return ratings[index < 2], ratings[index == 2]


def stratified_split(ratings: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train+eval, test) of the per-user stratified protocol: the very rows ExampleGen draws with `seed`."""
    test = np.zeros(len(ratings), bool)
    for user in np.unique(ratings[:, 0]):
        rows = np.flatnonzero(ratings[:, 0] == user)
        by_key = {(str(u), str(m), int(t)): i for i, (u, m, _, t) in zip(rows, ratings[rows], strict=True)}
        events = [movielens.Rating(u, m, 0.0, t) for u, m, t in by_key]
        for rating, index in movielens.stratified_indices(events, splits.STRATIFIED_FRACTIONS, seed):
            test[by_key[rating.key]] = index == 2
    return ratings[~test], ratings[test]


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
