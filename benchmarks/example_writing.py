"""ExampleGen's per-rating cost of writing one tf.Example: `history.to_example` on a rating with full histories
(the last 50 movies of its user and 50 raters of its movie, as at scale), and its serialization.

    python benchmarks/example_writing.py [--repeats 20000]

Prints microseconds per rating. Run it at two commits for a before/after (the same machine, alone).
"""

from __future__ import annotations

import argparse
import os
import timeit

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from components.example_gen import history  # noqa: E402
from components.example_gen.movielens import Movie, Rating, User  # noqa: E402
from transform import features  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20_000)
    args = parser.parse_args()
    movies, raters = features.MAX_PRIOR_MOVIES, features.MAX_PRIOR_RATERS
    rating = Rating("123", "456", 4.0, 1_000_000)
    movie = Movie("456", "Toy Story (1995)", 1995, ("Animation", "Children's", "Comedy"))
    user = User("123", 25, "M", "student", "12345")
    user_history = history.UserHistory(
        10, 40.0, 170.0, 3, 12.0, 10, 40.0, 3600, 8, 1.5,
        tuple(str(1000 + i) for i in range(movies)), tuple(float(1 + i % 5) for i in range(movies)),
    )  # fmt: skip
    movie_history = history.MovieHistory(
        100, 400.0, tuple(str(5000 + i) for i in range(raters)), tuple(float(1 + i % 5) for i in range(raters))
    )

    def write() -> bytes:
        return history.to_example(rating, user, movie, user_history, movie_history).SerializeToString()

    seconds = timeit.timeit(write, number=args.repeats)
    print(f"to_example + serialize: {seconds / args.repeats * 1e6:.1f} µs a rating ({len(write())} bytes)")


if __name__ == "__main__":
    main()
