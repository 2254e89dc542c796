"""TFX's readers of TFRecord files, spread over the partitions of a Flink run.

StatisticsGen, Transform and the Evaluator read their examples through tfx_bsl, which reads each file pattern with
one `beam.io.ReadFromTFRecord` (`tfx_bsl.tfxio.record_based_tfxio.ReadTfRecord`). On a portable runner that is an
Impulse followed by the source's splittable DoFn, and Beam's Flink batch runner does not spread a splittable DoFn's
restrictions over partitions: the whole read runs in the one partition that holds the Impulse element, as one
bundle, whose output the runner holds until the bundle closes (local_cluster.py says why). Measured at 2M ratings
on the local cluster: 1.38 GB of live byte arrays in the TaskManager while Transform read its input, however many
partitions the step had.

`read_tfrecords` spreads the files instead: it lists the files of each pattern, groups them by file (a
GroupByKey, which Flink partitions by key, one file per group) and reads each file where its group landed.
`spread_over_partitions` makes it tfx_bsl's reader for the length of a Flink run. The records read are the same;
only their order differs, which no reader depends on (statistics, analyzers and metrics are combiners). The
DirectRunner keeps tfx_bsl's own reader: there a shuffle would hold every file name and nothing would be gained.

Why not `beam.io.ReadAllFromTFRecord` (which tfx_bsl's own TODO names): it spreads its ranges with a `Reshuffle`,
and tf.Transform deep-copies its input's read up to the nearest GroupByKey, which is the one inside that
`Reshuffle`; the portable runner keeps `Reshuffle` whole, so the copy consumed a collection nothing produced
(`KeyError: 'ref_PCollection_…'` when Transform's pipeline was optimized). With a GroupByKey of its own, the copy
starts after it: Transform's two passes share the list of files and each reads the files itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import apache_beam as beam
import tensorflow as tf
from apache_beam.io.filesystems import FileSystems
from tfx_bsl.tfxio import record_based_tfxio

# A file's compression from its name, as Beam's CompressionTypes.AUTO reads it, for the kinds tf.data reads.
_COMPRESSION_BY_SUFFIX = {".gz": "GZIP", ".zlib": "ZLIB"}
_UNREADABLE_SUFFIXES = (".bz2", ".deflate", ".zst", ".lzma", ".snappy")
_BATCH = 1024


def _files(pattern: str) -> list[str]:
    """The files matching `pattern`; a pattern that matches none is an error (as ReadFromTFRecord's validation)."""
    paths = sorted(metadata.path for metadata in FileSystems.match([pattern])[0].metadata_list)
    if not paths:
        raise FileNotFoundError(f"no TFRecord file matches {pattern}")
    return paths


def _records(path: str) -> Iterator[bytes]:
    """The records of one TFRecord file (compressed by its suffix, as TFX writes them)."""
    if path.endswith(_UNREADABLE_SUFFIXES):
        raise ValueError(f"{path}: only uncompressed, .gz and .zlib TFRecord files are read on Flink")
    compression = next((kind for suffix, kind in _COMPRESSION_BY_SUFFIX.items() if path.endswith(suffix)), "")
    # In batches: tf.data's per-element cost from Python is 80 µs, a batch's about 4 µs a record (measured).
    for batch in tf.data.TFRecordDataset(path, compression_type=compression).batch(_BATCH).as_numpy_iterator():
        yield from batch


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(bytes)
def read_tfrecords(pipeline: beam.Pipeline, file_pattern: list[str]) -> beam.PCollection:
    """The records of every file matching `file_pattern` (tfx_bsl's ReadTfRecord's signature), each file read in
    the partition its group went to."""
    if not file_pattern:
        raise ValueError("read_tfrecords needs at least one file pattern")
    return (
        pipeline
        | "FilePatterns" >> beam.Create(list(file_pattern), reshuffle=False)
        | "Files" >> beam.FlatMap(_files)
        | "KeyByFile" >> beam.Map(lambda path: (path, None))
        | "SpreadFiles" >> beam.GroupByKey()
        | "ReadFile" >> beam.FlatMap(lambda file_group: _records(file_group[0]))
    )


@contextlib.contextmanager
def spread_over_partitions() -> Iterator[None]:
    """While open, every tfx_bsl TFRecord reader built in this process reads with `read_tfrecords`."""
    saved = record_based_tfxio.ReadTfRecord
    record_based_tfxio.ReadTfRecord = read_tfrecords
    try:
        yield
    finally:
        record_based_tfxio.ReadTfRecord = saved
