"""Pure functions that parse the raw MovieLens-100k files and build tf.Examples.

No Beam and no TFX here, so every rule (field counts, id checks, the time split)
is unit-testable on a few strings. `executor.py` wires these into Beam.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import random
import re
from collections.abc import Callable, Collection, Iterable
from typing import Any, TypeVar

from components.example_gen import splits
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
HALF_STAR_VALUES = frozenset(x / 2 for x in range(1, 11))  # ml-10m and later: 0.5, 1.0, ..., 5.0


# Why a record was rejected: the quarantine and MLMD count rejections per reason.
BLANK_LINE = "blank_line"
BAD_ENCODING = "bad_encoding"
TRUNCATED_LINE = "truncated_line"
HEADER_LINE = "header_line"
WRONG_FIELD_COUNT = "wrong_field_count"
BAD_ID = "bad_id"
BAD_RATING = "bad_rating"
BAD_TIMESTAMP = "bad_timestamp"
FUTURE_TIMESTAMP = "future_timestamp"
BAD_VALUE = "bad_value"  # a user/movie metadata field (age, gender, genre flags, dates)
UNKNOWN_USER = "unknown_user"
UNKNOWN_MOVIE = "unknown_movie"
DUPLICATE = "duplicate"
REASONS = (
    BLANK_LINE, BAD_ENCODING, TRUNCATED_LINE, HEADER_LINE, WRONG_FIELD_COUNT, BAD_ID, BAD_RATING, BAD_TIMESTAMP,
    FUTURE_TIMESTAMP, BAD_VALUE, UNKNOWN_USER, UNKNOWN_MOVIE, DUPLICATE,
)  # fmt: skip

# Bytes that never appear in a MovieLens text field: C0/C1 control characters other than tab.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_HEADER_WORD = re.compile(r"[A-Za-z][A-Za-z_ '-]*")
# Digits and codes only (titles live in the movies files, latin-1 or UTF-8): every release's ratings and users files.
ASCII_FILES = frozenset({RATINGS_FILE, USERS_FILE, "ratings.dat", "users.dat", "ratings.csv"})


class MalformedRecordError(ValueError):
    """A raw record that cannot be turned into an example; `reason` is one of REASONS."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class RawLine:
    """One line of a raw file as read: 1-based line number, bytes without the line ending.

    `terminated` is False for a last line with no end-of-line, i.e. a file cut short.
    """

    file: str
    line_no: int
    data: bytes
    terminated: bool = True

    @property
    def text(self) -> str:
        """For messages and the quarantine: never fails, undecodable bytes shown as escapes."""
        return self.data.decode("utf-8", errors="backslashreplace")


@dataclasses.dataclass(frozen=True)
class Rejection:
    """Why a raw line was refused: where it is, the reason code and message, and the raw text."""

    file: str
    line_no: int
    reason: str
    message: str
    text: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line_no}: {self.message}: {self.text[:120]!r}"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Rating:
    user_id: str
    movie_id: str
    rating: float
    timestamp: int

    @property
    def key(self) -> tuple[str, str, int]:
        """Unique once duplicates are rejected."""
        return self.user_id, self.movie_id, self.timestamp


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


def split_lines(file: str, data: bytes) -> list[RawLine]:
    """Every line of a raw file, numbered. Only `\\n` ends a line (a `\\r` before it is dropped).

    A file ending without `\\n` gives a last line marked unterminated; an empty file has no lines.
    """
    pieces = data.split(b"\n")
    terminated_last = pieces[-1] == b""
    if terminated_last:
        pieces.pop()
    lines = []
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        lines.append(RawLine(file, index + 1, piece.removesuffix(b"\r"), terminated=not last or terminated_last))
    return lines


def reject(line: RawLine, error: MalformedRecordError) -> Rejection:
    return Rejection(line.file, line.line_no, error.reason, str(error), line.text)


def decode(line: RawLine) -> str:
    """The line's text, refusing bad encodings, blank lines and a cut-off last line."""
    if line.file in ASCII_FILES:
        try:
            text = line.data.decode("ascii")
        except UnicodeDecodeError:
            raise MalformedRecordError(f"non-ASCII bytes in {line.file}", BAD_ENCODING) from None
    else:
        try:
            text = line.data.decode("utf-8")
        except UnicodeDecodeError:
            text = line.data.decode(ENCODING)  # the official u.item is latin-1
    if _CONTROL.search(text):
        raise MalformedRecordError("control characters in a text file", BAD_ENCODING)
    if not text.strip():
        raise MalformedRecordError("blank line", BLANK_LINE)
    if not line.terminated:
        raise MalformedRecordError("last line has no end-of-line (file cut short?)", TRUNCATED_LINE)
    return text


def check_not_header(fields: list[str]) -> None:
    """Refuses a line whose every field is a word: a header (column names) where records belong."""
    if all(_HEADER_WORD.fullmatch(field.strip()) for field in fields):
        raise MalformedRecordError("looks like a header line (column names, no values)", HEADER_LINE)


def fields_of(line: RawLine, sep: str, expected: int) -> list[str]:
    """The `sep`-separated fields of a record line: exactly `expected` of them, not a header."""
    fields = decode(line).split(sep)
    check_not_header(fields)
    if len(fields) != expected:
        raise MalformedRecordError(f"expected {expected} fields, found {len(fields)}", WRONG_FIELD_COUNT)
    return fields


def positive_id(value: str, name: str) -> str:
    value = value.strip()
    if not (value.isascii() and value.isdigit()) or int(value) <= 0:
        raise MalformedRecordError(f"{name} {value!r} is not a positive integer", BAD_ID)
    return str(int(value))


def rating_value(text: str, half_stars: bool = False) -> float:
    """A rating field: 1..5 whole stars, or 0.5..5.0 in half stars where the release has them."""
    value = text.strip()
    try:
        number = float(value) if value.isascii() and value else None
    except ValueError:
        number = None
    if number is None or number != number:
        raise MalformedRecordError(f"rating {text!r} is not a number", BAD_RATING)
    allowed = HALF_STAR_VALUES if half_stars else RATING_VALUES
    if number not in allowed:
        stars = "0.5..5.0 in half stars" if half_stars else "1..5 in whole stars"
        raise MalformedRecordError(f"rating {value} is outside {stars}", BAD_RATING)
    return float(number)


def timestamp_value(text: str, max_timestamp: int | None = None) -> int:
    """A Unix timestamp field (seconds); `max_timestamp` (the run's start time) refuses ratings from the future."""
    stamp = text.strip()
    if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12:
        raise MalformedRecordError(f"timestamp {text!r} is not a non-negative integer", BAD_TIMESTAMP)
    if max_timestamp is not None and int(stamp) > max_timestamp:
        raise MalformedRecordError(f"timestamp {stamp} is in the future (after {max_timestamp})", FUTURE_TIMESTAMP)
    return int(stamp)


def parse_rating(line: RawLine, max_timestamp: int | None = None) -> Rating:
    """Parses one `u.data` line: user id, item id, rating, timestamp (tab-separated).

    `max_timestamp` (the run's start time) refuses ratings from the future.
    """
    user, movie, rating, timestamp = fields_of(line, "\t", 4)
    user_id, movie_id = positive_id(user, "user id"), positive_id(movie, "movie id")
    if not (rating.isascii() and rating.strip().isdigit()):
        raise MalformedRecordError(f"rating {rating!r} is not an integer", BAD_RATING)
    value = rating_value(rating)
    return Rating(user_id=user_id, movie_id=movie_id, rating=value, timestamp=timestamp_value(timestamp, max_timestamp))


def parse_user(line: RawLine) -> User:
    """Parses one `u.user` line: id|age|gender|occupation|zip."""
    user, age, gender, occupation, zip_code = fields_of(line, "|", 5)
    user_id = positive_id(user, "user id")
    if not (age.isascii() and age.isdigit()) or not 1 <= int(age) <= 120:
        raise MalformedRecordError(f"age {age!r} is not an integer in 1..120", BAD_VALUE)
    # Gender and occupation values are checked by the schema (ExampleValidator), not here:
    # a new value is a data anomaly for the gate to report, not a malformed line.
    for name, value in (("gender", gender), ("occupation", occupation), ("zip code", zip_code)):
        if not value.strip():
            raise MalformedRecordError(f"{name} is empty", BAD_VALUE)
    return User(user_id, int(age), gender.strip(), occupation.strip(), zip_code.strip())


def parse_release_year(date: str) -> int:
    """Year of a `01-Jan-1995` release date; RELEASE_YEAR_UNKNOWN when empty."""
    if not date.strip():
        return features.RELEASE_YEAR_UNKNOWN
    try:
        return datetime.datetime.strptime(date.strip(), "%d-%b-%Y").year
    except ValueError:
        raise MalformedRecordError(f"release date {date!r} is not like 01-Jan-1995", BAD_VALUE) from None


def parse_movie(line: RawLine) -> Movie:
    """Parses one `u.item` line: id|title|release|video release|IMDb URL|19 genre flags."""
    fields = fields_of(line, "|", 5 + len(GENRES))
    movie_id = positive_id(fields[0], "movie id")
    flags = fields[5:]
    if any(flag not in ("0", "1") for flag in flags):
        raise MalformedRecordError("genre flags must be 0 or 1", BAD_VALUE)
    genres = tuple(genre for genre, flag in zip(GENRES, flags, strict=True) if flag == "1")
    if not genres:
        raise MalformedRecordError("movie has no genre flag set", BAD_VALUE)
    return Movie(movie_id=movie_id, title=fields[1], release_year=parse_release_year(fields[2]), genres=genres)


Parsed = TypeVar("Parsed")


def parse_or_reject(line: RawLine, parse: Callable[[RawLine], Parsed]) -> tuple[RawLine, Parsed] | Rejection:
    """(line, record), or the line's Rejection. Never raises for bad data."""
    try:
        return line, parse(line)
    except MalformedRecordError as error:
        return reject(line, error)


def parse_lines(lines: Iterable[RawLine], parse: Callable[[RawLine], Parsed]) -> tuple[list, list[Rejection]]:
    """Applies `parse` to every line: (accepted (line, record) pairs, rejections)."""
    results = [parse_or_reject(line, parse) for line in lines]
    accepted = [r for r in results if not isinstance(r, Rejection)]
    return accepted, [r for r in results if isinstance(r, Rejection)]


def keep_first(pairs: Iterable[tuple[RawLine, Any]], what: str) -> tuple[tuple[RawLine, Any], list[Rejection]]:
    """Of records sharing one key, keeps the earliest line; the others are duplicates."""
    ordered = sorted(pairs, key=lambda pair: (pair[0].file, pair[0].line_no))
    first = ordered[0][0]
    rejected = [
        reject(line, MalformedRecordError(f"duplicate {what} (first at line {first.line_no})", DUPLICATE))
        for line, _ in ordered[1:]
    ]
    return ordered[0], rejected


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


def stratified_indices(ratings: Iterable[Rating], fractions: tuple[float, ...], seed: int) -> list[tuple[Rating, int]]:
    """One user's ratings → (rating, split index): per split, round(fraction * n) of them at random
    (the first split takes the rest). The same ratings and seed give the same split in any order."""
    ordered = sorted(ratings, key=lambda r: (r.timestamp, r.movie_id))
    if not ordered:
        return []
    random.Random(f"{seed}:{ordered[0].user_id}").shuffle(ordered)
    sizes = [round(fraction * len(ordered)) for fraction in fractions[1:]]
    first = len(ordered) - sum(sizes)
    indices = [0] * first + [i for i, size in enumerate(sizes, start=1) for _ in range(size)]
    return list(zip(ordered, indices, strict=True))


def fold_index(rating: Rating, test_keys: Collection[tuple], seed: int) -> int:
    """Split index in a uK fold: 2 (test) when listed in uK.test, else 1 (eval) for a pseudo-random
    splits.FOLD_EVAL_FRACTION of uK.base (a hash of the seed and the rating), else 0 (train)."""
    if rating.key in test_keys:
        return 2
    digest = hashlib.sha256(":".join(map(str, (seed, *rating.key))).encode()).digest()
    return 1 if int.from_bytes(digest[:8], "big") / 2**64 < splits.FOLD_EVAL_FRACTION else 0
