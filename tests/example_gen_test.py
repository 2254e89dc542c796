"""The MovieLens ExampleGen's Beam transform on real and corrupted data."""

import shutil

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from components.example_gen import movielens
from components.example_gen.executor import ReadMovieLens
from transform import features as f

pytestmark = pytest.mark.slow
SPLIT = movielens.TimeSplit(("train", "eval", "test"), (0.6, 0.2, 0.2))


def _count(splits):
    return {name: pc | f"Count[{name}]" >> beam.combiners.Count.Globally() for name, pc in splits.items()}


def test_ml100k_time_split_gives_the_seed_notebooks_counts(ml100k_dir):
    with beam.Pipeline() as pipeline:
        splits = pipeline | ReadMovieLens(str(ml100k_dir), SPLIT)
        counts = _count(splits)
        for name, expected in (("train", 65_336), ("eval", 15_778), ("test", 18_886)):
            assert_that(counts[name], equal_to([expected]), label=f"Check[{name}]")


def test_examples_join_user_and_movie(synthetic_dir):
    users = {row.split("|")[0]: row.split("|") for row in (synthetic_dir / "u.user").read_text("latin-1").splitlines()}

    def check(examples):
        assert len(examples) > 1000
        for example in examples:
            feature = example.features.feature
            user = users[feature[f.USER_ID].bytes_list.value[0].decode()]
            assert feature[f.USER_AGE].int64_list.value[0] == int(user[1])
            assert feature[f.USER_OCCUPATION].bytes_list.value[0].decode() == user[3]
            assert 1 <= len(feature[f.MOVIE_GENRES].bytes_list.value) <= f.MAX_GENRES

    with beam.Pipeline() as pipeline:
        splits = pipeline | ReadMovieLens(str(synthetic_dir), SPLIT)
        assert_that(splits["train"], check)


@pytest.mark.parametrize(
    ("appended", "message"),
    [
        ("1\t2\t9\t881250949", r"u\.data:3001: rating 9 is outside 1\.\.5"),
        ("1\t2\t3", r"u\.data:3001: expected 4 fields, found 3"),
        ("999\t2\t3\t881250949", r"u\.data:3001: unknown user id 999"),
        ("x\t2\t3\t881250949", r"u\.data:3001: user id 'x' is not a positive integer"),
    ],
)
def test_malformed_line_fails_the_run_naming_file_line_and_reason(synthetic_dir, tmp_path, appended, message):
    data = tmp_path / "data"
    shutil.copytree(synthetic_dir, data)
    with open(data / "u.data", "a") as handle:
        handle.write(appended + "\n")
    with pytest.raises(Exception, match=message):
        with beam.Pipeline() as pipeline:
            _ = pipeline | ReadMovieLens(str(data), SPLIT)
