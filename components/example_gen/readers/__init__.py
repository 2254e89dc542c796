"""One reader per release layout (DESIGN.md): a raw line → movielens.Rating / User / Movie, or a
MalformedRecordError with the reason. Parse only: everything after parsing is layout-agnostic.

- `ml100k`: `u.data` / `u.user` / `u.item` (the rules live in movielens.py);
- `dat`: the `::`-separated files of ml-1m (with users.dat) and ml-10m (without, half stars);
- `headed_csv`: ml-20m and later, CSV read by the header's column names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from components.example_gen import layouts
from components.example_gen.movielens import Movie, Rating, RawLine, User
from components.example_gen.readers import dat, headed_csv, ml100k


class Reader(Protocol):
    def rating(self, line: RawLine) -> Rating: ...

    def movie(self, line: RawLine) -> Movie: ...

    def user(self, line: RawLine) -> User: ...


def for_layout(layout: layouts.Layout, max_timestamp: int | None = None, headers: Mapping[str, bytes] = {}) -> Reader:
    """The reader of `layout`. `headers`: each CSV file's first line (the CSV layout needs them);
    `max_timestamp` refuses ratings from the future."""
    if layout.name == layouts.ML_100K:
        return ml100k.Ml100kReader(max_timestamp)
    if layout.has_header:
        return headed_csv.CsvReader.from_headers(headers, layout.ratings, layout.movies, max_timestamp)
    return dat.DatReader(layout.half_stars, layout.has_user_attributes, max_timestamp)
