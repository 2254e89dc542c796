"""Beam glue for the MovieLens ExampleGen: read, validate, join, split by time.

Called by the TFX ExampleGen launcher (see `component.py`). Parsing rules live in
`movielens.py`; this module only moves records through Beam so that the same code
runs on the DirectRunner and on Dataflow/Flink/Spark.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from google.protobuf import json_format, struct_pb2
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.proto import example_gen_pb2

from components.example_gen import movielens

MAX_REPORTED_ERRORS = 20
_ERRORS = "errors"


def make_custom_config(split_fractions: list[float], code_fingerprint: str):
    """The ExampleGen `custom_config` proto carrying our typed settings.

    Split names are not repeated here: they come from the component's input_config.
    """
    struct = struct_pb2.Struct()
    struct.update({"split_fractions": list(split_fractions), "code_fingerprint": code_fingerprint})
    config = example_gen_pb2.CustomConfig()
    config.custom_config.Pack(struct)
    return config


def _time_split(exec_properties: dict[str, Any]) -> movielens.TimeSplit:
    """Split names from input_config, fractions from custom_config."""
    input_config = example_gen_pb2.Input()
    json_format.Parse(exec_properties["input_config"], input_config)
    config = example_gen_pb2.CustomConfig()
    json_format.Parse(exec_properties["custom_config"], config)
    struct = struct_pb2.Struct()
    config.custom_config.Unpack(struct)
    fractions = json_format.MessageToDict(struct)["split_fractions"]
    return movielens.TimeSplit(tuple(split.name for split in input_config.splits), tuple(fractions))


def _read_numbered_lines(path: str) -> Iterator[movielens.RawLine]:
    name = os.path.basename(path)
    with FileSystems.open(path) as handle:
        data = handle.read().decode(movielens.ENCODING)
    for line_no, text in enumerate(data.splitlines(), start=1):
        yield movielens.RawLine(name, line_no, text)


class _Parse(beam.DoFn):
    """Applies a movielens.parse_* function; refused lines go to the `errors` output."""

    def __init__(self, parse):
        self._parse = parse

    def process(self, line: movielens.RawLine):
        try:
            yield self._parse(line)
        except movielens.MalformedRecordError as error:
            yield beam.pvalue.TaggedOutput(_ERRORS, movielens.Rejection(line.file, line.line_no, str(error), line.text))


class _Join(beam.DoFn):
    """Joins a (line, Rating) with its user and movie; unknown ids are errors."""

    def process(self, item, users: dict, movies: dict):
        line, rating = item
        user, movie = users.get(rating.user_id), movies.get(rating.movie_id)
        if user is None or movie is None:
            what = f"unknown user id {rating.user_id}" if user is None else f"unknown movie id {rating.movie_id}"
            yield beam.pvalue.TaggedOutput(
                _ERRORS, movielens.Rejection(line.file, line.line_no, f"{what} (not in metadata)", line.text)
            )
            return
        yield rating, movielens.to_example(rating, user, movie)


class _ErrorSummary(beam.CombineFn):
    """Counts rejections and keeps the first few in file/line order."""

    def create_accumulator(self):
        return 0, []

    def add_input(self, accumulator, rejection):
        count, sample = accumulator
        return count + 1, sorted([*sample, rejection], key=lambda r: (r.file, r.line_no))[:MAX_REPORTED_ERRORS]

    def merge_accumulators(self, accumulators):
        total, merged = 0, []
        for count, sample in accumulators:
            total += count
            merged.extend(sample)
        return total, sorted(merged, key=lambda r: (r.file, r.line_no))[:MAX_REPORTED_ERRORS]

    def extract_output(self, accumulator):
        return accumulator


def _raise_on_errors(summary) -> None:
    count, sample = summary
    if count:
        lines = "\n  ".join(str(rejection) for rejection in sample)
        more = f"\n  ... and {count - len(sample)} more" if count > len(sample) else ""
        raise movielens.MalformedRecordError(
            f"{count} malformed MovieLens record(s); nothing was written:\n  {lines}{more}"
        )


def _duplicates(records, key: str, file: str):
    return (
        records
        | f"Key{file}" >> beam.Map(lambda record: (getattr(record, key), 1))
        | f"Count{file}" >> beam.CombinePerKey(sum)
        | f"Dups{file}" >> beam.Filter(lambda kv: kv[1] > 1)
        | f"DupError{file}"
        >> beam.Map(lambda kv: movielens.Rejection(file, 0, f"id {kv[0]} appears {kv[1]} times", ""))
    )


class ReadMovieLens(beam.PTransform):
    """Reads a MovieLens-100k directory into one PCollection of tf.Examples per split.

    Fails the pipeline (listing file, line and reason) if any record is malformed.
    """

    def __init__(self, input_base: str, split: movielens.TimeSplit):
        super().__init__()
        self._input_base = input_base
        self._split = split

    def _lines(self, pipeline, file: str):
        """The numbered lines of one raw file, spread over workers."""
        return (
            pipeline
            | f"Path[{file}]" >> beam.Create([os.path.join(self._input_base, file)])
            | f"Read[{file}]" >> beam.FlatMap(_read_numbered_lines)
            | f"Reshuffle[{file}]" >> beam.Reshuffle()
        )

    def _parse(self, pipeline, file: str, parse):
        return self._lines(pipeline, file) | f"Parse[{file}]" >> beam.ParDo(_Parse(parse)).with_outputs(
            _ERRORS, main="parsed"
        )

    def expand(self, pipeline):
        ml = movielens
        users = self._parse(pipeline, ml.USERS_FILE, ml.parse_user)
        movies = self._parse(pipeline, ml.MOVIES_FILE, ml.parse_movie)
        # Ratings keep their line, so join errors can name it.
        parsed = self._parse(pipeline, ml.RATINGS_FILE, lambda line: (line, ml.parse_rating(line)))
        joined = parsed.parsed | "Join" >> beam.ParDo(
            _Join(),
            users=beam.pvalue.AsDict(users.parsed | "UserKV" >> beam.Map(lambda u: (u.user_id, u))),
            movies=beam.pvalue.AsDict(movies.parsed | "MovieKV" >> beam.Map(lambda m: (m.movie_id, m))),
        ).with_outputs(_ERRORS, main="joined")

        _ = (
            (
                users[_ERRORS],
                movies[_ERRORS],
                parsed[_ERRORS],
                joined[_ERRORS],
                _duplicates(users.parsed, "user_id", ml.USERS_FILE),
                _duplicates(movies.parsed, "movie_id", ml.MOVIES_FILE),
            )
            | "AllErrors" >> beam.Flatten()
            | "SummarizeErrors" >> beam.CombineGlobally(_ErrorSummary())
            | "FailOnErrors" >> beam.Map(_raise_on_errors)
        )

        timestamps = joined.joined | "Timestamps" >> beam.Map(lambda pair: pair[0].timestamp)
        t_min = beam.pvalue.AsSingleton(timestamps | "Min" >> beam.CombineGlobally(min))
        t_max = beam.pvalue.AsSingleton(timestamps | "Max" >> beam.CombineGlobally(max))
        split = self._split
        parts = joined.joined | "SplitByTime" >> beam.Partition(
            lambda pair, n, lo, hi: split.index(pair[0].timestamp, lo, hi), len(split.names), t_min, t_max
        )
        return {
            name: part | f"Example[{name}]" >> beam.Map(lambda pair: pair[1])
            for name, part in zip(split.names, parts, strict=True)
        }


class Executor(BaseExampleGenExecutor):
    """ExampleGen executor for the raw MovieLens-100k release (a directory of u.* files)."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        raise NotImplementedError("MovieLens ExampleGen reads all splits at once; see GenerateExamplesByBeam")

    def GenerateExamplesByBeam(self, pipeline: beam.Pipeline, exec_properties: dict[str, Any]):
        split = _time_split(exec_properties)
        return pipeline | "ReadMovieLens" >> ReadMovieLens(exec_properties["input_base"], split)
