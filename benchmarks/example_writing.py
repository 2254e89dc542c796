"""ExampleGen's per-rating cost of writing one tf.Example for a rating with full histories (the last 50 movies of
its user and 50 raters of its movie, as at scale): built as a message and serialized (`history.to_example`, what
ExampleGen did before), and encoded with the rest of its user's ratings by tfx_bsl (`history.serialized_examples`,
what it does now), side by side.

    python benchmarks/example_writing.py [--repeats 20000] [--per-user 100]

Prints microseconds per rating. Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import os
import timeit

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402

from components.example_gen import history  # noqa: E402
from components.example_gen.movielens import Movie, Rating, User  # noqa: E402
from transform import features  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20_000)
    parser.add_argument("--per-user", type=int, default=100, help="ratings encoded together (one user's)")
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

    def encode() -> list[bytes]:
        rows = [history.example_values(rating, user, movie, user_history, movie_history)] * args.per_user
        return history.serialized_examples(rows)

    if tf.train.Example.FromString(encode()[0]) != tf.train.Example.FromString(write()):
        raise AssertionError("serialized_examples and to_example wrote different examples")
    message = timeit.timeit(write, number=args.repeats) / args.repeats
    batches = max(1, args.repeats // args.per_user)
    encoded = timeit.timeit(encode, number=batches) / (batches * args.per_user)
    print(f"to_example + serialize: {message * 1e6:.1f} µs a rating ({len(write())} bytes)")
    print(f"serialized_examples, {args.per_user} at once: {encoded * 1e6:.1f} µs a rating ({encoded / message:.2f}×)")


if __name__ == "__main__":
    main()
