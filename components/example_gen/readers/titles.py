"""What the later releases' movies files share: the year inside the title, genres as `A|B`."""

from __future__ import annotations

import re

from components.example_gen import movielens
from components.example_gen.movielens import MalformedRecordError, Movie
from transform import features

NO_GENRES = "(no genres listed)"  # ml-20m and later; kept as the "unknown" genre ml-100k uses
UNKNOWN_GENRE = "unknown"
_YEAR = re.compile(r"\((\d{4})(?:[-–]\d{0,4})?\)\s*$")


def release_year(title: str) -> int:
    """The year in a title like `Toy Story (1995)` (or a series' `(2006-2007)`); RELEASE_YEAR_UNKNOWN if none."""
    match = _YEAR.search(title)
    return int(match.group(1)) if match else features.RELEASE_YEAR_UNKNOWN


def genre_list(text: str) -> tuple[str, ...]:
    """`A|B` genres; `(no genres listed)` is ml-100k's `unknown`. A movie must list one."""
    names = tuple(dict.fromkeys(name.strip() for name in text.split("|") if name.strip()))
    if names == (NO_GENRES,):
        return (UNKNOWN_GENRE,)
    if not names:
        raise MalformedRecordError("movie lists no genre", movielens.BAD_VALUE)
    if NO_GENRES in names:
        raise MalformedRecordError(f"{NO_GENRES!r} beside real genres", movielens.BAD_VALUE)
    return names


def movie(movie_id: str, title: str, genres: str) -> Movie:
    """A movie from its id, title (with the year) and `A|B` genres fields."""
    if not title.strip():
        raise MalformedRecordError("title is empty", movielens.BAD_VALUE)
    title = title.strip()
    return Movie(movielens.positive_id(movie_id, "movie id"), title, release_year(title), genre_list(genres))
