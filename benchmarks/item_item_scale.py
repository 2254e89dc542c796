"""What the item-item scorer costs as the release grows: fit time and the bytes it adds to the pushed model.

    python benchmarks/item_item_scale.py [--sizes 100000:943:1682,1000000:6040:3706,25000000:162541:59047]

Each size is ratings:users:movies of a generated release (movie popularity Zipf-like, as MovieLens's; each user
rates a log-normal number of distinct movies). Prints, per size and the defaults of TrainerConfig: the movies
that take part (item_item_movies most rated), the seconds of one EASE fit (Gram matrix, inverse, top neighbours:
the Trainer does len(REGULARIZATIONS) on train plus one on train + eval) and the neighbours' bytes in the
SavedModel. A benchmark: it prints figures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from components.trainer import item_item  # noqa: E402
from pipeline.config import TrainerConfig  # noqa: E402


def generated(ratings: int, users: int, movies: int, seed: int = 0):
    """A binary users × movies matrix with about `ratings` distinct (user, movie) pairs."""
    rng = np.random.default_rng(seed)
    per_user = rng.lognormal(0.0, 1.0, users)
    per_user = np.maximum(1, np.round(per_user / per_user.sum() * ratings)).astype(np.int64)
    popularity = 1.0 / np.arange(1, movies + 1) ** 0.9
    popularity /= popularity.sum()
    user_index = np.repeat(np.arange(users), per_user)
    movie_index = rng.choice(movies, size=len(user_index), p=popularity)
    return item_item.rated_matrix(user_index, movie_index, (users, movies))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000:943:1682,1000000:6040:3706,25000000:162541:59047")
    args = parser.parse_args()
    config = TrainerConfig()
    print(f"item_item_movies {config.item_item_movies}, item_item_neighbours {config.item_item_neighbours}\n")
    print("| ratings | users | movies | pairs | movies with neighbours | one fit | neighbours in the model |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        ratings, users, movies = (int(x) for x in size.split(":"))
        rated = generated(ratings, users, movies)
        started = time.perf_counter()
        fitted = item_item.fit(rated, 500.0, config.item_item_neighbours, config.item_item_movies)
        seconds = time.perf_counter() - started
        kept = int((fitted.rows < len(fitted.indices)).sum())
        print(
            f"| {ratings:,} | {users:,} | {movies:,} | {rated.nnz:,} | {kept:,} | {seconds:.1f} s "
            f"| {fitted.nbytes() / 1e6:.1f} MB |",
            flush=True,
        )


if __name__ == "__main__":
    main()
