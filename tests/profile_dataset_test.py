"""The retrieval model's profile examples: every training rating once an epoch, in a new order each epoch,
the target movie masked out of the user's profile."""

import numpy as np
import tensorflow as tf

from components.trainer.retrieval_training import profile_dataset
from transform import features as f

ROWS = 1000
USERS = 40


def inputs(seed: int = 0):
    rng = np.random.default_rng(seed)
    queries = {
        f.PROFILE_MOVIES: rng.integers(-1, 30, (USERS, 5)),
        f.PROFILE_DEVIATIONS: rng.normal(size=(USERS, 5)).astype("float32"),
        f.USER_MEAN_XF: np.arange(USERS, dtype="float32"),  # the user's index, to check the join
    }
    users = rng.integers(0, USERS, ROWS)
    movies = {
        f.MOVIE_ID_XF: np.arange(ROWS).reshape(-1, 1),  # the row's index, to check the order
        f.MOVIE_GENRES_XF: rng.integers(-1, 18, (ROWS, 6)),
        f.MOVIE_TITLE_TOKENS_XF: rng.integers(-1, 4096, (ROWS, 8)),
        f.MOVIE_YEAR_XF: rng.normal(size=(ROWS, 1)).astype("float32"),
        f.MOVIE_YEAR_MISSING_XF: np.zeros((ROWS, 1), "float32"),
    }
    return queries, users, movies


def epoch(dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The rows (by movie id) in the order one pass yields them, and each row's user (by its mean)."""
    batches = list(dataset.as_numpy_iterator())
    return (
        np.concatenate([b[f.MOVIE_ID_XF] for b in batches]),
        np.concatenate([b[f.USER_MEAN_XF] for b in batches]).astype(int),
    )


def test_each_epoch_yields_every_row_once_in_a_new_order_and_the_order_follows_the_seed():
    queries, users, movies = inputs()
    tf.keras.utils.set_random_seed(7)
    dataset = profile_dataset(queries, users, movies, 64, seed=7)
    first, first_users = epoch(dataset)
    second, _ = epoch(dataset)
    assert sorted(first) == sorted(second) == list(range(ROWS))
    assert not np.array_equal(first, second)
    assert not np.array_equal(first, np.arange(ROWS))
    np.testing.assert_array_equal(first_users, users[first])  # each row keeps its user
    tf.keras.utils.set_random_seed(7)
    again, _ = epoch(profile_dataset(queries, users, movies, 64, seed=7))
    np.testing.assert_array_equal(again, first)


def test_without_a_seed_the_rows_come_in_order_with_the_target_masked_out_of_the_profile():
    queries, users, movies = inputs()
    batches = list(profile_dataset(queries, users, movies, 64, seed=None).as_numpy_iterator())
    order = np.concatenate([b[f.MOVIE_ID_XF] for b in batches])
    np.testing.assert_array_equal(order, np.arange(ROWS))
    profiles = np.concatenate([b[f.PROFILE_MOVIES] for b in batches])
    deviations = np.concatenate([b[f.PROFILE_DEVIATIONS] for b in batches])
    expected = queries[f.PROFILE_MOVIES][users]
    hit = expected == order[:, None]
    assert hit.any()  # the data has rows whose movie is in the user's profile
    np.testing.assert_array_equal(profiles, np.where(hit, -1, expected))
    np.testing.assert_array_equal(deviations, np.where(hit, 0.0, queries[f.PROFILE_DEVIATIONS][users]))
