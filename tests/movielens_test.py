"""Parsing rules for the raw MovieLens files and the time split."""

import pytest
import tensorflow as tf

from components.example_gen import history, movielens
from components.example_gen.movielens import MalformedRecordError, RawLine
from transform import features as f


def line(text: str, file: str = "u.data") -> RawLine:
    return RawLine(file, 7, text.encode("latin-1"))


def test_parse_rating():
    rating = movielens.parse_rating(line("196\t242\t3\t881250949"))
    assert rating == movielens.Rating("196", "242", 3.0, 881250949)


@pytest.mark.parametrize(
    ("text", "code", "reason"),
    [
        ("196\t242\t3", movielens.WRONG_FIELD_COUNT, "expected 4 fields, found 3"),
        ("196\t242\t3\t881250949\t1", movielens.WRONG_FIELD_COUNT, "expected 4 fields, found 5"),
        ("abc\t242\t3\t881250949", movielens.BAD_ID, "user id 'abc' is not a positive integer"),
        ("196\t\t3\t881250949", movielens.BAD_ID, "movie id '' is not a positive integer"),
        ("0\t242\t3\t881250949", movielens.BAD_ID, "user id '0' is not a positive integer"),
        ("196\t242\t6\t881250949", movielens.BAD_RATING, "rating 6 is outside 1..5"),
        ("196\t242\t0\t881250949", movielens.BAD_RATING, "rating 0 is outside 1..5"),
        ("196\t242\t3.5\t881250949", movielens.BAD_RATING, "rating '3.5' is not an integer"),
        ("196\t242\t3\t-5", movielens.BAD_TIMESTAMP, "timestamp '-5' is not a non-negative integer"),
        ("196\t242\t3\t", movielens.BAD_TIMESTAMP, "timestamp '' is not a non-negative integer"),
        ("196\t242\t3\t4102444800", movielens.FUTURE_TIMESTAMP, "timestamp 4102444800 is in the future"),
        ("", movielens.BLANK_LINE, "blank line"),
        ("  \t ", movielens.BLANK_LINE, "blank line"),
        ("user_id\titem_id\trating\ttimestamp", movielens.HEADER_LINE, "looks like a header line"),
        ("196\t242\t3\t88125\x00", movielens.BAD_ENCODING, "control characters"),
        ("196\t242\xe9\t3\t881250949", movielens.BAD_ENCODING, "non-ASCII bytes in u.data"),
    ],
)
def test_parse_rating_rejects(text, code, reason):
    with pytest.raises(MalformedRecordError, match=reason.replace(".", r"\.")) as raised:
        movielens.parse_rating(line(text), max_timestamp=1_800_000_000)
    assert raised.value.reason == code


def test_split_lines_numbers_every_line_and_flags_a_cut_off_last_line():
    lines = movielens.split_lines("u.data", b"1\t2\t3\t4\r\n\n5\t6\t3\t881")
    assert [(x.line_no, x.data, x.terminated) for x in lines] == [
        (1, b"1\t2\t3\t4", True), (2, b"", True), (3, b"5\t6\t3\t881", False),
    ]  # fmt: skip
    with pytest.raises(MalformedRecordError, match="no end-of-line") as raised:
        movielens.parse_rating(lines[2])
    assert raised.value.reason == movielens.TRUNCATED_LINE
    assert movielens.split_lines("u.data", b"") == []
    assert len(movielens.split_lines("u.data", b"a\nb\n")) == 2


def test_duplicates_keep_the_first_line():
    pairs = [(RawLine("u.data", n, b"x"), n) for n in (9, 3, 5)]
    kept, rejected = movielens.keep_first(pairs, "rating")
    assert kept[1] == 3
    assert [(r.line_no, r.reason) for r in rejected] == [(5, movielens.DUPLICATE), (9, movielens.DUPLICATE)]
    assert "first at line 3" in rejected[0].message


def test_parse_user_and_rejects():
    assert movielens.parse_user(line("1|24|M|technician|85711", "u.user")) == movielens.User(
        "1", 24, "M", "technician", "85711"
    )
    # A new gender value is the schema's business (an anomaly for the gate), not a malformed line.
    assert movielens.parse_user(line("1|24|X|technician|85711", "u.user")).gender == "X"
    with pytest.raises(MalformedRecordError, match="gender is empty"):
        movielens.parse_user(line("1|24||technician|85711", "u.user"))
    with pytest.raises(MalformedRecordError, match="age"):
        movielens.parse_user(line("1|old|M|technician|85711", "u.user"))


def test_parse_movie_genres_and_missing_release_date():
    flags = ["0"] * 19
    flags[1] = flags[8] = "1"  # Action, Drama
    movie = movielens.parse_movie(line("267|unknown||||" + "|".join(flags), "u.item"))
    assert movie.genres == ("Action", "Drama")
    assert movie.release_year == f.RELEASE_YEAR_UNKNOWN
    utf8 = movielens.parse_movie(RawLine("u.item", 1, "1|Misérables|||u|".encode() + "|".join(flags).encode()))
    latin1 = movielens.parse_movie(
        RawLine("u.item", 1, "1|Misérables|||u|".encode("latin-1") + "|".join(flags).encode())
    )
    assert utf8.title == latin1.title == "Misérables"
    dated = movielens.parse_movie(line("1|Toy Story (1995)|01-Jan-1995||url|" + "|".join(flags), "u.item"))
    assert dated.release_year == 1995
    with pytest.raises(MalformedRecordError, match="expected 24 fields"):
        movielens.parse_movie(line("1|Toy Story (1995)|01-Jan-1995", "u.item"))


def test_to_example_has_every_raw_feature():
    example = history.to_example(
        movielens.Rating("1", "2", 4.0, 100),
        movielens.User("1", 30, "F", "writer", "T8H1N"),
        movielens.Movie("2", "Title", 1995, ("Action", "Drama")),
    )
    feature = example.features.feature
    assert set(feature) == set(f.RAW_FEATURES)
    assert feature[f.MOVIE_GENRES].bytes_list.value == [b"Action", b"Drama"]
    assert feature[f.RATING].float_list.value == [4.0]


@pytest.mark.parametrize(
    "values",
    [(), ("Comedy",), ("Sci-Fi", "Film-Noir", "(no genres listed)"), ("Amélie (2001)", "a\x1fb", "", "c")],
)
def test_string_lists_are_written_value_by_value(values):
    example = history.to_example(
        movielens.Rating("1", "2", 4.0, 100), None, movielens.Movie("2", "Amélie (2001)", 2001, values)
    )
    assert list(example.features.feature[f.MOVIE_GENRES].bytes_list.value) == [v.encode("utf-8") for v in values]
    assert example.features.feature[f.MOVIE_TITLE].bytes_list.value == ["Amélie (2001)".encode()]


def test_examples_encoded_together_are_the_messages_to_example_builds():
    """ExampleGen writes tfx_bsl's encoding of a user's rows at once; it must parse to `to_example`'s messages,
    value for value: empty histories, full ones, string lists with the separator in them, and no user file."""
    full = history.UserHistory(
        10, 40.0, 170.0, 3, 12.0, 10, 40.0, 3600, 8, 1.5, ("7", "Amélie", "a\x1fb", ""), (1.0, 2.5, 5.0, 3.0)
    )
    movie_history = history.MovieHistory(100, 400.25, ("5", "6"), (4.0, 0.5))
    rating = movielens.Rating("1", "2", 4.5, 100)
    user = movielens.User("1", 30, "F", "writer", "T8H1N")
    for with_user in (user, None):
        cases = [
            (rating, with_user, movielens.Movie("2", 'Title, "quoted"', 1995, ("Action", "Drama"))),
            (rating, with_user, movielens.Movie("3", "Amélie (2001)", 2001, ()), full, movie_history),
            (rating, with_user, movielens.Movie("4", "", 0, ("a\x1fb", "c")), full),
        ]
        encoded = history.serialized_examples([history.example_values(*case) for case in cases])
        assert [tf.train.Example.FromString(e) for e in encoded] == [history.to_example(*case) for case in cases]
    assert history.serialized_examples([]) == []


def test_time_split_boundaries():
    split = movielens.TimeSplit(("train", "eval", "test"), (0.6, 0.2, 0.2))
    assert split.cutoffs(0, 100) == pytest.approx([60.0, 80.0])
    assert [split.index(t, 0, 100) for t in (0, 59, 60, 79, 80, 100)] == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError):
        movielens.TimeSplit(("train", "eval"), (0.6, 0.3))
