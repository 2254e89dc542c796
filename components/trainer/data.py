"""Datasets of transformed examples for the Trainer and Tuner."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from components.trainer.model import Vocabularies
from transform import features as f


def make_dataset(
    file_pattern: list[str],
    data_accessor: tfx.components.DataAccessor,
    tft_output: tft.TFTransformOutput,
    batch_size: int,
    shuffle: bool,
    seed: int,
    shuffle_buffer: int = 10_000,
) -> tf.data.Dataset:
    """(transformed features, label) batches; one pass over the data per epoch (shuffled through a buffer of
    `shuffle_buffer` examples)."""
    return data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(
            batch_size=batch_size,
            label_key=f.LABEL_XF,
            shuffle=shuffle,
            shuffle_buffer_size=shuffle_buffer,
            shuffle_seed=seed,
            num_epochs=1,
        ),
        tft_output.transformed_metadata.schema,
    )


def train_and_eval(
    fn_args: tfx.components.FnArgs,
    tft_output: tft.TFTransformOutput,
    batch_size: int,
    seed: int,
    cache_dir: str,
    unread: tuple[str, ...] = (),
) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """The train dataset (shuffled once, through the reader's buffer) and the eval dataset that the Trainer/Tuner
    were given, each `cached` under `cache_dir`; `epochs_of` batches them."""
    return tuple(
        cached(files, fn_args, tft_output, batch_size, shuffle, seed, os.path.join(cache_dir, name), unread)
        for name, files, shuffle in (("train", fn_args.train_files, True), ("eval", fn_args.eval_files, False))
    )


def cached(
    files: list[str],
    fn_args: tfx.components.FnArgs,
    tft_output: tft.TFTransformOutput,
    batch_size: int,
    shuffle: bool,
    seed: int,
    path: str,
    unread: tuple[str, ...] = (),
) -> tf.data.Dataset:
    """`make_dataset` of `files` without the `unread` features, parsed once into the cache file `path`."""
    dataset = make_dataset(files, fn_args.data_accessor, tft_output, batch_size, shuffle, seed)
    return parsed_once(without(dataset, unread), path)


def without(dataset: tf.data.Dataset, names: tuple[str, ...]) -> tf.data.Dataset:
    """(features, label) batches without the features `names`."""
    if not names:
        return dataset
    return dataset.map(lambda features, label: ({k: v for k, v in features.items() if k not in names}, label))


# An epoch reshuffles the order of the cached batches through a buffer of this many: memory holds that many
# batches, not the data.
SHUFFLED_BATCHES = 64


def parsed_once(dataset: tf.data.Dataset, path: str) -> tf.data.Dataset:
    """`dataset`'s batches written to the file `path` by its first complete pass (tf.data's file cache) and read
    back from it by every later one: the gzipped tf.Examples are decompressed and parsed once, not once per epoch
    (at 1M ratings the parse was 15 s of a 23 s epoch), and memory holds no more than the batches in flight.
    Finish one pass (e.g. `vocabularies`) before starting another: tf.data keeps one writer per cache file."""
    return dataset.cache(path)


def scratch_dir(prefix: str) -> str:
    """A local directory for `parsed_once` caches, removed when the process exits (pipeline roots may be remote,
    where a cache would cost more than the parse it saves). For caches needed after the caller returns (the
    Tuner's, read by the search TFX runs after `tuner_fn`); the Trainer's live in a TemporaryDirectory."""
    path = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, path, True)
    return path


def epochs_of(cached: tf.data.Dataset, batch_size: int, shuffle: bool, seed: int) -> tf.data.Dataset:
    """Batches of `batch_size` consecutive rows of `cached` (tf.data's rebatch, no per-row work); with `shuffle`,
    in a new order every epoch (SHUFFLED_BATCHES at a time). Rows were shuffled once, when first read."""
    batches = cached.rebatch(batch_size)
    if shuffle:
        batches = batches.shuffle(SHUFFLED_BATCHES, seed=seed, reshuffle_each_iteration=True)
    return batches.prefetch(tf.data.AUTOTUNE)


def batch_size_for(rows: int, base: int, epoch_steps: int) -> int:
    """The rating model's batch size: `base` doubled until an epoch over `rows` takes at most `epoch_steps` steps,
    so an epoch's step count stops growing with the data (TrainerConfig.ranker_epoch_steps)."""
    batch = base
    while -(-rows // batch) > epoch_steps:
        batch *= 2
    return batch


SAMPLE_BUCKETS = 1_000_000  # user_sample's resolution: a fraction is kept to 1e-6
READ_BATCH = 4096  # batches of a pass that only reads (counting, sampling), not of training


def count_rows(dataset: tf.data.Dataset) -> int:
    """The rows of a (features, label) batch dataset (one pass)."""
    return int(dataset.reduce(tf.constant(0, tf.int64), lambda n, batch: n + tf.size(batch[1], out_type=tf.int64)))


def user_sample(dataset: tf.data.Dataset, fraction: float, seed: int) -> tf.data.Dataset:
    """The rows (unbatched) of a seeded sample of users: a user is in when the hash of `seed` and its id falls
    under `fraction`, so every split sampled with one seed keeps the same users, each with all its rows
    (a user's history features stay as dense as in the full data). Deterministic for a seed."""
    threshold = tf.constant(int(round(fraction * SAMPLE_BUCKETS)), tf.int64)

    def select(features: dict, label: tf.Tensor) -> tuple[dict, tf.Tensor]:
        users = tf.strings.join([str(seed), tf.reshape(features[f.USER_ID], [-1])], separator=":")
        kept = tf.strings.to_hash_bucket_fast(users, SAMPLE_BUCKETS) < threshold
        return {name: tf.boolean_mask(value, kept) for name, value in features.items()}, tf.boolean_mask(label, kept)

    return dataset.map(select).unbatch()


def sampled_dataset(
    file_pattern: list[str],
    data_accessor: tfx.components.DataAccessor,
    tft_output: tft.TFTransformOutput,
    batch_size: int,
    shuffle: bool,
    seed: int,
    fraction: float,
    path: str,
) -> tf.data.Dataset:
    """(transformed features, label) batches of `user_sample(fraction, seed)` of the files' rows, shuffled once
    when `shuffle` (the rows of one user are stored together) and cached in the file `path` (`parsed_once`);
    `epochs_of` reshuffles the batches' order per epoch."""
    read = make_dataset(file_pattern, data_accessor, tft_output, READ_BATCH, False, seed)
    rows = user_sample(read, fraction, seed)
    if shuffle:
        rows = rows.shuffle(10_000, seed=seed, reshuffle_each_iteration=False)
    return parsed_once(rows.batch(batch_size), path)


def collect(dataset: tf.data.Dataset, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The `names` columns (and the label, as features.RATING) of every (features, label) batch, concatenated."""
    names = tuple(dict.fromkeys(names))
    columns: dict[str, list[np.ndarray]] = {name: [] for name in (*names, f.RATING)}
    for features, label in dataset.as_numpy_iterator():
        for name in names:
            columns[name].append(features[name])
        columns[f.RATING].append(np.reshape(label, [-1]))
    return {name: np.concatenate(parts) for name, parts in columns.items()}


def vocabularies(tft_output: tft.TFTransformOutput, train: tf.data.Dataset) -> Vocabularies:
    """Vocabulary sizes from Transform, the mean training label and the training rows (one pass over `train`)."""
    total, count = train.reduce(
        (tf.constant(0.0, tf.float64), tf.constant(0, tf.int64)),
        lambda acc, batch: (
            acc[0] + tf.reduce_sum(tf.cast(batch[1], tf.float64)),
            acc[1] + tf.size(batch[1], out_type=tf.int64),
        ),
    )
    if int(count) == 0:
        raise ValueError("the train split is empty")
    made = tft_output.transformed_feature_spec()  # without user attributes in releases lacking them
    return Vocabularies(
        sizes={
            name: tft_output.vocabulary_size_by_name(vocab) for name, vocab in f.VOCAB_FEATURES.items() if name in made
        },
        genres=tft_output.vocabulary_size_by_name(f.GENRES_VOCAB),
        label_mean=float(total) / int(count),
        dense=f.present(f.DENSE_FLOAT_FEATURES, made),
        train_rows=int(count),
    )


def rating_range(tft_output: tft.TFTransformOutput) -> tuple[float, float]:
    """The label's range in the schema Transform was given (0.5..5 in half-star releases, else 1..5)."""
    [rating] = [feature for feature in tft_output.raw_metadata.schema.feature if feature.name == f.RATING]
    domain = rating.float_domain
    return (domain.min if domain.HasField("min") else f.RATING_MIN), (
        domain.max if domain.HasField("max") else f.RATING_MAX
    )
