"""A pushed model, loaded once, and what a client asks of it: recommendations, the catalogue, a user's ratings.

The CLI, the app and the explanations use this; every `recommend` call is counted and timed for Prometheus
(recommender/monitoring/metrics.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from transform import features as f


class RecommendError(RuntimeError):
    """The model cannot answer (a signature is missing, or it refused the request)."""


def newest_version(base: str) -> str:
    """The newest `<base>/<version>` directory TF Serving would serve (highest integer version)."""
    from components.identity import latest_served

    newest = latest_served(base)
    if newest is None:
        raise FileNotFoundError(f"no pushed model under {base}: run `recommender run` first (or give --serving-dir)")
    return newest


# The widest rating range of any MovieLens release (half stars from ml-10m on); the model refuses ratings outside
# its own release's range, naming it.
RATED_MIN, RATED_MAX = 0.5, 5.0


def parse_rated(values: tuple[str, ...]) -> list[tuple[str, float]]:
    """`MOVIE_ID:RATING` strings → (movie id, rating) pairs; ValueError naming the bad one."""
    pairs = []
    for value in values:
        movie, sep, rating = value.rpartition(":")
        try:
            number = float(rating)
        except ValueError:
            number = float("nan")
        if not sep or not movie.strip() or not RATED_MIN <= number <= RATED_MAX:
            within = f"{RATED_MIN:g}..{RATED_MAX:g}"
            raise ValueError(f"--rated {value!r}: expected MOVIE_ID:RATING with a rating within {within}, e.g. 50:5")
        pairs.append((movie.strip(), number))
    return pairs


def refusal(message: str) -> str:
    """The reason in a refused request's TensorFlow error: the signature's assertion text, else the first line."""
    found = re.search(r"assertion failed: \[([^\]]+)\]", message)
    return found.group(1) if found else message.strip().splitlines()[0]


def rated_tensors(pairs: Sequence[tuple[str, float]], rows: int = 1):
    """The `recent_movies` and `recent_ratings` inputs ([rows, len(pairs)]): the same pairs for every row."""
    import tensorflow as tf

    return (
        tf.constant([[m for m, _ in pairs]] * rows, tf.string, shape=[rows, len(pairs)]),
        tf.constant([[r for _, r in pairs]] * rows, tf.float32, shape=[rows, len(pairs)]),
    )


class Model:
    """One pushed SavedModel (`path` = `<serving dir>/<name>/<version>`), loaded once."""

    def __init__(self, path: str):
        import tensorflow as tf

        self.path = path
        self.version = os.path.basename(os.path.normpath(path))
        self._loaded = tf.saved_model.load(path)
        self._catalogue: dict | None = None

    def signature(self, name: str):
        """The concrete function `name`; RecommendError when the model predates it."""
        if name not in self._loaded.signatures:
            raise RecommendError(f"{self.path} has no {name!r} signature (pushed by an older version?)")
        return self._loaded.signatures[name]

    def recommend(
        self, user_id: str, rated: Sequence[tuple[str, float]] = (), k: int = 10, diversity: float = 0.0
    ) -> dict:
        """{"known_user": bool, "movies": [{movie_id, title, genres, score, predicted_rating}, ...]}."""
        from recommender.monitoring import metrics

        with metrics.timed_request(self.version):
            return self._recommend(user_id, rated, k, diversity)

    def _recommend(self, user_id: str, rated: Sequence[tuple[str, float]], k: int, diversity: float) -> dict:
        import tensorflow as tf

        function = self.signature(f.RECOMMEND_SIGNATURE)
        movies, ratings = rated_tensors(rated)
        try:
            out = function(
                user_id=tf.constant([user_id]),
                recent_movies=movies,
                recent_ratings=ratings,
                k=tf.constant(k, tf.int32),
                diversity=tf.constant(diversity, tf.float32),
            )
        except tf.errors.InvalidArgumentError as error:
            raise RecommendError(refusal(error.message)) from None
        columns = {
            name: out[name].numpy()[0]
            for name in (f.OUT_MOVIE_IDS, f.OUT_TITLES, f.OUT_GENRES, f.OUT_SCORES, f.OUT_RATINGS)
        }
        movies = [
            {
                "movie_id": movie.decode(),
                "title": title.decode(),
                "genres": genres.decode(),
                "score": float(score),
                "predicted_rating": float(rating),
            }
            for movie, title, genres, score, rating in zip(*columns.values(), strict=True)
            if movie
        ]
        return {"known_user": bool(out[f.OUT_KNOWN_USER].numpy()[0]), "movies": movies}

    def catalogue(self) -> dict:
        """{"movie_ids", "titles", "genres": lists of str, "rating_counts": list of int, "user_ids": list of str}."""
        if self._catalogue is None:
            out = self.signature(f.CATALOGUE_SIGNATURE)()
            text = {
                name: [v.decode() for v in out[name].numpy()] for name in (f.OUT_MOVIE_IDS, f.OUT_TITLES, f.OUT_GENRES)
            }
            users = [v.decode() for v in out[f.OUT_USER_IDS].numpy()] if f.OUT_USER_IDS in out else []
            self._catalogue = {
                "movie_ids": text[f.OUT_MOVIE_IDS],
                "titles": text[f.OUT_TITLES],
                "genres": text[f.OUT_GENRES],
                "rating_counts": [int(c) for c in out[f.OUT_RATING_COUNTS].numpy()],
                "user_ids": users,
                "rating_range": tuple(float(x) for x in out[f.OUT_RATING_RANGE].numpy())
                if f.OUT_RATING_RANGE in out
                else (f.RATING_MIN, f.RATING_MAX),
            }
        return self._catalogue

    def user_ratings(self, user_id: str) -> list[dict]:
        """The ratings the model's snapshot holds for `user_id`, newest first ([] for an unknown user)."""
        import tensorflow as tf

        out = self.signature(f.USER_RATINGS_SIGNATURE)(user_id=tf.constant(user_id))
        rows = zip(
            *(out[name].numpy() for name in (f.OUT_MOVIE_IDS, f.OUT_TITLES, f.OUT_GENRES, f.OUT_RATED)), strict=True
        )
        listed = [
            {"movie_id": m.decode(), "title": t.decode(), "genres": g.decode(), "rating": float(r)}
            for m, t, g, r in rows
        ]
        return listed[::-1]


def load(serving_dir: str, model_name: str) -> Model:
    """The newest pushed version of `model_name` under `serving_dir`."""
    return Model(newest_version(os.path.join(serving_dir, model_name)))


def recommend(
    model_path: str, user_id: str, rated: Sequence[tuple[str, float]] = (), k: int = 10, diversity: float = 0.0
) -> dict:
    """One-off: load `model_path` and recommend (Model.recommend)."""
    return Model(model_path).recommend(user_id, rated, k, diversity)
