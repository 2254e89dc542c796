"""Beam glue for the MovieLens ExampleGen: read, validate, join, split (splits.py), add histories (history.py),
quarantine what is rejected (quarantine.py).

Called by the TFX ExampleGen launcher (see `component.py`). Parsing rules live in
`movielens.py`; this module only moves records through Beam so that the same code
runs on the DirectRunner and on Dataflow/Flink/Spark.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import apache_beam as beam
from google.protobuf import json_format, struct_pb2
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils

from components.example_gen import history, layouts, movielens, quarantine, readers, reading, splits
from components.example_gen.packing import (
    RATING_MOVIE,
    RATING_TIME,
    RATING_USER,
    pack,
    pack_movie_history,
    unpack_movie_history,
)

# Keys of ReadMovieLens' output besides the split names (which cannot start with "!").
REJECTED = "!rejected"
LINE_COUNTS = "!lines"
_ERRORS = "errors"
EXAMPLES_FILE = "data_tfrecord"  # each split's files: data_tfrecord-SSSSS-of-NNNNN.gz, as TFX's own ExampleGen


def make_custom_config(
    split_fractions: list[float],
    code_fingerprint: str,
    max_rejected_fraction: float = quarantine.DEFAULT_MAX_REJECTED_FRACTION,
    split_protocol: str = splits.TIME,
    split_seed: int = 0,
    layout: str = layouts.ML_100K,
):
    """The ExampleGen `custom_config` proto carrying our typed settings.

    Split names are not repeated here: they come from the component's input_config.
    """
    struct = struct_pb2.Struct()
    struct.update(
        {
            "split_fractions": list(split_fractions),
            "code_fingerprint": code_fingerprint,
            "max_rejected_fraction": max_rejected_fraction,
            "split_protocol": split_protocol,
            "split_seed": split_seed,
            "layout": layout,
        }
    )
    config = example_gen_pb2.CustomConfig()
    config.custom_config.Pack(struct)
    return config


def _custom_config(exec_properties: dict[str, Any]) -> dict[str, Any]:
    config = example_gen_pb2.CustomConfig()
    json_format.Parse(exec_properties["custom_config"], config)
    struct = struct_pb2.Struct()
    config.custom_config.Unpack(struct)
    return json_format.MessageToDict(struct)


def _time_split(exec_properties: dict[str, Any]) -> movielens.TimeSplit:
    """Split names from input_config, fractions from custom_config."""
    input_config = example_gen_pb2.Input()
    json_format.Parse(exec_properties["input_config"], input_config)
    fractions = _custom_config(exec_properties)["split_fractions"]
    return movielens.TimeSplit(tuple(split.name for split in input_config.splits), tuple(fractions))


class _Parse(beam.DoFn):
    """Applies a movielens.parse_* function, keeping the line; refused lines go to the `errors` output."""

    def __init__(self, parse):
        self._parse = parse

    def process(self, line: movielens.RawLine):
        result = movielens.parse_or_reject(line, self._parse)
        yield beam.pvalue.TaggedOutput(_ERRORS, result) if isinstance(result, movielens.Rejection) else result


class _KeepFirst(beam.DoFn):
    """(key, [(packed line, packed record), ...]) → the earliest line's (line, record); later ones are duplicates
    (errors). `record_class` unpacks the records."""

    def __init__(self, what: str, record_class: type):
        self._what, self._class = what, record_class

    def process(self, item):
        _, pairs = item
        pairs = [(movielens.RawLine(*line), self._class(*record)) for line, record in pairs]
        kept, duplicates = movielens.keep_first(pairs, self._what)
        yield kept
        for rejection in duplicates:
            yield beam.pvalue.TaggedOutput(_ERRORS, rejection)


class _Join(beam.DoFn):
    """Checks a (line, Rating)'s user and movie exist → the packed Rating; unknown ids are errors.

    Releases without a users file (`users_file` None) have no users to check. The user and movie themselves are
    added when the examples are written (AddHistory), so that they are not copied through every grouping.
    """

    def __init__(self, users_file: str | None, movies_file: str):
        self._users_file, self._movies_file = users_file, movies_file

    def process(self, item, users: dict, movies: dict):
        line, rating = item
        user, movie = users.get(rating.user_id), movies.get(rating.movie_id)
        if user is None and self._users_file:
            error = movielens.MalformedRecordError(
                f"unknown user id {rating.user_id} (not in {self._users_file})", movielens.UNKNOWN_USER
            )
        elif movie is None:
            error = movielens.MalformedRecordError(
                f"unknown movie id {rating.movie_id} (not in {self._movies_file})", movielens.UNKNOWN_MOVIE
            )
        else:
            yield pack(rating)
            return
        yield beam.pvalue.TaggedOutput(_ERRORS, movielens.reject(line, error))


def _stratified(item, seed: int):
    """(user id, [packed Rating]) → (split index, packed Rating) per movielens.stratified_indices."""
    _, packed = item
    ratings = {rating.key: rating for rating in (movielens.Rating(*t) for t in packed)}
    indexed = movielens.stratified_indices(list(ratings.values()), splits.STRATIFIED_FRACTIONS, seed)
    return [(index, pack(rating)) for rating, index in indexed]


def _fold_test_key(line: movielens.RawLine) -> tuple[tuple[str, str, int], bool]:  # ml-100k only
    """A uK.test line → (rating key, True). These files define the test split: a bad line fails the run."""
    result = movielens.parse_or_reject(line, movielens.parse_rating)
    if isinstance(result, movielens.Rejection):
        raise movielens.MalformedRecordError(f"{result.file}:{result.line_no}: {result.message}", result.reason)
    return result[1].key, True


class AddHistory(beam.PTransform):
    """(split index, packed Rating) → (split index, serialized tf.Example) with the point-in-time history.

    Two groupings, no joins: one group per movie computes each of its ratings' movie history and sends the
    rating on, keyed by its user; one group per user then has all it needs (its ratings and their movie
    histories; users and movies come as side inputs) to write the examples. Ratings of the `hidden_splits`
    get histories but never feed one (splits.hides_test). `users` and `movies` are (id, User/Movie) pairs.
    """

    def __init__(self, users, movies, hidden_splits: frozenset[int] = frozenset()):
        super().__init__()
        self._users, self._movies, self._hidden = users, movies, hidden_splits

    def _movie_histories(self, item):
        _, assigned = item  # movie id, [(index, packed rating)]
        by_key = {rating.key: (index, rating) for index, rating in ((i, movielens.Rating(*t)) for i, t in assigned)}
        hidden = {key for key, (index, _) in by_key.items() if index in self._hidden}
        for rating, movie_history in history.movie_histories([rating for _, rating in by_key.values()], hidden):
            yield rating.user_id, (by_key[rating.key][0], pack(rating), pack_movie_history(movie_history))

    def _examples(self, item, users: dict, movies: dict):
        _, packed = item  # user id, [(index, packed rating, packed movie history)]
        events = [(index, movielens.Rating(*rating), movie_history) for index, rating, movie_history in packed]
        by_key = {event[1].key: event for event in events}
        hidden = {key for key, event in by_key.items() if event[0] in self._hidden}
        movie_histories = {key: unpack_movie_history(event[2]) for key, event in by_key.items()}
        user_events = [
            (rating, movies[rating.movie_id].genres, movie_histories[key]) for key, (_, rating, _) in by_key.items()
        ]
        indices, rows = [], []
        for rating, user_history in history.user_histories(user_events, hidden):
            indices.append(by_key[rating.key][0])
            user, movie = users.get(rating.user_id), movies[rating.movie_id]  # no users: None (layouts.py)
            rows.append(history.example_values(rating, user, movie, user_history, movie_histories[rating.key]))
        yield from zip(indices, history.serialized_examples(rows), strict=True)  # the user's examples, encoded at once

    def expand(self, assigned):
        return (
            assigned
            | "ByMovie" >> beam.Map(lambda e: (e[1][RATING_MOVIE], e))
            | "GroupMovie" >> beam.GroupByKey()
            | "MovieHistory" >> beam.FlatMap(self._movie_histories)
            | "GroupUser" >> beam.GroupByKey()
            | "ToExamples"
            >> beam.FlatMap(self._examples, beam.pvalue.AsDict(self._users), beam.pvalue.AsDict(self._movies))
        )


class ReadMovieLens(beam.PTransform):
    """Reads a MovieLens directory of `layout` (layouts.py): tf.Examples per split, plus the rejected lines.

    Ratings go to the splits by `protocol` (splits.py), then get their point-in-time histories.
    Output: a dict with one PCollection of serialized tf.Examples per split name, the rejections
    (movielens.Rejection) under REJECTED, and (file, line count) pairs under LINE_COUNTS.
    Every input line ends up in exactly one example or one rejection.
    """

    def __init__(
        self,
        input_base: str,
        split: movielens.TimeSplit,
        max_timestamp: int | None = None,
        protocol: str = splits.TIME,
        seed: int = 0,
        layout: layouts.Layout = layouts.LAYOUTS[layouts.ML_100K],
    ):
        super().__init__()
        layouts.check_protocol(layout, protocol)
        self._layout = layout
        self._input_base = input_base
        self._split = split
        self._max_timestamp = max_timestamp
        self._protocol = protocol
        self._seed = seed

    def _assign_splits(self, joined):
        """packed Rating → (split index, packed Rating) by the protocol."""
        seed, protocol = self._seed, self._protocol
        if protocol == splits.STRATIFIED:
            return (
                joined
                | "ByUserForSplit" >> beam.Map(lambda t: (t[RATING_USER], t))
                | "GroupUserForSplit" >> beam.GroupByKey()
                | "Stratified" >> beam.FlatMap(_stratified, seed)
            )
        if protocol in splits.FOLDS:
            test_file = f"{protocol}.test"
            test_keys = self._lines(joined.pipeline, test_file) | "ParseTestKeys" >> beam.Map(_fold_test_key)
            return joined | "Fold" >> beam.Map(
                lambda t, keys: (movielens.fold_index(movielens.Rating(*t), keys, seed), t),
                beam.pvalue.AsDict(test_keys),
            )
        timestamps = joined | "Timestamps" >> beam.Map(lambda t: t[RATING_TIME])
        low = timestamps | "Min" >> beam.CombineGlobally(min).without_defaults()
        high = timestamps | "Max" >> beam.CombineGlobally(max).without_defaults()
        t_min, t_max = beam.pvalue.AsSingleton(low, default_value=0), beam.pvalue.AsSingleton(high, default_value=0)
        split = self._split
        return joined | "SplitByTime" >> beam.Map(
            lambda t, lo, hi: (split.index(t[RATING_TIME], lo, hi), t), t_min, t_max
        )

    def _lines(self, pipeline, file: str):
        """The numbered lines of one raw file (without a CSV header), read in byte ranges spread over workers."""
        path = os.path.join(self._input_base, file)
        return pipeline | f"Read[{file}]" >> reading.ReadLines(path, skip_header=file.endswith(".csv"))

    def _reader(self) -> readers.Reader:
        """The layout's reader, with the CSV headers read now (a header lacking a column fails the run here)."""
        files = (self._layout.ratings, self._layout.movies) if self._layout.has_header else ()
        headers = {file: reading.first_line(os.path.join(self._input_base, file)) for file in files}
        return readers.for_layout(self._layout, self._max_timestamp, headers)

    def _parse_unique(self, lines, file: str, parse, key, what: str, record_class: type):
        """Parsed (line, record) pairs, one per key (the first line wins), and the errors of both steps."""
        parsed = lines | f"Parse[{file}]" >> beam.ParDo(_Parse(parse)).with_outputs(_ERRORS, main="parsed")
        unique = (
            parsed.parsed
            | f"Key[{file}]" >> beam.Map(lambda pair: (key(pair[1]), (pack(pair[0]), pack(pair[1]))))
            | f"Group[{file}]" >> beam.GroupByKey()
            | f"First[{file}]" >> beam.ParDo(_KeepFirst(what, record_class)).with_outputs(_ERRORS, main="unique")
        )
        return unique.unique, (parsed[_ERRORS], unique[_ERRORS])

    def expand(self, pipeline):
        layout, parser = self._layout, self._reader()
        lines = {file: self._lines(pipeline, file) for file in layout.files}
        user_errors: tuple = ()
        users = pipeline | "NoUsers" >> beam.Create([])
        if layout.users:
            users, user_errors = self._parse_unique(
                lines[layout.users], layout.users, parser.user, lambda u: u.user_id, "user id", movielens.User
            )
        movies, movie_errors = self._parse_unique(
            lines[layout.movies], layout.movies, parser.movie, lambda m: m.movie_id, "movie id", movielens.Movie
        )
        ratings, rating_errors = self._parse_unique(
            lines[layout.ratings],
            layout.ratings,
            parser.rating,
            lambda r: (r.user_id, r.movie_id, r.timestamp),
            "rating (same user, movie and timestamp)",
            movielens.Rating,
        )
        users = users | "UserKV" >> beam.Map(lambda pair: (pair[1].user_id, pair[1]))
        movies = movies | "MovieKV" >> beam.Map(lambda pair: (pair[1].movie_id, pair[1]))
        joined = ratings | "Join" >> beam.ParDo(
            _Join(layout.users, layout.movies), users=beam.pvalue.AsDict(users), movies=beam.pvalue.AsDict(movies)
        ).with_outputs(_ERRORS, main="joined")
        rejected = (*user_errors, *movie_errors, *rating_errors, joined[_ERRORS]) | "AllErrors" >> beam.Flatten()
        line_counts = [
            pcoll
            | f"CountLines[{file}]" >> beam.combiners.Count.Globally()
            | f"Named[{file}]" >> beam.Map(lambda n, file=file: (file, n))
            for file, pcoll in lines.items()
        ]

        hidden = frozenset({len(self._split.names) - 1}) if splits.hides_test(self._protocol) else frozenset()
        examples = self._assign_splits(joined.joined) | "History" >> AddHistory(users, movies, hidden)
        parts = examples | "Split" >> beam.Partition(lambda pair, n: pair[0], len(self._split.names))
        output = {
            name: part | f"Example[{name}]" >> beam.Map(lambda pair: pair[1])
            for name, part in zip(self._split.names, parts, strict=True)
        }
        output[REJECTED] = rejected
        output[LINE_COUNTS] = tuple(line_counts) | "AllLineCounts" >> beam.Flatten()
        return output


# Custom properties of the Examples artifact recording what ExampleGen rejected (read by inspection).
RAW_RECORDS_PROPERTY = "raw_records"
REJECTED_RECORDS_PROPERTY = "rejected_records"
REJECTED_BY_REASON_PROPERTY = "rejected_by_reason"
QUARANTINE_PROPERTY = "quarantine_uri"
LAYOUT_PROPERTY = "layout"  # the release layout read (layouts.py)


class Executor(BaseExampleGenExecutor):
    """ExampleGen executor for a raw MovieLens release directory (any layout of layouts.py).

    Called by the TFX launcher. Malformed lines are quarantined under the Examples
    artifact (`quarantine/`), counted per reason on the artifact's custom properties
    (so MLMD has them), and fail the run above `max_rejected_fraction`.
    """

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        raise NotImplementedError("MovieLens ExampleGen reads all splits at once; see GenerateExamplesByBeam")

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        self._examples = output_dict["examples"]
        examples = artifact_utils.get_single_instance(self._examples)
        self._quarantine_uri = os.path.join(examples.uri, quarantine.QUARANTINE_DIR)
        self._max_timestamp = int(time.time())  # ratings after the run started are from the future
        super().Do(input_dict, output_dict, exec_properties)
        summary = quarantine.read_summary(self._quarantine_uri)
        examples.set_int_custom_property(RAW_RECORDS_PROPERTY, summary["total_lines"])
        examples.set_int_custom_property(REJECTED_RECORDS_PROPERTY, summary["total_rejected"])
        examples.set_string_custom_property(REJECTED_BY_REASON_PROPERTY, json.dumps(summary["rejected"]))
        examples.set_string_custom_property(QUARANTINE_PROPERTY, self._quarantine_uri)
        examples.set_string_custom_property(
            LAYOUT_PROPERTY, _custom_config(exec_properties).get("layout", layouts.ML_100K)
        )
        max_fraction = _custom_config(exec_properties).get(
            "max_rejected_fraction", quarantine.DEFAULT_MAX_REJECTED_FRACTION
        )
        try:
            quarantine.check_rejections(summary, max_fraction, self._quarantine_uri)
        except quarantine.RejectedRecordsError as error:
            # The launcher deletes a failed execution's outputs, the quarantine with them: keep the rejected
            # lines (and only them) beside the component's outputs, and point the message there.
            kept = quarantine.kept_quarantine_uri(examples.uri)
            quarantine.copy_tree(self._quarantine_uri, kept)
            raise quarantine.RejectedRecordsError(str(error).replace(self._quarantine_uri, kept)) from None

    def GenerateExamplesByBeam(self, pipeline: beam.Pipeline, exec_properties: dict[str, Any]):
        split = _time_split(exec_properties)
        custom = _custom_config(exec_properties)
        read = pipeline | "ReadMovieLens" >> ReadMovieLens(
            exec_properties["input_base"],
            split,
            self._max_timestamp,
            protocol=custom.get("split_protocol", splits.TIME),
            seed=int(custom.get("split_seed", 0)),
            layout=layouts.LAYOUTS[custom.get("layout", layouts.ML_100K)],
        )
        _ = read.pop(REJECTED) | "Quarantine" >> quarantine.WriteQuarantine(self._quarantine_uri, read.pop(LINE_COUNTS))
        for name, examples in read.items():
            _ = examples | f"Write[{name}]" >> WriteExamples(artifact_utils.get_split_uri(self._examples, name))
        return {}  # written: the base executor writes what is returned, after a Reshuffle (see WriteExamples)


class WriteExamples(beam.PTransform):
    """Serialized tf.Examples → gzipped TFRecord files in `split_uri`, as TFX's ExampleGen writes them but without
    its Reshuffle.

    The Reshuffle only balances work on a distributed runner, and the examples come out of a per-user grouping
    already spread over keys; on the in-memory DirectRunner it held every serialized example of the run in memory
    at once (1.3 kB each, kept decoded and encoded: some 26 GB at 10M ratings).
    """

    def __init__(self, split_uri: str):
        super().__init__()
        self._path = os.path.join(split_uri, EXAMPLES_FILE)

    def expand(self, examples):
        return examples | "Write" >> beam.io.WriteToTFRecord(self._path, file_name_suffix=".gz")
