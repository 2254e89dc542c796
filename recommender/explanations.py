"""Why the model predicts a rating: SHAP over the ranker's inputs, grouped into terms a person reads.

The players are the terms of features.EXPLANATION_TERMS (rating habits, movie popularity and quality, genre
match, ...): each groups the Transform outputs the ranker reads, and every input belongs to exactly one term. A
coalition keeps the explained pair's inputs for its terms and takes a background pair's for the others; SHAP's
exact explainer averages over the background, so the attributions plus the base value (the background's mean
prediction) equal the ranker's prediction. The background is `background` ratings from the model's snapshot (the
train and eval ratings it was trained on): sampled users, one of their rated movies each, seen as of now.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from recommender.recommendations import Model, RecommendError, rated_tensors
from transform import features as f

DEFAULT_BACKGROUND = 100
_BATCH = 8192


def terms_of(inputs: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """The explanation terms over the ranker's `inputs` (terms with none of them are left out).

    ValueError if an input belongs to no term or to two (the grouping must cover every input exactly once).
    """
    owners = {name: [t for t, names in f.EXPLANATION_TERMS.items() if name in names] for name in inputs}
    wrong = {name: terms for name, terms in owners.items() if len(terms) != 1}
    if wrong:
        raise ValueError(f"ranker inputs not in exactly one explanation term: {wrong}")
    return {
        term: tuple(n for n in names if n in inputs)
        for term, names in f.EXPLANATION_TERMS.items()
        if any(n in inputs for n in names)
    }


def _pair_inputs(model: Model, users: list[str], movies: list[str], rated: Sequence[tuple[str, float]] = ()) -> dict:
    """The ranker's inputs of each (user, movie) pair, every user with `rated` added to their history."""
    import tensorflow as tf

    recent_movies, recent_ratings = rated_tensors(rated, len(users))
    out = model.signature(f.PAIR_INPUTS_SIGNATURE)(
        user_id=tf.constant(users),
        movie_id=tf.constant(movies),
        recent_movies=recent_movies,
        recent_ratings=recent_ratings,
    )
    return {name: value.numpy() for name, value in out.items()}


def background_pairs(model: Model, size: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """`size` (user, movie) ratings from the snapshot: users drawn uniformly, one of their rated movies each."""
    rng = np.random.default_rng(seed)
    users = model.catalogue()["user_ids"]
    if not users:
        raise RecommendError(f"{model.path} does not list its users (pushed by an older version?)")
    chosen_users, chosen_movies = [], []
    for index in rng.choice(len(users), size=size, replace=len(users) < size):
        rated = model.user_ratings(users[index])
        if rated:
            chosen_users.append(users[index])
            chosen_movies.append(rated[rng.integers(len(rated))]["movie_id"])
    return chosen_users, chosen_movies


class Explainer:
    """Explains a model's ratings against one background (drawn once: the app reuses it for every pair)."""

    def __init__(self, model: Model, background: int = DEFAULT_BACKGROUND, seed: int = 0):
        self.model = model
        self.users, self.movies = background_pairs(model, background, seed)
        self.pool = _pair_inputs(model, self.users, self.movies)
        self.terms = terms_of(tuple(self.pool))
        self._rank = model.signature(f.RANK_INPUTS_SIGNATURE)

    def _predict(self, pool: dict, rows: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        rows = np.asarray(rows).astype(np.int64)
        out = []
        for start in range(0, len(rows), _BATCH):
            chunk = rows[start : start + _BATCH]
            batch = {name: pool[name][chunk[:, g]] for g, names in enumerate(self.terms.values()) for name in names}
            out.append(self._rank(**{n: tf.constant(v) for n, v in batch.items()})[f.OUT_RAW_RATING].numpy())
        return np.concatenate(out)

    def explain(self, user_id: str, movie_id: str, rated: Sequence[tuple[str, float]] = ()) -> dict:
        """The explanation of the rating of `movie_id` for `user_id` (with `rated` added to their history).

        Returns {"user_id", "movie_id", "title", "prediction" (the ranker's, unclipped), "served_prediction"
        (clipped to the rating range, as `recommend` shows it), "base_value", "terms": [{"term", "contribution",
        "sources", "inputs"}] largest effect first, "background", "seconds"}.
        """
        import shap

        catalogue = self.model.catalogue()
        if movie_id not in catalogue["movie_ids"]:
            raise RecommendError(f"movie {movie_id!r} is not in the model's catalogue")
        started = time.perf_counter()
        mine = _pair_inputs(self.model, [user_id], [movie_id], rated)
        pool = {name: np.concatenate([mine[name], self.pool[name]]) for name in self.pool}  # row 0: the pair
        players = len(self.terms)
        reference = np.repeat(np.arange(1, len(self.users) + 1)[:, None], players, axis=1)
        masker = shap.maskers.Independent(reference, max_samples=len(reference))
        values = shap.explainers.Exact(lambda rows: self._predict(pool, rows), masker)(np.zeros((1, players)))
        prediction = float(self._predict(pool, np.zeros((1, players)))[0])
        terms = [
            {"term": term, "contribution": float(c), "sources": f.EXPLANATION_SOURCES[term], "inputs": list(names)}
            for (term, names), c in zip(self.terms.items(), values.values[0], strict=True)
        ]
        return {
            "user_id": user_id,
            "movie_id": movie_id,
            "title": catalogue["titles"][catalogue["movie_ids"].index(movie_id)],
            "prediction": prediction,
            "served_prediction": float(np.clip(prediction, *catalogue["rating_range"])),
            "base_value": float(values.base_values[0]),
            "terms": sorted(terms, key=lambda t: -abs(t["contribution"])),
            "background": len(self.users),
            "seconds": time.perf_counter() - started,
        }


def explain(
    model: Model,
    user_id: str,
    movie_id: str,
    rated: Sequence[tuple[str, float]] = (),
    background: int = DEFAULT_BACKGROUND,
    seed: int = 0,
) -> dict:
    """One explanation (Explainer.explain), its background drawn for it; "seconds" counts the drawing too."""
    started = time.perf_counter()
    result = Explainer(model, background, seed).explain(user_id, movie_id, rated)
    return {**result, "seconds": time.perf_counter() - started}


def why(explanation: dict, top: int = 2, least: float = 0.01) -> str:
    """A short reason for the app: the (up to `top`) terms that raised the prediction most, by at least `least`."""
    raising = sorted((t for t in explanation["terms"] if t["contribution"] >= least), key=lambda t: -t["contribution"])
    raising = raising[:top]
    if not raising:
        return "no term raised this prediction above the average"
    return ", ".join(f"{t['term']} (+{t['contribution']:.2f})" for t in raising)
