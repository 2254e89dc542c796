"""The rating model's data: parsed once into a file cache, rebatched and reshuffled per epoch, and its batch size
and learning rate at scale (components/trainer/data.py parsed_once, epochs_of, batch_size_for; task.scaled).

Real tf.data pipelines over a real gzipped TFRecord file of tf.Examples, parsed as the Trainer parses them.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import math

import numpy as np
import pytest
import tensorflow as tf

from components.trainer import data
from components.trainer.model import Hyperparameters
from components.trainer.task import scaled

ROWS = 1000


@pytest.fixture()
def records(tmp_path) -> str:
    """A gzipped TFRecord file of ROWS tf.Examples: a row id and a label."""
    path = str(tmp_path / "examples.gz")
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for row in range(ROWS):
            example = tf.train.Example(
                features=tf.train.Features(
                    feature={
                        "row": tf.train.Feature(int64_list=tf.train.Int64List(value=[row])),
                        "label": tf.train.Feature(float_list=tf.train.FloatList(value=[row % 5 + 1.0])),
                    }
                )
            )
            writer.write(example.SerializeToString())
    return path


def parsed(path: str, batch_size: int) -> tf.data.Dataset:
    """(features, label) batches parsed from `path`, shuffled once through a buffer, as the reader gives them."""
    spec = {"row": tf.io.FixedLenFeature([], tf.int64), "label": tf.io.FixedLenFeature([], tf.float32)}
    rows = tf.data.TFRecordDataset(path, compression_type="GZIP").shuffle(100, seed=3)
    return (
        rows.batch(batch_size)
        .map(lambda batch: tf.io.parse_example(batch, spec))
        .map(lambda x: ({"row": x["row"]}, x["label"]))
    )


def epoch(dataset: tf.data.Dataset) -> list[list[int]]:
    return [features["row"].tolist() for features, _ in dataset.as_numpy_iterator()]


def test_later_passes_read_the_cache_not_the_examples(records, tmp_path):
    cached = data.parsed_once(parsed(records, 64), str(tmp_path / "cache" / "train"))
    os.makedirs(tmp_path / "cache")
    first = epoch(cached)
    os.remove(records)  # the examples are gone: only the cache can answer now
    assert epoch(cached) == first
    assert sorted(row for batch in first for row in batch) == list(range(ROWS))


def test_epochs_hold_every_row_in_batches_of_the_asked_size_in_a_new_order_each_time(records, tmp_path):
    cached = data.parsed_once(parsed(records, 64), str(tmp_path / "train"))
    data.count_rows(cached)  # the first pass writes the cache
    batches = data.epochs_of(cached, 256, shuffle=True, seed=5)
    one, two = epoch(batches), epoch(batches)
    for batches_of_an_epoch in (one, two):
        assert sorted(row for batch in batches_of_an_epoch for row in batch) == list(range(ROWS))
        assert sorted(len(batch) for batch in batches_of_an_epoch) == [232, 256, 256, 256]  # 1000 = 3 × 256 + 232
    assert one != two  # reshuffled per epoch
    assert [sorted(b) for b in sorted(one)] == [sorted(b) for b in sorted(two)]  # the same batches, shuffled once
    again = data.epochs_of(cached, 256, shuffle=True, seed=5)
    assert epoch(again) == one  # deterministic for a seed


def test_eval_batches_keep_the_read_order(records, tmp_path):
    cached = data.parsed_once(parsed(records, 64), str(tmp_path / "eval"))
    read = [row for batch in epoch(cached) for row in batch]
    assert [row for batch in epoch(data.epochs_of(cached, 128, shuffle=False, seed=5)) for row in batch] == read


@pytest.mark.parametrize(
    "rows, expected",
    [
        (65_336, 256),  # ML-100k's time split: 256 steps an epoch, unchanged
        (262_144, 256),  # exactly 1,024 steps
        (262_145, 512),
        (598_354, 1024),  # 1M generated ratings' train: 585 steps
        (6_000_000, 8192),
        (0, 256),
    ],
)
def test_the_batch_doubles_until_an_epoch_fits_the_step_budget(rows, expected):
    batch = data.batch_size_for(rows, 256, 1024)
    assert batch == expected
    assert math.ceil(rows / batch) <= 1024


def test_the_learning_rate_grows_with_the_square_root_of_the_batch():
    hp = Hyperparameters(0.001, 16, (64, 32), 1e-5, False, 16, 1e-4)
    assert scaled(hp, 256, 256) == hp
    grown = scaled(hp, 1024, 256)
    assert np.isclose(grown.learning_rate, 0.002)
    assert grown.embedding_dim == hp.embedding_dim and grown.layer_sizes == hp.layer_sizes
