"""The popularity prior for users the model has never seen (cold start), chosen on eval (by retrieval_training).

A user the snapshot does not know is only what the request gives: nothing, or a few ratings. The towers see
that short profile and the item-item scorer sums a few movies' neighbours; what such users rate next is mostly
what everybody rates (benchmarks/cold_start.py: on ML-100k's time split the most popular movies beat the
blend alone for new users given 1, 3 or 5 ratings). So `recommend` adds `new_user_popularity` × each movie's
standardized log rating count to the candidate score of a user it does not know (known users: 0), on the
retrieval score's scale like the item-item share (scoring.candidate_scores).

The weights are chosen on the eval split's new users: the users with eval ratings and no train ratings (the
time split's newcomers), each given their first n ∈ GIVEN eval ratings (by time) as a request would, relevant =
the rest of their eval movies; for each n the smallest weight of POPULARITY_WEIGHTS within one standard error of
the best NDCG@10 (a request with n ratings, up to the next n of GIVEN, uses it). The candidate scores are
what `recommend` computes before the ranker: towers (profiles from a train-only snapshot) and the train-only
item-item scorer, blended with the share chosen on the known eval users. Where eval has no such users (the
stratified and fold protocols: every eval user has train ratings) the weights stay 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
from scipy import sparse

from components.trainer import item_item
from components.trainer.snapshot import text
from transform import features as f

POPULARITY_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
GIVEN = (0, 1, 3, 5)  # ratings a simulated new user gives; one weight is chosen for each
LATER = 5  # a new user takes part with at least max(GIVEN) + LATER eval ratings (at least LATER relevant)
# The weights are chosen on at most this many of them (a seeded sample): four query passes over 2,000 newcomers
# took 41 s of the Trainer at 1M generated ratings, with eval curves flat near their top.
EVAL_NEWCOMERS = 1000


@dataclasses.dataclass(frozen=True)
class NewUsers:
    """Eval-period new users: `user_ids`, and each one's eval ratings of movies the train split holds, by time
    (ties by movie id): `movies` (snapshot movie indices) and `ratings`."""

    user_ids: np.ndarray
    movies: list[np.ndarray]
    ratings: list[np.ndarray]


def new_users(movie_ids: np.ndarray, train_rows: dict, eval_rows: dict, seed: int, limit: int) -> NewUsers:
    """The eval users without a train rating who have at least max(GIVEN) + LATER eval ratings of train movies,
    a seeded sample of at most `limit`. `movie_ids`: the snapshot's movie ids (of the train and eval rows),
    which `NewUsers.movies` index. Reads the train and eval rows only."""
    known = set(text(train_rows[f.USER_ID]).tolist())
    train_movies = set(text(train_rows[f.MOVIE_ID]).tolist())
    users, movies = text(eval_rows[f.USER_ID]), text(eval_rows[f.MOVIE_ID])
    times = np.asarray(eval_rows[f.TIMESTAMP]).reshape(-1)
    ratings = np.asarray(eval_rows[f.RATING], np.float32).reshape(-1)
    # Sets, not np.isin: on object arrays of ML-100k's eval and train sizes np.isin took 11 s, the sets 5 ms.
    keep = np.array([u not in known and m in train_movies for u, m in zip(users, movies, strict=True)], bool)
    histories: dict[str, list[tuple[int, str, float]]] = {}
    for user, movie, time, rating in zip(users[keep], movies[keep], times[keep], ratings[keep], strict=True):
        histories.setdefault(user, []).append((int(time), movie, float(rating)))
    eligible = sorted(u for u, rows in histories.items() if len(rows) >= max(GIVEN) + LATER)
    chosen = np.random.default_rng(seed).permutation(len(eligible))[:limit]
    picked = np.array(sorted(eligible[i] for i in chosen), object)
    ordered = [sorted(histories[u]) for u in picked]
    movie_index = {m: i for i, m in enumerate(movie_ids.tolist())}
    return NewUsers(
        picked,
        [np.array([movie_index[m] for _, m, _ in rows], np.int64) for rows in ordered],
        [np.array([r for _, _, r in rows], np.float32) for rows in ordered],
    )


def choose_popularity_weights(
    users: NewUsers,
    query_vectors: Callable[[int], np.ndarray],
    movie_vectors: np.ndarray,
    neighbours: item_item.Neighbours,
    popularity: np.ndarray,
    share: float,
) -> dict:
    """For each n of GIVEN, the weight of POPULARITY_WEIGHTS chosen on the eval NDCG@10 of the new users given
    their first n ratings (within_one_standard_error; `recommend` uses n's weight for a request with n to the
    next n of GIVEN ratings), and each weight's mean NDCG by n. `query_vectors(n)`: the new users' query vectors
    given their first n ratings ([users, dim]); `movie_vectors`, `neighbours` (train only) and `popularity`
    ([movies], log rating counts in train) in the snapshot's movie order; `share`: the item-item share chosen on
    the known eval users."""
    if not len(users.user_ids):
        return {"new_user_popularity": [0.0] * len(GIVEN), "new_user_eval_users": 0}
    movies, chosen, figures = len(movie_vectors), [], {}
    for n in GIVEN:
        given = sparse.csr_matrix(
            (np.ones(n * len(users.movies)), (np.repeat(np.arange(len(users.movies)), n),
                                              np.concatenate([m[:n] for m in users.movies]))),
            shape=(len(users.movies), movies),
        )  # fmt: skip
        excluded = given.toarray() > 0
        relevant = [set(m[n:].tolist()) - set(m[:n].tolist()) for m in users.movies]
        item_scores = item_item.scores(given, neighbours)
        retrieval = query_vectors(n) @ movie_vectors.T
        by_user = {
            weight: item_item.ndcg_by_user(
                item_item.candidate_scores(item_scores, retrieval, excluded, share, popularity, weight),
                excluded,
                relevant,
            )
            for weight in POPULARITY_WEIGHTS
        }
        chosen.append(within_one_standard_error(by_user))
        figures[str(n)] = {str(weight): float(values.mean()) for weight, values in by_user.items()}
    return {
        "new_user_popularity": chosen,
        "new_user_eval_users": len(users.user_ids),
        "eval_ndcg_by_given_and_new_user_popularity": figures,
    }


def within_one_standard_error(by_user: dict[float, np.ndarray]) -> float:
    """The smallest weight whose mean NDCG is within one standard error of the best weight's: the one-standard-error
    rule, with the standard error of each weight's per-user difference to the best (the same users). On a flat
    eval curve the best is noise; the smallest weight keeps the most of what the user gave (on ML-100k's 123
    newcomers given 3 ratings eval NDCG@10 was 0.499, 0.497, 0.496 at 8, 16, 32, and the best moved between runs)."""
    best = max(by_user, key=lambda weight: by_user[weight].mean())
    for weight in sorted(by_user):
        shortfall = by_user[best] - by_user[weight]
        error = shortfall.std(ddof=1) / np.sqrt(len(shortfall)) if len(shortfall) > 1 else 0.0
        if shortfall.mean() <= error:
            return weight
    return best
