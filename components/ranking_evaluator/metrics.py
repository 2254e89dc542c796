"""Top-K ranking metrics, as Microsoft Recommenders computes them, and beyond-accuracy measures.

Protocol (so figures compare with their published ML-100k table): each user's top-K excludes the movies
they rated in the data the model was trained on; the relevant movies are the user's test ratings, all of
them; users without a test rating are not scored. Relevance is binary.
- Precision@K: hits in the top K / K (a list shorter than K still divides by K).
- Recall@K: hits / number of relevant movies.
- NDCG@K: Σ over hits at rank r of 1/log2(r + 1), over the same sum for a perfect list of min(K, relevant).
- MAP@K, two denominators (ranking.json and MLMD carry both): `map` divides the Σ over hits at rank r of
  (hits up to r) / r by the number of relevant movies, as the `map_at_k` behind Microsoft Recommenders' published
  ML-100k tables did; `map_min_k` divides it by min(K, relevant), as their current `map_at_k` does (and most
  libraries: a perfect list scores 1). They differ for users with more than K test movies.
No TensorFlow here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

ACCURACY = ("precision", "recall", "ndcg", "map", "map_min_k")


def user_metrics(ranked: Sequence[str], relevant: set[str], k: int) -> dict[str, float]:
    """The accuracy metrics of one user's ranked list (its first k entries; "" entries are empty slots)."""
    if not relevant:
        raise ValueError("a user without relevant movies is not scored")
    top = [movie for movie in ranked[:k]]
    hits = [1.0 if movie and movie in relevant else 0.0 for movie in top]
    dcg = sum(hit / math.log2(rank + 2) for rank, hit in enumerate(hits))
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(k, len(relevant))))
    found, precisions = 0.0, 0.0
    for rank, hit in enumerate(hits):
        found += hit
        precisions += hit * found / (rank + 1)
    return {
        "precision": sum(hits) / k,
        "recall": sum(hits) / len(relevant),
        "ndcg": dcg / ideal,
        "map": precisions / len(relevant),
        "map_min_k": precisions / min(k, len(relevant)),
    }


def accuracy(ranked: Mapping[str, Sequence[str]], relevant: Mapping[str, set[str]], k: int) -> dict[str, float]:
    """Mean accuracy metrics over the users with relevant movies (a user missing from `ranked` scores 0)."""
    users = [user for user, items in relevant.items() if items]
    if not users:
        return {name: float("nan") for name in ACCURACY} | {"users": 0}
    per_user = [user_metrics(ranked.get(user, ()), relevant[user], k) for user in users]
    return {name: float(np.mean([m[name] for m in per_user])) for name in ACCURACY} | {"users": len(users)}


def genre_similarity(a: set[str], b: set[str]) -> float:
    """Cosine similarity of two movies' genre sets (0 when either has none)."""
    return len(a & b) / math.sqrt(len(a) * len(b)) if a and b else 0.0


def intra_list_diversity(ranked: Sequence[str], genres: Mapping[str, set[str]]) -> float:
    """Mean over pairs of 1 - genre similarity within one list (nan under two movies)."""
    movies = [movie for movie in ranked if movie]
    pairs = [(a, b) for i, a in enumerate(movies) for b in movies[i + 1 :]]
    if not pairs:
        return float("nan")
    return float(np.mean([1.0 - genre_similarity(genres.get(a, set()), genres.get(b, set())) for a, b in pairs]))


def beyond_accuracy(
    ranked: Mapping[str, Sequence[str]], genres: Mapping[str, set[str]], counts: Mapping[str, int], users: int
) -> dict[str, float]:
    """Catalogue coverage, novelty, intra-list diversity and popularity bias of the lists.

    counts: each catalogue movie's ratings in the training data; users: how many users that data has.
    - coverage: distinct recommended movies / catalogue size.
    - novelty: mean -log2(ratings of the movie / users) over recommended movies (Microsoft Recommenders').
    - intra_list_diversity: mean intra-list diversity (genres).
    - popularity: mean training ratings of a recommended movie (average recommendation popularity), and
      head_share: the share of recommendations among the most-rated 10% of the catalogue.
    """
    recommended = [movie for movies in ranked.values() for movie in movies if movie]
    if not recommended:
        nothing = ("novelty", "intra_list_diversity", "popularity", "head_share")
        return {"coverage": 0.0, **dict.fromkeys(nothing, float("nan"))}
    ordered = sorted(counts, key=lambda movie: (-counts[movie], movie))
    head = set(ordered[: max(1, len(ordered) // 10)])
    return {
        "coverage": len(set(recommended)) / max(len(counts), 1),
        "novelty": float(np.mean([-math.log2(max(counts.get(m, 0), 1) / max(users, 1)) for m in recommended])),
        "intra_list_diversity": float(np.nanmean([intra_list_diversity(movies, genres) for movies in ranked.values()]))
        if any(len([m for m in movies if m]) > 1 for movies in ranked.values())
        else float("nan"),
        "popularity": float(np.mean([counts.get(m, 0) for m in recommended])),
        "head_share": float(np.mean([m in head for m in recommended])),
    }
