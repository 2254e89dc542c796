"""`recommender run` with every default on MovieLens-100k from the mirror: what `make run` gives a new user, and
what the README's headline says it gives (the figures between the README's default-headline markers); its pushed
model's top 10 against most popular and item-kNN, computed here."""

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[1] / "README.md"
# Seeded, but multithreaded CPU training is not bit-reproducible: what two runs of the same code differ by.
RMSE_NOISE, NDCG_NOISE = 0.003, 0.006


def _headline() -> dict[str, float]:
    text = re.search(r"<!-- default-headline -->(.*?)<!-- /default-headline -->", README.read_text(), re.S).group(1)
    return {
        "rmse": float(re.search(r"test RMSE \*\*([\d.]+)\*\*", text).group(1)),
        "ndcg": float(re.search(r"NDCG@10 \*\*([\d.]+)\*\*", text).group(1)),
    }


@pytest.fixture(scope="module")
def default_run(ml100k_dir, tmp_path_factory) -> tuple[str, Path]:
    """The default run's output and the pushed model's path."""
    root = tmp_path_factory.mktemp("default-run")
    command = [sys.executable, "-m", "recommender.cli", "run", "--input-dir", str(ml100k_dir),
               "--pipeline-root", str(root / "pipeline"), "--serving-dir", str(root / "serving")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=1500)
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, Path(re.search(r"pushed model   : (\S+)", result.stdout).group(1))


def test_the_default_run_scores_the_readmes_headline(default_run):
    out, _ = default_run
    assert "rows per split : train 65,336, eval 15,778, test 18,886" in out
    assert "blessed        : yes" in out and "pushed model   : " in out
    rmse = float(re.search(r"test RMSE      : ([\d.]+)", out).group(1))
    ndcg = float(re.search(r"test top-10    : ndcg ([\d.]+)", out).group(1))
    headline = _headline()
    assert rmse == pytest.approx(headline["rmse"], abs=RMSE_NOISE)
    assert ndcg == pytest.approx(headline["ndcg"], abs=NDCG_NOISE)
    # The README's sample output (the same run) says the same.
    sample = float(re.search(r"test RMSE      : ([\d.]+)", README.read_text()).group(1))
    assert sample == headline["rmse"]


def _ndcg_at_10(lists: dict[int, list[int]], relevant: dict[int, set[int]]) -> float:
    """Binary-relevance NDCG@10 averaged over the users of `relevant` (written here, not the product's metrics)."""
    total = 0.0
    for user, movies in relevant.items():
        gain = sum(1 / math.log2(rank + 2) for rank, movie in enumerate(lists[user][:10]) if movie in movies)
        total += gain / sum(1 / math.log2(rank + 2) for rank in range(min(10, len(movies))))
    return total / len(relevant)


def test_the_pushed_models_top_10_beats_most_popular_and_item_knn_on_the_test_split(default_run, ml100k_dir):
    """The time split's test users (mostly new: their ratings came after the model's data) and their test-period
    movies; each list leaves out what the user rated before the test period. Item-kNN: cosine similarity over
    the train + eval ratings, most popular for a user without any."""
    import tensorflow as tf

    from transform import features as f

    raw = np.loadtxt(ml100k_dir / "u.data", dtype=np.int64).reshape(-1, 4)
    low, high = raw[:, 3].min(), raw[:, 3].max()
    test_period = raw[:, 3] >= low + 0.8 * (high - low)  # ExampleGen's time split: 60/20/20 of the time range
    before, after = raw[~test_period], raw[test_period]
    relevant: dict[int, set[int]] = {}
    for user, movie in after[:, :2]:
        relevant.setdefault(int(user), set()).add(int(movie))
    users, user_row = np.unique(before[:, 0], return_inverse=True)
    movies, movie_column = np.unique(before[:, 1], return_inverse=True)
    rated = np.zeros((len(users), len(movies)))
    rated[user_row, movie_column] = 1.0
    counts = rated.sum(axis=0)
    norms = np.sqrt(counts)
    similarity = (rated.T @ rated) / np.maximum(np.outer(norms, norms), 1e-9)
    np.fill_diagonal(similarity, 0.0)
    row_of = {int(u): i for i, u in enumerate(users)}

    def top(scores: np.ndarray, seen: np.ndarray) -> list[int]:
        return [int(movies[i]) for i in np.argsort(-np.where(seen > 0, -np.inf, scores), kind="stable")[:10]]

    popular, knn = {}, {}
    for user in relevant:
        seen = rated[row_of[user]] if user in row_of else np.zeros(len(movies))
        popular[user] = top(counts, seen)
        knn[user] = top(seen @ similarity + 1e-6 * counts, seen) if seen.any() else popular[user]

    model = tf.saved_model.load(str(default_run[1]))
    ours, ids = {}, sorted(relevant)
    for start in range(0, len(ids), 128):
        batch = ids[start : start + 128]
        out = model.signatures[f.RECOMMEND_SIGNATURE](
            user_id=tf.constant([str(u) for u in batch]),
            recent_movies=tf.zeros([len(batch), 0], tf.string),
            recent_ratings=tf.zeros([len(batch), 0], tf.float32),
            k=tf.constant(10),
            diversity=tf.constant(0.0),
        )
        for user, listed in zip(batch, out[f.OUT_MOVIE_IDS].numpy(), strict=True):
            ours[user] = [int(m) for m in listed if m]
    figures = {
        name: _ndcg_at_10(lists, relevant) for name, lists in (("ours", ours), ("popular", popular), ("knn", knn))
    }
    print(figures)
    assert figures["ours"] > figures["popular"] and figures["ours"] > figures["knn"]
    reported = float(re.search(r"test top-10    : ndcg ([\d.]+)", default_run[0]).group(1))
    assert figures["ours"] == pytest.approx(reported, abs=0.02)  # the RankingEvaluator's figure, recomputed
