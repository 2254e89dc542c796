"""ScaNN vs the exact index (what `recommend` uses): recall@K against exact top-K and speed, on a pushed model's
movie and user vectors and on a synthetic catalogue of 1M vectors; and whether a SavedModel holding a ScaNN
index loads in a TensorFlow-only process (stock TF Serving).

    pip install scann==1.3.2   # pairs with TF 2.16 (pinned in constraints.txt; not needed by the pipeline)
    python benchmarks/scann_benchmark.py --model artifacts/serving/movielens_ranker/<version> \
        --users artifacts/data/ml-100k/u.data [--synthetic 1000000] [--k 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def exact(queries: np.ndarray, database: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """Exact top-k by dot product (in chunks of queries) and the seconds it took."""
    started, result = time.perf_counter(), []
    for start in range(0, len(queries), 256):
        scores = queries[start : start + 256] @ database.T
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1)
        result.append(np.take_along_axis(top, order, 1))
    return np.concatenate(result), time.perf_counter() - started


def with_scann(queries: np.ndarray, database: np.ndarray, k: int, leaves: int, search: int, reorder: int):
    """(neighbours, build seconds, search seconds) with a ScaNN tree + asymmetric hashing index."""
    import scann

    started = time.perf_counter()
    builder = scann.scann_ops_pybind.builder(database, k, "dot_product")
    if leaves:
        builder = builder.tree(
            num_leaves=leaves, num_leaves_to_search=search, training_sample_size=min(len(database), 250_000)
        )
    searcher = builder.score_ah(2, anisotropic_quantization_threshold=0.2).reorder(reorder).build()
    built = time.perf_counter() - started
    started = time.perf_counter()
    neighbours, _ = searcher.search_batched(queries, final_num_neighbors=k)
    return neighbours, built, time.perf_counter() - started


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, truth, strict=True)]))


def compare(name: str, queries: np.ndarray, database: np.ndarray, k: int, settings: list[tuple[int, int, int]]):
    truth, exact_seconds = exact(queries, database, k)
    per_1000 = 1000 / len(queries)
    print(f"{name}: {len(database):,} vectors × {database.shape[1]}, {len(queries):,} queries, k={k}")
    print(f"  exact (numpy matmul + top-k): {exact_seconds * per_1000 * 1000:.1f} ms / 1,000 queries")
    for leaves, search, reorder in settings:
        found, built, seconds = with_scann(queries, database, k, leaves, search, reorder)
        print(
            f"  ScaNN leaves={leaves} search={search} reorder={reorder}: recall@{k} {recall(found, truth):.3f}, "
            f"{seconds * per_1000 * 1000:.1f} ms / 1,000 queries ({exact_seconds / seconds:.1f}× exact), "
            f"build {built:.1f} s"
        )


def model_vectors(model_path: str, users_file: Path) -> tuple[np.ndarray, np.ndarray]:
    """(user query vectors, movie vectors) from a pushed model's `recommend` and `catalogue` signatures."""
    import tensorflow as tf

    from transform import features as f

    model = tf.saved_model.load(model_path)
    movies = model.signatures[f.CATALOGUE_SIGNATURE]()[f.OUT_MOVIE_VECTORS].numpy()
    users = sorted({line.split("\t")[0] for line in users_file.read_text().splitlines() if line.strip()})
    out = model.signatures[f.RECOMMEND_SIGNATURE](
        user_id=tf.constant(users), recent_movies=tf.zeros([len(users), 0], tf.string),
        recent_ratings=tf.zeros([len(users), 0]), k=tf.constant(1), diversity=tf.constant(0.0),
    )  # fmt: skip
    return out[f.OUT_QUERY_VECTORS].numpy(), movies


def stock_tensorflow_loads_scann() -> str:
    """Saves a tf.Module with a ScaNN index, then loads it in a process that imports only TensorFlow."""
    import scann
    import tensorflow as tf

    database = np.random.default_rng(0).normal(size=(2000, 16)).astype(np.float32)
    searcher = scann.scann_ops.builder(database, 10, "dot_product").score_brute_force().build()
    module = tf.Module()
    module.state = searcher.serialize_to_module()  # ScaNN's own way to save a searcher (recreated on load)
    path = tempfile.mkdtemp(prefix="scann-savedmodel-")
    tf.saved_model.save(module, path)
    probe = f"import tensorflow as tf\ntf.saved_model.load({path!r})\nprint('loaded')"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    if result.returncode == 0:
        return "loads in a TensorFlow-only process"
    reason = next((line for line in result.stderr.splitlines() if "Op type not registered" in line), "")
    return f"fails in a TensorFlow-only process: {reason.strip()[:160]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="A pushed model directory (with `recommend`).")
    parser.add_argument("--users", type=Path, help="u.data of the data the model was trained on (user ids).")
    parser.add_argument("--synthetic", type=int, default=1_000_000, help="Synthetic catalogue size (0: skip).")
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    if args.model:
        queries, movies = model_vectors(args.model, args.users)
        compare("pushed model", queries, movies, args.k, [(0, 0, 100), (40, 10, 100), (40, 4, 50)])
    if args.synthetic:
        rng = np.random.default_rng(0)
        database = rng.normal(size=(args.synthetic, 32)).astype(np.float32)
        queries = database[rng.choice(args.synthetic, 1000, replace=False)] + rng.normal(size=(1000, 32)).astype(
            np.float32
        )
        compare("synthetic", queries, database, args.k, [(2000, 50, 200), (2000, 100, 500)])
    print(f"SavedModel with a ScaNN index: {stock_tensorflow_loads_scann()}")


if __name__ == "__main__":
    main()
