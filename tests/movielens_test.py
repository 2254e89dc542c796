"""Parsing rules for the raw MovieLens files and the time split."""

import pytest

from components.example_gen import movielens
from components.example_gen.movielens import MalformedRecordError, RawLine
from transform import features as f


def line(text: str, file: str = "u.data") -> RawLine:
    return RawLine(file, 7, text)


def test_parse_rating():
    rating = movielens.parse_rating(line("196\t242\t3\t881250949"))
    assert rating == movielens.Rating("196", "242", 3.0, 881250949)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("196\t242\t3", "expected 4 fields, found 3"),
        ("196\t242\t3\t881250949\t1", "expected 4 fields, found 5"),
        ("abc\t242\t3\t881250949", "user id 'abc' is not a positive integer"),
        ("196\t\t3\t881250949", "movie id '' is not a positive integer"),
        ("196\t242\t6\t881250949", "rating 6 is outside 1..5"),
        ("196\t242\t0\t881250949", "rating 0 is outside 1..5"),
        ("196\t242\t3.5\t881250949", "rating '3.5' is not an integer"),
        ("196\t242\t3\t-5", "timestamp '-5' is not a non-negative integer"),
        ("", "blank line"),
    ],
)
def test_parse_rating_rejects(text, reason):
    with pytest.raises(MalformedRecordError, match=reason.replace(".", r"\.")):
        movielens.parse_rating(line(text))


def test_parse_user_and_rejects():
    assert movielens.parse_user(line("1|24|M|technician|85711", "u.user")) == movielens.User(
        "1", 24, "M", "technician", "85711"
    )
    with pytest.raises(MalformedRecordError, match="gender 'X'"):
        movielens.parse_user(line("1|24|X|technician|85711", "u.user"))
    with pytest.raises(MalformedRecordError, match="age"):
        movielens.parse_user(line("1|old|M|technician|85711", "u.user"))


def test_parse_movie_genres_and_missing_release_date():
    flags = ["0"] * 19
    flags[1] = flags[8] = "1"  # Action, Drama
    movie = movielens.parse_movie(line("267|unknown||||" + "|".join(flags), "u.item"))
    assert movie.genres == ("Action", "Drama")
    assert movie.release_year == f.RELEASE_YEAR_UNKNOWN
    dated = movielens.parse_movie(line("1|Toy Story (1995)|01-Jan-1995||url|" + "|".join(flags), "u.item"))
    assert dated.release_year == 1995
    with pytest.raises(MalformedRecordError, match="expected 24 fields"):
        movielens.parse_movie(line("1|Toy Story (1995)|01-Jan-1995", "u.item"))


def test_to_example_has_every_raw_feature():
    example = movielens.to_example(
        movielens.Rating("1", "2", 4.0, 100),
        movielens.User("1", 30, "F", "writer", "T8H1N"),
        movielens.Movie("2", "Title", 1995, ("Action", "Drama")),
    )
    feature = example.features.feature
    assert set(feature) == set(f.RAW_FEATURES)
    assert feature[f.MOVIE_GENRES].bytes_list.value == [b"Action", b"Drama"]
    assert feature[f.RATING].float_list.value == [4.0]


def test_time_split_boundaries():
    split = movielens.TimeSplit(("train", "eval", "test"), (0.6, 0.2, 0.2))
    assert split.cutoffs(0, 100) == pytest.approx([60.0, 80.0])
    assert [split.index(t, 0, 100) for t in (0, 59, 60, 79, 80, 100)] == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError):
        movielens.TimeSplit(("train", "eval"), (0.6, 0.3))
