"""Pure functions that parse the raw MovieLens-100k files and build tf.Examples.

No Beam and no TFX here, so every rule (field counts, id checks, the time split)
is unit-testable on a few strings. `executor.py` wires these into Beam.
"""

from __future__ import annotations

import dataclasses
import datetime

import tensorflow as tf

from transform import features

RATINGS_FILE = "u.data"
USERS_FILE = "u.user"
MOVIES_FILE = "u.item"
ENCODING = "latin-1"  # u.item and u.user are latin-1, not UTF-8.

# The 19 genre flags of u.item, in column order (as listed in u.genre).
GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
OCCUPATIONS = (
    "administrator", "artist", "doctor", "educator", "engineer", "entertainment",
    "executive", "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none",
    "other", "programmer", "retired", "salesman", "scientist", "student", "technician",
    "writer",
)  # fmt: skip
GENDERS = ("F", "M")
RATING_VALUES = frozenset({1, 2, 3, 4, 5})


class MalformedRecordError(ValueError):
    """A raw record that cannot be turned into an example."""


@dataclasses.dataclass(frozen=True)
class RawLine:
    """One line of a raw file, with where it came from (1-based line number)."""

    file: str
    line_no: int
    text: str


@dataclasses.dataclass(frozen=True)
class Rejection:
    """Why a raw line was refused."""

    file: str
    line_no: int
    reason: str
    text: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line_no}: {self.reason}: {self.text[:120]!r}"


@dataclasses.dataclass(frozen=True)
class Rating:
    user_id: str
    movie_id: str
    rating: float
    timestamp: int


@dataclasses.dataclass(frozen=True)
class User:
    user_id: str
    age: int
    gender: str
    occupation: str
    zip_code: str


@dataclasses.dataclass(frozen=True)
class Movie:
    movie_id: str
    title: str
    release_year: int  # features.RELEASE_YEAR_UNKNOWN when the date is missing.
    genres: tuple[str, ...]


def _fields(line: RawLine, sep: str, expected: int) -> list[str]:
    if not line.text.strip():
        raise MalformedRecordError("blank line")
    fields = line.text.split(sep)
    if len(fields) != expected:
        raise MalformedRecordError(f"expected {expected} fields, found {len(fields)}")
    return fields


def _positive_id(value: str, name: str) -> str:
    value = value.strip()
    if not value.isdigit() or int(value) <= 0:
        raise MalformedRecordError(f"{name} {value!r} is not a positive integer")
    return str(int(value))


def parse_rating(line: RawLine) -> Rating:
    """Parses one `u.data` line: user id, item id, rating, timestamp (tab-separated)."""
    user, movie, rating, timestamp = _fields(line, "\t", 4)
    try:
        value = int(rating)
    except ValueError:
        raise MalformedRecordError(f"rating {rating!r} is not an integer") from None
    if value not in RATING_VALUES:
        raise MalformedRecordError(f"rating {value} is outside 1..5")
    if not timestamp.strip().isdigit():
        raise MalformedRecordError(f"timestamp {timestamp!r} is not a non-negative integer")
    return Rating(
        user_id=_positive_id(user, "user id"),
        movie_id=_positive_id(movie, "movie id"),
        rating=float(value),
        timestamp=int(timestamp),
    )


def parse_user(line: RawLine) -> User:
    """Parses one `u.user` line: id|age|gender|occupation|zip."""
    user, age, gender, occupation, zip_code = _fields(line, "|", 5)
    if not age.isdigit() or not 1 <= int(age) <= 120:
        raise MalformedRecordError(f"age {age!r} is not an integer in 1..120")
    if gender not in GENDERS:
        raise MalformedRecordError(f"gender {gender!r} is not one of {GENDERS}")
    if not occupation:
        raise MalformedRecordError("occupation is empty")
    if not zip_code.strip():
        raise MalformedRecordError("zip code is empty")
    return User(_positive_id(user, "user id"), int(age), gender, occupation, zip_code.strip())


def parse_release_year(date: str) -> int:
    """Year of a `01-Jan-1995` release date; RELEASE_YEAR_UNKNOWN when empty."""
    if not date.strip():
        return features.RELEASE_YEAR_UNKNOWN
    try:
        return datetime.datetime.strptime(date.strip(), "%d-%b-%Y").year
    except ValueError:
        raise MalformedRecordError(f"release date {date!r} is not like 01-Jan-1995") from None


def parse_movie(line: RawLine) -> Movie:
    """Parses one `u.item` line: id|title|release|video release|IMDb URL|19 genre flags."""
    fields = _fields(line, "|", 5 + len(GENRES))
    flags = fields[5:]
    if any(flag not in ("0", "1") for flag in flags):
        raise MalformedRecordError("genre flags must be 0 or 1")
    genres = tuple(genre for genre, flag in zip(GENRES, flags, strict=True) if flag == "1")
    if not genres:
        raise MalformedRecordError("movie has no genre flag set")
    return Movie(
        movie_id=_positive_id(fields[0], "movie id"),
        title=fields[1],
        release_year=parse_release_year(fields[2]),
        genres=genres,
    )


@dataclasses.dataclass(frozen=True)
class TimeSplit:
    """Splits by time range: the oldest `fractions[0]` of [t_min, t_max] goes to the first split, etc.

    A rating at timestamp t is in split i when cutoff[i-1] <= t < cutoff[i], where
    cutoff[i] = t_min + sum(fractions[:i+1]) * (t_max - t_min); the newest split
    also takes t_max itself. This is the seed notebook's split.
    """

    names: tuple[str, ...]
    fractions: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.fractions) or len(self.names) < 2:
            raise ValueError("need one fraction per split, and at least two splits")
        if any(f <= 0 for f in self.fractions) or abs(sum(self.fractions) - 1.0) > 1e-9:
            raise ValueError(f"split fractions must be positive and sum to 1, got {self.fractions}")

    def cutoffs(self, t_min: int, t_max: int) -> list[float]:
        total, cuts = 0.0, []
        for fraction in self.fractions[:-1]:
            total += fraction
            cuts.append(t_min + total * (t_max - t_min))
        return cuts

    def index(self, timestamp: int, t_min: int, t_max: int) -> int:
        for i, cut in enumerate(self.cutoffs(t_min, t_max)):
            if timestamp < cut:
                return i
        return len(self.names) - 1


def _bytes(*values: str) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode("utf-8") for v in values]))


def _int(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def _float(value: float) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=[value]))


def to_example(rating: Rating, user: User, movie: Movie) -> tf.train.Example:
    """Joins a rating with its user and movie into one tf.Example of raw features."""
    f = features
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                f.USER_ID: _bytes(rating.user_id),
                f.MOVIE_ID: _bytes(rating.movie_id),
                f.RATING: _float(rating.rating),
                f.TIMESTAMP: _int(rating.timestamp),
                f.USER_AGE: _int(user.age),
                f.USER_GENDER: _bytes(user.gender),
                f.USER_OCCUPATION: _bytes(user.occupation),
                f.USER_ZIP: _bytes(user.zip_code),
                f.MOVIE_TITLE: _bytes(movie.title),
                f.MOVIE_GENRES: _bytes(*movie.genres),
                f.MOVIE_RELEASE_YEAR: _int(movie.release_year),
            }
        )
    )
