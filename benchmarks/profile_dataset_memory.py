"""Memory and time of one epoch of the retrieval model's profile examples, shuffled vs in order, side by side.

    python benchmarks/profile_dataset_memory.py [--rows 200000,800000]

Each row count runs in a fresh process: random rows in the Trainer's layout (N/100 users, N/200 movies), one pass
over `profile_dataset` in batches of 1,024 with a seed (shuffled, as training reads it) and without one (in order,
as evaluation reads it). Prints the process's resident memory growth per row and the pass's seconds. The in-order
pass is the reference: what holding the rows as tensors costs, before any shuffling.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere


def one_pass(rows: int, shuffled: bool) -> str:
    """`bytes-per-row seconds` of one epoch, measured in this process."""
    import numpy as np
    import psutil

    from components.trainer.retrieval_training import profile_dataset
    from transform import features as f

    rng = np.random.default_rng(0)
    users, movies = rows // 100, rows // 200
    queries = {
        f.PROFILE_MOVIES: rng.integers(-1, movies, (users, f.MAX_PROFILE_MOVIES)),
        f.PROFILE_DEVIATIONS: rng.normal(size=(users, f.MAX_PROFILE_MOVIES)).astype("float32"),
        f.USER_MEAN_XF: rng.normal(size=users).astype("float32"),
    }
    candidates = {
        f.MOVIE_ID_XF: rng.integers(0, movies, (rows, 1)),
        f.MOVIE_GENRES_XF: rng.integers(-1, 18, (rows, f.MAX_GENRES)),
        f.MOVIE_TITLE_TOKENS_XF: rng.integers(-1, f.TITLE_HASH_BUCKETS, (rows, f.MAX_TITLE_TOKENS)),
        f.MOVIE_YEAR_XF: rng.normal(size=(rows, 1)).astype("float32"),
        f.MOVIE_YEAR_MISSING_XF: np.zeros((rows, 1), "float32"),
    }
    process = psutil.Process()
    before = process.memory_info().rss
    dataset = profile_dataset(queries, rng.integers(0, users, rows), candidates, 1024, 0 if shuffled else None)
    started, peak = time.monotonic(), before
    for step, _ in enumerate(dataset):
        if step % 50 == 0:
            peak = max(peak, process.memory_info().rss)
    peak = max(peak, process.memory_info().rss)
    return f"{(peak - before) / rows:.0f} {time.monotonic() - started:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="200000,800000", help="Comma-separated row counts.")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # ROWS shuffled|ordered: the child process
    args = parser.parse_args()
    if args.one:
        print(one_pass(int(args.one[0]), args.one[1] == "shuffled"))
        return
    print("| rows | shuffled: bytes a row | s | in order: bytes a row | s |")
    print("|---|---|---|---|---|")
    for rows in (int(n) for n in args.rows.split(",")):
        cells = []
        for mode in ("shuffled", "ordered"):
            out = subprocess.run(
                [sys.executable, __file__, "--one", str(rows), mode], capture_output=True, text=True, check=True
            )
            cells += out.stdout.split()[-2:]
        print(f"| {rows:,} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
