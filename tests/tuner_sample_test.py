"""The Tuner's seeded sample of users (components/trainer/data.py user_sample, components/tuner/tuner.py).

Real tf.data pipelines over batches shaped like the transformed examples: (features with the raw user id, label).
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np
import pytest
import tensorflow as tf

from components.trainer import data
from components.tuner.tuner import sample_fraction
from transform import features as f

USERS = 3000


def split(name: str, rows_per_user: int, seed: int) -> tf.data.Dataset:
    """A split's batches: every user USERS ids long, `rows_per_user` rows each, a row id naming the split."""
    rng = np.random.default_rng(seed)
    users = np.repeat([f"{u}".encode() for u in range(USERS)], rows_per_user)
    rows = np.array([f"{name}-{i}".encode() for i in range(len(users))])
    features = {
        f.USER_ID: users.reshape(-1, 1),
        "row": rows.reshape(-1, 1),
        "prior": rng.integers(0, 9, (len(users), 5)),
    }
    labels = rng.uniform(1, 5, (len(users), 1)).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(512)


def rows_of(dataset: tf.data.Dataset) -> list[tuple[bytes, bytes]]:
    return [(features[f.USER_ID][0], features["row"][0]) for features, _ in dataset.as_numpy_iterator()]


def test_the_sample_is_the_same_for_a_seed_keeps_whole_users_and_has_about_the_asked_size():
    train = split("train", 4, 0)
    first, again = rows_of(data.user_sample(train, 0.25, seed=7)), rows_of(data.user_sample(train, 0.25, seed=7))
    assert first == again  # deterministic
    users = {user for user, _ in first}
    assert 0.21 * USERS < len(users) < 0.29 * USERS
    assert len(first) == 4 * len(users)  # every kept user with all its rows
    other = {user for user, _ in rows_of(data.user_sample(train, 0.25, seed=8))}
    assert len(users & other) < 0.5 * len(users)  # another seed draws other users
    assert len(rows_of(data.user_sample(train, 1.0, seed=7))) == 4 * USERS


def test_a_train_sample_holds_train_rows_only_and_eval_is_sampled_over_the_same_users():
    train_sample = rows_of(data.user_sample(split("train", 3, 0), 0.3, seed=42))
    eval_sample = rows_of(data.user_sample(split("eval", 1, 1), 0.3, seed=42))
    assert all(row.startswith(b"train-") for _, row in train_sample)
    assert all(row.startswith(b"eval-") for _, row in eval_sample)
    assert {user for user, _ in eval_sample} == {user for user, _ in train_sample}


def test_the_fraction_keeps_about_the_configured_ratings_and_everything_below_it():
    assert sample_fraction(65_000, 250_000) == 1.0
    assert sample_fraction(600_000, 250_000) == pytest.approx(250_000 / 600_000)
    assert sample_fraction(0, 250_000) == 1.0


def test_count_rows_counts_every_row_of_every_batch():
    assert data.count_rows(split("train", 2, 0)) == 2 * USERS
