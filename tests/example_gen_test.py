"""The MovieLens ExampleGen's Beam transform on real and corrupted data."""

import json
import shutil

import apache_beam as beam
import pytest
import tensorflow as tf
from apache_beam.testing.util import assert_that, equal_to

from components.example_gen import movielens
from components.example_gen.executor import LINE_COUNTS, REJECTED, ReadMovieLens
from components.example_gen.quarantine import RejectedRecordsError, WriteQuarantine, check_rejections, read_summary
from transform import features as f

pytestmark = pytest.mark.slow
SPLIT = movielens.TimeSplit(("train", "eval", "test"), (0.6, 0.2, 0.2))


def _count(splits):
    return {name: pc | f"Count[{name}]" >> beam.combiners.Count.Globally() for name, pc in splits.items()}


def test_ml100k_time_split_gives_the_seed_notebooks_counts(ml100k_dir):
    with beam.Pipeline() as pipeline:
        splits = pipeline | ReadMovieLens(str(ml100k_dir), SPLIT)
        assert_that(splits.pop(REJECTED), equal_to([]), label="NothingRejected")
        del splits[LINE_COUNTS]
        counts = _count(splits)
        for name, expected in (("train", 65_336), ("eval", 15_778), ("test", 18_886)):
            assert_that(counts[name], equal_to([expected]), label=f"Check[{name}]")


def test_examples_join_user_and_movie(synthetic_dir):
    users = {row.split("|")[0]: row.split("|") for row in (synthetic_dir / "u.user").read_text("latin-1").splitlines()}

    def check(examples):
        assert len(examples) > 1000
        for serialized in examples:
            feature = tf.train.Example.FromString(serialized).features.feature
            user = users[feature[f.USER_ID].bytes_list.value[0].decode()]
            assert feature[f.USER_AGE].int64_list.value[0] == int(user[1])
            assert feature[f.USER_OCCUPATION].bytes_list.value[0].decode() == user[3]
            assert 1 <= len(feature[f.MOVIE_GENRES].bytes_list.value) <= f.MAX_GENRES

    with beam.Pipeline() as pipeline:
        splits = pipeline | ReadMovieLens(str(synthetic_dir), SPLIT)
        assert_that(splits["train"], check)


# One bad line of every kind, appended to a valid u.data (3,000 lines) / u.user / u.item.
BAD_RATINGS = [
    ("1\t2\t3", movielens.WRONG_FIELD_COUNT),
    ("x\t2\t3\t881250949", movielens.BAD_ID),
    ("\t2\t3\t881250949", movielens.BAD_ID),
    ("1\t2\t9\t881250949", movielens.BAD_RATING),
    ("1\t2\t3\t", movielens.BAD_TIMESTAMP),
    ("1\t2\t3\t-881250949", movielens.BAD_TIMESTAMP),
    ("1\t2\t3\t4102444800", movielens.FUTURE_TIMESTAMP),
    ("999\t2\t3\t881250949", movielens.UNKNOWN_USER),
    ("1\t999\t3\t881250949", movielens.UNKNOWN_MOVIE),
    ("1\t2\xff\xfe\t3\t881250949", movielens.BAD_ENCODING),
    ("", movielens.BLANK_LINE),
    ("user_id\titem_id\trating\ttimestamp", movielens.HEADER_LINE),
]


def _run(data, max_timestamp=2_000_000_000):
    """Runs ReadMovieLens + WriteQuarantine; returns (examples per split, summary, rejections)."""
    out = data.parent / "quarantine"
    with beam.Pipeline() as pipeline:
        read = pipeline | ReadMovieLens(str(data), SPLIT, max_timestamp)
        _ = read.pop(REJECTED) | WriteQuarantine(str(out), read.pop(LINE_COUNTS))
        for name, examples in read.items():
            _ = examples | f"Write[{name}]" >> beam.io.WriteToTFRecord(str(data.parent / name), num_shards=1)
    examples = {
        name: [
            tf.train.Example.FromString(r.numpy())
            for r in tf.data.TFRecordDataset(str(data.parent / name) + "-00000-of-00001")
        ]
        for name in SPLIT.names
    }
    rejections = [json.loads(line) for path in out.glob("rejected*.jsonl") for line in path.read_text().splitlines()]
    return examples, read_summary(str(out)), rejections


def test_every_bad_line_is_quarantined_with_its_reason_and_nothing_else_is_lost(synthetic_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(synthetic_dir, data)
    good = (data / "u.data").read_bytes()
    first_rating = good.split(b"\n")[0]
    bad = [text.encode("latin-1") for text, _ in BAD_RATINGS] + [first_rating]  # + a duplicate of line 1
    (data / "u.data").write_bytes(good + b"\n".join(bad) + b"\n" + b"5\t5\t3\t88125")  # + a cut-off last line
    with open(data / "u.user", "ab") as handle:
        handle.write(b"1|30|F|writer|12345\n")  # duplicate user id 1: the first line wins
    with open(data / "u.item", "ab") as handle:
        handle.write(b"81|Broken|01-Jan-1995\n")

    examples, summary, rejections = _run(data)

    expected = {(movielens.RATINGS_FILE, 3000 + i + 1): reason for i, (_, reason) in enumerate(BAD_RATINGS)}
    expected[(movielens.RATINGS_FILE, 3000 + len(BAD_RATINGS) + 1)] = movielens.DUPLICATE
    expected[(movielens.RATINGS_FILE, 3000 + len(BAD_RATINGS) + 2)] = movielens.TRUNCATED_LINE
    expected[(movielens.USERS_FILE, 121)] = movielens.DUPLICATE
    expected[(movielens.MOVIES_FILE, 81)] = movielens.WRONG_FIELD_COUNT
    assert {(r["file"], r["line_no"]): r["reason"] for r in rejections} == expected
    by_line = {(r["file"], r["line_no"]): r for r in rejections}
    assert by_line[(movielens.RATINGS_FILE, 3008)]["text"] == "999\t2\t3\t881250949"  # raw text kept
    assert "first at line 1" in by_line[(movielens.RATINGS_FILE, 3013)]["message"]

    lines = {movielens.RATINGS_FILE: 3000 + len(bad) + 1, movielens.USERS_FILE: 121, movielens.MOVIES_FILE: 81}
    assert summary["lines"] == lines and summary["total_lines"] == sum(lines.values())
    assert summary["total_rejected"] == len(expected) == sum(summary["rejected"].values())
    # Nothing lost: every valid rating is an example, and accepted + rejected = lines read.
    assert sum(len(split) for split in examples.values()) == 3000
    assert 3000 + 120 + 80 + len(expected) == summary["total_lines"]
    # The duplicate user line did not replace the first one.
    first_user = (synthetic_dir / "u.user").read_text("latin-1").splitlines()[0].split("|")
    for example in examples["train"]:
        feature = example.features.feature
        if feature[f.USER_ID].bytes_list.value[0] == b"1":
            assert feature[f.USER_AGE].int64_list.value[0] == int(first_user[1])


def test_rejected_fraction_over_the_limit_fails_naming_lines_and_quarantine(tmp_path):
    summary = {
        "lines": {"u.data": 1000},
        "total_lines": 1000,
        "total_rejected": 3,
        "rejected": {movielens.BAD_RATING: 2, movielens.BLANK_LINE: 1},
        "sample": [
            movielens.Rejection("u.data", 7, movielens.BAD_RATING, "rating 9 is outside 1..5", "1\t2\t9\t5").to_dict()
        ],
    }
    assert "rejected 3 of 1,000 raw records (0.300%; bad_rating 2, blank_line 1)" in check_rejections(
        summary, 0.01, "q"
    )
    with pytest.raises(
        RejectedRecordsError, match=r"(?s)more than the limit of 0\.100%.*u\.data:7: rating 9.*q/rejected-"
    ):
        check_rejections(summary, 0.001, "q")
    with pytest.raises(RejectedRecordsError, match="no raw records"):
        check_rejections({**summary, "total_lines": 0, "total_rejected": 0}, 0.5, "q")


@pytest.mark.parametrize(
    ("protocol", "edited"),
    [("time", "u.data"), ("time", "u.item"), ("stratified", "u.user"), ("u1", "u1.test"), ("u5", "u5.test")],
)
def test_the_drivers_input_fingerprint_covers_every_file_the_protocol_reads(tmp_path, synthetic_dir, protocol, edited):
    """TFX's ExampleGen driver fingerprints the files its split patterns match, and reuses a cached split
    while that fingerprint is unchanged: an edited file the protocol reads must change it."""
    from google.protobuf import json_format
    from tfx.components.example_gen import utils
    from tfx.proto import example_gen_pb2

    from components.example_gen.component import movielens_example_gen

    data = tmp_path / "data"
    shutil.copytree(synthetic_dir, data)
    ratings = (data / movielens.RATINGS_FILE).read_text().splitlines()
    for fold in ("u1", "u5"):
        (data / f"{fold}.test").write_text("\n".join(ratings[:10]) + "\n")
    component = movielens_example_gen(str(data), ["train", "eval", "test"], [0.6, 0.2, 0.2], "code", 0.001, protocol)
    config = component.exec_properties["input_config"]
    input_config = (
        config if isinstance(config, example_gen_pb2.Input) else json_format.Parse(config, example_gen_pb2.Input())
    )

    def fingerprint() -> str:
        return utils.calculate_splits_fingerprint_span_and_version(str(data), input_config.splits)[0]

    before = fingerprint()
    with open(data / edited, "a") as handle:
        handle.write(ratings[-1] + "\n")
    assert fingerprint() != before
