"""Reference baselines on MovieLens-100k under three evaluation protocols (prints one table).

    python benchmarks/baselines.py --data-dir artifacts/data/ml-100k [--seeds 3]

Protocols: the seed notebook's time split (oldest 60% train, next 20% eval, newest 20% test; the
baselines fit on train+eval), a per-user stratified random 75/25 split (Microsoft Recommenders'
benchmark protocol; their `python_stratified_split` is re-implemented here with numpy, so the
exact rows differ from theirs), and the classic u1..u5 folds shipped in the zip. Models: the
train mean and user + movie biases (regularised alternating least squares). Columns: RMSE, MAE,
RMSE on test ratings by users unseen vs seen in training, fit time; mean ± std over seeds where the
split or fit is random. The pipeline's own model is measured by `recommender run` (README results).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # movielens imports TensorFlow (for tf.train.Example)
from components.example_gen import movielens  # noqa: E402

PUBLISHED = {"stratified 75/25": "SVD 0.9387 (MS Recommenders)", "u1..u5 folds": "GC-MC 0.905 (u1)"}


def load(directory: Path, name: str = movielens.RATINGS_FILE) -> np.ndarray:
    """[n, 4] int array: user, movie, rating, timestamp."""
    return np.loadtxt(directory / name, dtype=np.int64, delimiter="\t").reshape(-1, 4)


def time_split(ratings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Train+eval (oldest 80% of the time range) and test, with ExampleGen's own rule."""
    split = movielens.TimeSplit(("train", "eval", "test"), (0.6, 0.2, 0.2))
    lo, hi = int(ratings[:, 3].min()), int(ratings[:, 3].max())
    index = np.array([split.index(int(t), lo, hi) for t in ratings[:, 3]])
    return ratings[index < 2], ratings[index == 2]


def stratified_split(ratings: np.ndarray, seed: int, ratio: float = 0.75) -> tuple[np.ndarray, np.ndarray]:
    """Per user, a random `ratio` of their ratings to train and the rest to test."""
    rng = np.random.default_rng(seed)
    train = np.zeros(len(ratings), bool)
    for user in np.unique(ratings[:, 0]):
        rows = np.flatnonzero(ratings[:, 0] == user)
        rng.shuffle(rows)
        train[rows[: int(round(ratio * len(rows)))]] = True
    return ratings[train], ratings[~train]


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


def evaluate(train: np.ndarray, test: np.ndarray, model: str) -> dict[str, float]:
    started = time.perf_counter()
    if model == "train mean":
        predictions = np.full(len(test), train[:, 2].mean())
    else:
        mu, b_user, b_movie = fit_biases(train)
        predictions = np.array([mu + b_user.get(u, 0.0) + b_movie.get(m, 0.0) for u, m in test[:, :2]])
    seconds = time.perf_counter() - started
    errors = np.clip(predictions, 1, 5) - test[:, 2]
    seen = np.isin(test[:, 0], train[:, 0])

    def rmse(mask):
        return float(np.sqrt(np.mean(errors[mask] ** 2))) if mask.any() else float("nan")

    return {
        "RMSE": rmse(np.ones(len(test), bool)),
        "MAE": float(np.mean(np.abs(errors))),
        "RMSE unseen": rmse(~seen),
        "RMSE seen": rmse(seen),
        "fit s": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("artifacts/data/ml-100k"))
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    ratings = load(args.data_dir)
    protocols = {
        "time split": [time_split(ratings)],
        "stratified 75/25": [stratified_split(ratings, 42 + s) for s in range(args.seeds)],
        "u1..u5 folds": [(load(args.data_dir, f"u{k}.base"), load(args.data_dir, f"u{k}.test")) for k in range(1, 6)],
    }
    columns = ["RMSE", "MAE", "RMSE unseen", "RMSE seen", "fit s"]
    print(f"| protocol | model | {' | '.join(columns)} | published |")
    print("|---" * (len(columns) + 3) + "|")
    for protocol, splits in protocols.items():
        for model in ("train mean", "user+movie biases"):
            results = [evaluate(train, test, model) for train, test in splits]
            cells = []
            for column in columns:
                values = np.array([r[column] for r in results])
                if np.isnan(values).all():
                    cells.append("—")  # e.g. no unseen test users: random splits keep every user in train
                    continue
                spread = f" ± {np.std(values):.3f}" if len(values) > 1 else ""
                cells.append(f"{np.mean(values):.3f}{spread}")
            print(f"| {protocol} | {model} | {' | '.join(cells)} | {PUBLISHED.get(protocol, '')} |")


if __name__ == "__main__":
    main()
