"""Top-K reference recommenders for benchmarks/benchmark.py (numpy only): most popular, a SAR-like item-item
co-occurrence model (Jaccard), item-kNN (cosine) and EASE (Steck 2019: a closed-form item-item linear model).
Each excludes the user's training movies, like `recommend`; a user unseen in training gets the most popular."""

from __future__ import annotations

import numpy as np


def _index(train: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    users, user_of = np.unique(train[:, 0], return_inverse=True)
    movies, movie_of = np.unique(train[:, 1], return_inverse=True)
    return users, user_of, movies, movie_of


def _rated(train: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user ids, movie ids, the users × movies 0/1 matrix of who rated what)."""
    known, user_of, movies, movie_of = _index(train)
    rated = np.zeros((len(known), len(movies)), np.float64)
    rated[user_of, movie_of] = 1.0
    return known, movies, rated


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
    known, movies, rated = _rated(train)
    together = rated.T @ rated
    counts = np.diag(together)
    jaccard = together / np.maximum(counts[:, None] + counts[None, :] - together, 1.0)
    return _lists(users, known, movies, _top(rated @ jaccard, rated > 0, k), counts, k)


def _lists(users, known, movies, top, counts, k) -> dict[int, list[int]]:
    """Each user's list (a user unseen in training gets the most popular movies)."""
    row = {int(u): i for i, u in enumerate(known)}
    popular = [int(movies[i]) for i in np.argsort(-counts, kind="stable")[:k]]
    return {int(u): [int(movies[i]) for i in top[row[int(u)]]] if int(u) in row else popular for u in users}


def item_knn(train: np.ndarray, users: list[int], k: int = 10) -> dict[int, list[int]]:
    """Item-kNN: user affinity (1 per rated movie) × cosine similarity of the movies' rater sets."""
    known, movies, rated = _rated(train)
    together = rated.T @ rated
    counts = np.diag(together).copy()
    cosine = together / np.sqrt(np.maximum(np.outer(counts, counts), 1.0))
    np.fill_diagonal(cosine, 0.0)
    return _lists(users, known, movies, _top(rated @ cosine, rated > 0, k), counts, k)


def ease_weights(rated: np.ndarray, regularization: float) -> np.ndarray:
    """EASE's item-item matrix B = argmin ||X - XB||² + λ||B||² with diag(B) = 0, in closed form:
    P = (XᵀX + λI)⁻¹, B = -P / diag(P), diag(B) = 0."""
    gram = rated.T @ rated + regularization * np.eye(rated.shape[1])
    inverse = np.linalg.inv(gram)
    weights = -inverse / np.diag(inverse)[None, :]
    np.fill_diagonal(weights, 0.0)
    return weights


def ease(train: np.ndarray, users: list[int], k: int = 10, regularization: float = 500.0) -> dict[int, list[int]]:
    """EASE with regularisation λ = `regularization` (choose it on eval: `choose_ease_regularization`)."""
    known, movies, rated = _rated(train)
    scores = rated @ ease_weights(rated, regularization)
    return _lists(users, known, movies, _top(scores, rated > 0, k), rated.sum(axis=0), k)


EASE_REGULARIZATIONS = (50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0)


def choose_ease_regularization(
    train: np.ndarray, held_out: np.ndarray, score, grid: tuple[float, ...] = EASE_REGULARIZATIONS, k: int = 10
) -> tuple[float, dict[float, float]]:
    """The λ of `grid` whose lists, fitted on `train`, score best on `held_out` ratings (score(lists, relevant)
    → a number, e.g. NDCG@k); with every λ's figure."""
    relevant: dict[int, set[int]] = {}
    for user, movie in held_out[:, :2]:
        relevant.setdefault(int(user), set()).add(int(movie))
    figures = {
        regularization: score(ease(train, list(relevant), k, regularization), relevant) for regularization in grid
    }
    return max(figures, key=figures.get), figures
