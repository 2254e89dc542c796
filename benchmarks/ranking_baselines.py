"""Top-K reference recommenders for benchmarks/benchmark.py (numpy only): most popular and a SAR-like
item-item co-occurrence model. Both exclude each user's training movies, like `recommend`."""

from __future__ import annotations

import numpy as np


def _index(train: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    users, user_of = np.unique(train[:, 0], return_inverse=True)
    movies, movie_of = np.unique(train[:, 1], return_inverse=True)
    return users, user_of, movies, movie_of


def _top(scores: np.ndarray, seen: np.ndarray, k: int) -> np.ndarray:
    scores = np.where(seen, -np.inf, scores)
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def most_popular(train: np.ndarray, users: list[int], k: int = 10) -> dict[int, list[int]]:
    """The k most-rated training movies each user has not rated."""
    known, user_of, movies, movie_of = _index(train)
    seen = np.zeros((len(known), len(movies)), bool)
    seen[user_of, movie_of] = True
    counts = np.bincount(movie_of, minlength=len(movies)).astype(float)
    return _lists(users, known, movies, _top(np.tile(counts, (len(known), 1)), seen, k), counts, k)


def sar(train: np.ndarray, users: list[int], k: int = 10) -> dict[int, list[int]]:
    """SAR-like: user affinity (1 per rated movie) × item-item Jaccard similarity of co-rating."""
    known, user_of, movies, movie_of = _index(train)
    rated = np.zeros((len(known), len(movies)), np.float32)
    rated[user_of, movie_of] = 1.0
    together = rated.T @ rated
    counts = np.diag(together)
    jaccard = together / np.maximum(counts[:, None] + counts[None, :] - together, 1.0)
    return _lists(users, known, movies, _top(rated @ jaccard, rated > 0, k), counts, k)


def _lists(users, known, movies, top, counts, k) -> dict[int, list[int]]:
    """Each user's list (a user unseen in training gets the most popular movies)."""
    row = {int(u): i for i, u in enumerate(known)}
    popular = [int(movies[i]) for i in np.argsort(-counts, kind="stable")[:k]]
    return {int(u): [int(movies[i]) for i in top[row[int(u)]]] if int(u) in row else popular for u in users}
