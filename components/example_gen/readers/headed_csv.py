"""ml-20m and later: `ratings.csv` and `movies.csv` with a header, read by column name (extra or reordered columns,
a byte-order mark and CRLF endings are fine), UTF-8, titles quoted when they hold commas or quotes."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Mapping

from components.example_gen import movielens
from components.example_gen.movielens import MalformedRecordError, Movie, Rating, RawLine, User
from components.example_gen.readers import titles

RATING_COLUMNS = ("userId", "movieId", "rating", "timestamp")
MOVIE_COLUMNS = ("movieId", "title", "genres")


def header_columns(header: bytes, file: str, required: tuple[str, ...]) -> dict[str, int]:
    """Column name → index of a CSV header line (BOM, CRLF and extra columns are fine); ValueError if one of
    `required` is missing."""
    text = header.decode("utf-8-sig").rstrip("\r\n")
    names = [name.strip() for name in next(csv.reader([text]), [])]
    missing = [name for name in required if name not in names]
    if missing:
        raise ValueError(f"{file}: header {text!r} lacks column(s) {', '.join(missing)}")
    return {name: names.index(name) for name in required}


@dataclasses.dataclass(frozen=True)
class CsvReader:
    """`columns`: each file's needed columns → their index in its header."""

    columns: Mapping[str, Mapping[str, int]]
    max_timestamp: int | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, bytes], ratings: str, movies: str, max_timestamp: int | None):
        return cls(
            {
                ratings: header_columns(headers[ratings], ratings, RATING_COLUMNS),
                movies: header_columns(headers[movies], movies, MOVIE_COLUMNS),
            },
            max_timestamp,
        )

    def _row(self, line: RawLine) -> dict[str, str]:
        text = movielens.decode(line)
        try:
            values = next(csv.reader([text], strict=True))
        except csv.Error as error:
            raise MalformedRecordError(f"not a CSV record ({error})", movielens.WRONG_FIELD_COUNT) from None
        movielens.check_not_header(values)
        columns = self.columns[line.file]
        width = max(columns.values()) + 1
        if len(values) < width:
            raise MalformedRecordError(
                f"expected at least {width} fields, found {len(values)}", movielens.WRONG_FIELD_COUNT
            )
        return {name: values[index] for name, index in columns.items()}

    def rating(self, line: RawLine) -> Rating:
        row = self._row(line)
        return Rating(
            user_id=movielens.positive_id(row["userId"], "user id"),
            movie_id=movielens.positive_id(row["movieId"], "movie id"),
            rating=movielens.rating_value(row["rating"], half_stars=True),
            timestamp=movielens.timestamp_value(row["timestamp"], self.max_timestamp),
        )

    def movie(self, line: RawLine) -> Movie:
        row = self._row(line)
        return titles.movie(row["movieId"], row["title"], row["genres"])

    def user(self, line: RawLine) -> User:
        raise ValueError("the CSV layout has no users file")
