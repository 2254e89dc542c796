"""Cold start: how well `recommend` serves people the model has never seen, from their first few ratings.

    python benchmarks/cold_start.py --model artifacts/serving/movielens_ranker/<version> \
        --data-dir artifacts/data/ml-100k [--given 0,1,3,5]

Run it on a model trained on the time split (the default `recommender run`): most of its test-period users
rated nothing before it. Each user the model does not know, with more than max(given) + 4 ratings of movies in
its catalogue, is sent as a new id with their first n ratings (by time) as `recent_movies` / `recent_ratings`;
relevant = the rest of their ratings. Figures: NDCG@10 (components/ranking_evaluator/metrics.py) of the
pushed model, of the same model without the new-user popularity prior (components/trainer/cold_start.py),
with the item-item share and the prior set to 0 (the towers alone), and of the most popular movies (the
model's training rating counts) without the given ones. Then the Star Wars check: a new user who
gave Star Wars, The Empire Strikes Back and Return of the Jedi 5 stars (ML-100k ids 50, 172, 181), and their
top 10's genres. Reads the ratings file only to measure: nothing here chooses a setting.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import baselines  # noqa: E402
from components.ranking_evaluator import metrics  # noqa: E402
from transform import features as f  # noqa: E402

STAR_WARS = ("50", "172", "181")
BATCH = 64


def new_users(
    ratings: np.ndarray, known: set[str], catalogue: set[str], given: int
) -> dict[str, list[tuple[str, float]]]:
    """Each user the model does not know: their (movie, rating) pairs of movies in the catalogue, by time (ties
    by movie id), when they number more than `given` + 4."""
    order = np.lexsort((ratings[:, 1], ratings[:, 3], ratings[:, 0]))
    histories: dict[str, list[tuple[str, float]]] = {}
    for user, movie, rating, _ in ratings[order]:
        if str(user) not in known and str(movie) in catalogue:
            histories.setdefault(str(user), []).append((str(movie), float(rating)))
    return {user: pairs for user, pairs in histories.items() if len(pairs) > given + 4}


def recommend(model, users: list[str], given: list[list[tuple[str, float]]], k: int = 10) -> dict[str, list[str]]:
    """Each new user's top k from `recommend` with their given ratings (request ids prefixed: never known)."""
    signature = model.signatures[f.RECOMMEND_SIGNATURE]
    ranked = {}
    for start in range(0, len(users), BATCH):
        batch, pairs = users[start : start + BATCH], given[start : start + BATCH]
        out = signature(
            user_id=tf.constant([f"cold-start-{user}" for user in batch]),
            recent_movies=tf.constant([[m for m, _ in row] for row in pairs], tf.string, [len(batch), len(pairs[0])]),
            recent_ratings=tf.constant([[r for _, r in row] for row in pairs], tf.float32, [len(batch), len(pairs[0])]),
            k=tf.constant(k),
            diversity=tf.constant(0.0),
        )
        for user, listed in zip(batch, out[f.OUT_MOVIE_IDS].numpy(), strict=True):
            ranked[user] = [m.decode() for m in listed]
    return ranked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="A pushed SavedModel directory.")
    parser.add_argument("--data-dir", type=Path, required=True, help="The ML-100k directory (u.data).")
    parser.add_argument("--given", default="0,1,3,5")
    args = parser.parse_args()
    model = tf.saved_model.load(args.model)
    catalogue = model.signatures[f.CATALOGUE_SIGNATURE]()
    movie_ids = [m.decode() for m in catalogue[f.OUT_MOVIE_IDS].numpy()]
    counts = dict(zip(movie_ids, catalogue[f.OUT_RATING_COUNTS].numpy().tolist(), strict=True))
    popular = sorted(movie_ids, key=lambda m: (-counts[m], m))
    known = {u.decode() for u in catalogue[f.OUT_USER_IDS].numpy()}
    ratings = baselines.load(args.data_dir)
    share = float(model.recommender.item_share.numpy())
    prior = model.recommender.new_user_popularity.numpy()  # by given ratings (cold_start.GIVEN)
    sizes = [int(n) for n in args.given.split(",")]
    users = new_users(ratings, known, set(movie_ids), max(sizes))
    if not users:
        raise SystemExit("Error: every user in the ratings is known to the model (train it on the time split)")
    weights = ", ".join(f"{w:g}" for w in prior)
    print(f"{len(users)} users the model never saw; item-item share {share:g}, new-user popularity {weights}")
    print("(both chosen on eval)\n")
    print("| given ratings | ours | without the popularity prior | towers alone (share 0, no prior) | most popular |")
    print("|---|---|---|---|---|")
    for n in sizes:
        ids = sorted(users)
        given = [users[u][:n] for u in ids]
        relevant = {u: {m for m, _ in users[u][n:]} for u in ids}
        figures = []
        for item_share, popularity in ((share, prior), (share, np.zeros_like(prior)), (0.0, np.zeros_like(prior))):
            model.recommender.item_share.assign(item_share)
            model.recommender.new_user_popularity.assign(popularity)
            figures.append(metrics.accuracy(recommend(model, ids, given), relevant, 10)["ndcg"])
        model.recommender.item_share.assign(share)
        model.recommender.new_user_popularity.assign(prior)
        most_popular = {u: [m for m in popular if m not in dict(g)][:10] for u, g in zip(ids, given, strict=True)}
        figures.append(metrics.accuracy(most_popular, relevant, 10)["ndcg"])
        print(f"| {n} | " + " | ".join(f"{x:.4f}" for x in figures) + " |")
    if set(STAR_WARS) <= set(movie_ids):
        out = model.signatures[f.RECOMMEND_SIGNATURE](
            user_id=tf.constant(["star-wars-fan"]),
            recent_movies=tf.constant([list(STAR_WARS)]),
            recent_ratings=tf.constant([[5.0] * len(STAR_WARS)]),
            k=tf.constant(10),
            diversity=tf.constant(0.0),
        )
        titles, genres = out[f.OUT_TITLES].numpy()[0], out[f.OUT_GENRES].numpy()[0]
        print("\nA new user who gave the three Star Wars films 5 stars gets:")
        for title, genre in zip(titles, genres, strict=True):
            print(f"  {title.decode()}  ({genre.decode()})")
        space = sum(any(g in genre.decode() for g in ("Sci-Fi", "Adventure")) for genre in genres)
        print(f"{space} of 10 are Sci-Fi or Adventure")


if __name__ == "__main__":
    main()
