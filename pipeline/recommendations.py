"""Calling a pushed model's `recommend` signature from Python (the CLI and tests use this)."""

from __future__ import annotations

from collections.abc import Sequence

from transform import features as f


class RecommendError(RuntimeError):
    """The model cannot answer (no `recommend` signature, or it refused the request)."""


def recommend(
    model_path: str, user_id: str, rated: Sequence[tuple[str, float]] = (), k: int = 10, diversity: float = 0.0
) -> dict:
    """{"known_user": bool, "movies": [{movie_id, title, genres, score, predicted_rating}, ...]} for one user."""
    import tensorflow as tf

    model = tf.saved_model.load(model_path)
    if f.RECOMMEND_SIGNATURE not in model.signatures:
        raise RecommendError(f"{model_path} has no {f.RECOMMEND_SIGNATURE!r} signature (pushed by an older version?)")
    try:
        out = model.signatures[f.RECOMMEND_SIGNATURE](
            user_id=tf.constant([user_id]),
            recent_movies=tf.constant([[m for m, _ in rated]], tf.string, shape=[1, len(rated)]),
            recent_ratings=tf.constant([[r for _, r in rated]], tf.float32, shape=[1, len(rated)]),
            k=tf.constant(k, tf.int32),
            diversity=tf.constant(diversity, tf.float32),
        )
    except tf.errors.InvalidArgumentError as error:
        raise RecommendError(error.message.strip().splitlines()[0]) from None
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
