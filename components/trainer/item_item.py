"""The item-item scorer: EASE (Steck 2019) learned from who rated what, kept as each movie's top neighbours.

EASE fits B = argmin ||X - XB||² + λ||B||² with diag(B) = 0 over the binary users × movies matrix X of the
ratings the Trainer read, in closed form: P = (XᵀX + λI)⁻¹, B = -P / diag(P). A user who rated the movies
R scores movie j as Σ_{i∈R} B[i, j]. `recommend` computes that sum from a sparse copy: for each movie i,
its `neighbours` largest |B[i, j]| (recommend.py scatters them), so the pushed model grows with
movies × neighbours, not movies² (a dense B is 11 MB at ML-100k's 1,682 movies, 30 GB at ML-32M's 87k).
The Gram matrix is dense: only the `max_movies` most-rated movies take part (their ratings are most of any
release's); the rest have no neighbours and are reached by the two-tower model alone.

Also here: the choice of λ, of the blend with the retrieval model and of the ranker's weight on the eval split
(train → eval).
No TensorFlow here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from scipy import sparse

from components.ranking_evaluator import metrics

REGULARIZATIONS = (100.0, 250.0, 500.0, 1000.0)  # λ grid, chosen on eval
BLENDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0)  # the item-item share of the candidate score, chosen on eval
# The ranker's weight in `recommend`'s ordering score (candidate score + weight × predicted rating), chosen on eval.
RATING_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
TOP_K = 10  # the choices maximise NDCG@10 on eval


@dataclasses.dataclass(frozen=True)
class Neighbours:
    """The kept movies' neighbours: movie i's are row rows[i] of `indices` (movie indices; `movies` pads) and
    `weights` (their EASE weights B[i, j]; 0 pads); rows[i] = len(indices) for a movie without neighbours. Only
    the kept movies have a row, so the size is bounded by max_movies × neighbours whatever the catalogue."""

    rows: np.ndarray  # [movies] int64
    indices: np.ndarray  # [kept, n] int32
    weights: np.ndarray  # [kept, n] float32

    @property
    def movies(self) -> int:
        return len(self.rows)

    def nbytes(self) -> int:
        return self.rows.nbytes + self.indices.nbytes + self.weights.nbytes


def rated_matrix(users: np.ndarray, movies: np.ndarray, shape: tuple[int, int]) -> sparse.csr_matrix:
    """The binary users × movies matrix of (user index, movie index) pairs (repeats count once)."""
    values = np.ones(len(users), np.float32)
    matrix = sparse.csr_matrix((values, (users, movies)), shape=shape)
    matrix.data[:] = 1.0
    return matrix


def fit(rated: sparse.csr_matrix, regularization: float, neighbours: int, max_movies: int) -> Neighbours:
    """EASE over the `max_movies` most-rated movies of `rated`, each movie's `neighbours` largest |weights| kept."""
    movies = rated.shape[1]
    counts = np.asarray(rated.sum(axis=0)).reshape(-1)
    kept = np.sort(np.argsort(-counts, kind="stable")[: min(max_movies, movies)])
    kept = kept[counts[kept] > 0]
    if len(kept) < 2:
        kept = kept[:0]
    rows = np.full(movies, len(kept), np.int64)
    rows[kept] = np.arange(len(kept))
    n = max(min(neighbours, len(kept) - 1), 1)
    indices = np.full((len(kept), n), movies, np.int32)
    weights = np.zeros((len(kept), n), np.float32)
    if not len(kept):
        return Neighbours(rows, indices, weights)
    columns = rated[:, kept]
    gram = (columns.T @ columns).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += regularization
    inverse = np.linalg.inv(gram)
    dense = -inverse / np.diag(inverse)[None, :]
    np.fill_diagonal(dense, 0.0)
    top = np.argpartition(-np.abs(dense), n - 1, axis=1)[:, :n]
    indices[:] = kept[top]
    weights[:] = np.take_along_axis(dense, top, axis=1)
    return Neighbours(rows, indices, weights)


def scores(rated: sparse.csr_matrix, neighbours: Neighbours) -> np.ndarray:
    """Each row's item-item scores over every movie (what `recommend` computes), [rows, movies]."""
    movies, width = neighbours.movies, neighbours.indices.shape[1]
    has = np.flatnonzero(neighbours.rows < len(neighbours.indices))
    sources = np.repeat(has, width)
    targets = neighbours.indices[neighbours.rows[has]].reshape(-1).astype(np.int64)
    values = neighbours.weights[neighbours.rows[has]].reshape(-1)
    keep = targets < movies
    weights = sparse.csr_matrix((values[keep], (sources[keep], targets[keep])), shape=(movies, movies))
    return np.asarray((rated @ weights).todense(), np.float32)


def moments(values: np.ndarray, excluded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's mean and standard deviation ([rows, 1]) over the entries not `excluded` (scoring.moments)."""
    valid = ~excluded
    count = np.maximum(valid.sum(axis=1, keepdims=True), 1)
    mean = np.where(valid, values, 0.0).sum(axis=1, keepdims=True) / count
    return mean, np.sqrt((np.where(valid, values - mean, 0.0) ** 2).sum(axis=1, keepdims=True) / count)


def standardized(values: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    """Each row minus its mean, over its standard deviation, both over the entries not `excluded` (0 when flat
    and where excluded). `recommend` does the same in TensorFlow (scoring.standardized)."""
    mean, std = moments(values, excluded)
    return np.where(~excluded & (std > 1e-9), (values - mean) / np.maximum(std, 1e-9), 0.0)


def candidate_scores(
    item_scores: np.ndarray,
    retrieval_scores: np.ndarray,
    excluded: np.ndarray,
    share: float,
    popularity: np.ndarray | None = None,
    popularity_weight: float = 0.0,
) -> np.ndarray:
    """`recommend`'s candidate score in numpy (scoring.candidate_scores): the blend of the two standardized
    scores put back on the retrieval score's per-user scale (mean and spread over the entries not `excluded`,
    which are -inf), plus `popularity_weight` × the standardized `popularity` ([movies]) on that scale."""
    mean, std = moments(retrieval_scores, excluded)
    blend = (1.0 - share) * retrieval_scores + share * (mean + std * standardized(item_scores, excluded))
    if popularity is not None:
        popular = standardized(np.broadcast_to(popularity, retrieval_scores.shape), excluded)
        blend = blend + popularity_weight * std * popular
    return np.where(excluded, -np.inf, blend)


def top_movies(scores: np.ndarray, excluded: np.ndarray, k: int = TOP_K) -> np.ndarray:
    """Each row's k best movie indices by score ([rows, k]; excluded entries never listed before the others)."""
    return np.argsort(-np.where(excluded, -np.inf, scores), axis=1, kind="stable")[:, :k]


def ndcg(scores: np.ndarray, excluded: np.ndarray, relevant: Sequence[set[int]], k: int = TOP_K) -> float:
    """Mean NDCG@k (the RankingEvaluator's, metrics.accuracy) of each row's top k (excluded entries never listed)
    against its relevant movie indices."""
    return ndcg_of_lists(top_movies(scores, excluded, k), relevant, k)


def ndcg_by_user(scores: np.ndarray, excluded: np.ndarray, relevant: Sequence[set[int]], k: int = TOP_K) -> np.ndarray:
    """Each row's NDCG@k (metrics.user_metrics) of its top k against its relevant movie indices (rows without any
    are left out): what `ndcg` averages."""
    return np.array(
        [
            metrics.user_metrics([str(m) for m in movies], {str(m) for m in items}, k)["ndcg"]
            for movies, items in zip(top_movies(scores, excluded, k), relevant, strict=True)
            if items
        ]
    )


def ndcg_of_lists(top: np.ndarray, relevant: Sequence[set[int]], k: int = TOP_K) -> float:
    """Mean NDCG@k of each row's ranked movie indices against its relevant movie indices (metrics.accuracy)."""
    ranked = {str(row): [str(movie) for movie in movies] for row, movies in enumerate(top)}
    wanted = {str(row): {str(movie) for movie in items} for row, items in enumerate(relevant)}
    return metrics.accuracy(ranked, wanted, k)["ndcg"]


def choose_regularization(
    rated: sparse.csr_matrix, rows: np.ndarray, relevant: Sequence[set[int]], neighbours: int, max_movies: int
) -> tuple[float, dict[float, float], Neighbours]:
    """λ of REGULARIZATIONS with the best eval NDCG@10 of the item-item scorer alone; each λ's NDCG; its fit.

    `rated`: train only; `rows`: the eval users' rows of it; `relevant`: their eval movies not rated in train.
    """
    users = rated[rows]
    excluded = users.toarray() > 0
    figures, best = {}, None
    for regularization in REGULARIZATIONS:
        fitted = fit(rated, regularization, neighbours, max_movies)
        figures[regularization] = ndcg(scores(users, fitted), excluded, relevant)
        if best is None or figures[regularization] > figures[best[0]]:
            best = regularization, fitted
    return best[0], figures, best[1]


def choose_blend(
    item_scores: np.ndarray, retrieval_scores: np.ndarray, excluded: np.ndarray, relevant: Sequence[set[int]]
) -> tuple[float, dict[float, float]]:
    """The item-item share of BLENDS with the best eval NDCG@10 of
    share × standardized(item-item) + (1 - share) × standardized(retrieval); each share's NDCG."""
    item, retrieval = standardized(item_scores, excluded), standardized(retrieval_scores, excluded)
    figures = {share: ndcg(share * item + (1 - share) * retrieval, excluded, relevant) for share in BLENDS}
    return max(figures, key=figures.get), figures


def choose_rating_weight(
    candidates: np.ndarray, scores: np.ndarray, ratings: np.ndarray, relevant: Sequence[set[int]]
) -> tuple[float, dict[float, float]]:
    """The weight of RATING_WEIGHTS with the best eval NDCG@10 of `recommend`'s ordering score
    (candidate score + weight × predicted rating) over each user's candidates; each weight's NDCG.

    `candidates`: [users, n] movie indices (each user's top n by candidate score); `scores`: their candidate
    scores (-inf: not a movie to list); `ratings`: the ranker's predicted ratings of them."""
    figures = {}
    for weight in RATING_WEIGHTS:
        relevance = np.where(np.isfinite(scores), scores + weight * ratings, -np.inf)
        order = np.argsort(-relevance, axis=1, kind="stable")[:, :TOP_K]
        figures[weight] = ndcg_of_lists(np.take_along_axis(candidates, order, axis=1), relevant)
    return max(figures, key=figures.get), figures
