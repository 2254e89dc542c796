"""The file layouts of the MovieLens releases: which files each has, how to detect it, how to parse its lines.

- `ml-100k`: `u.data` (tab) / `u.user` / `u.item` (`|`), whole stars, user attributes, folds u1..u5.
- `ml-1m`: `ratings.dat` / `users.dat` / `movies.dat`, `::`-separated, latin-1 titles, user attributes
  (age bands and occupation codes, mapped to the names of the release's README).
- `ml-10m`: `ratings.dat` / `movies.dat` (+ `tags.dat`), `::`, half stars, no users file.
- `csv` (ml-20m, ml-25m, ml-32m, ml-latest, ml-latest-small): `ratings.csv` / `movies.csv` with a header
  (+ `tags.csv`, `links.csv`), read by column name (extra columns, BOM and CRLF are fine), UTF-8, titles quoted
  when they hold commas or quotes, the year inside the title, half stars, no users file.

Pure functions (no Beam): `executor.py` applies them to the lines it reads. Every layout's records go through the
same checks (movielens.py) and are rejected with the same reasons.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import re
from collections.abc import Callable, Mapping

from components.example_gen import movielens, splits
from components.example_gen.movielens import MalformedRecordError, Movie, Rating, RawLine, User
from transform import features

ML_100K, ML_1M, ML_10M, CSV = "ml-100k", "ml-1m", "ml-10m", "csv"
NO_GENRES = "(no genres listed)"  # ml-20m and later; kept as the "unknown" genre ml-100k uses
UNKNOWN_GENRE = "unknown"
# ml-1m's users.dat occupation codes (its README), 0..20.
OCCUPATIONS_1M = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
    "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer", "programmer",
    "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer", "tradesman/craftsman",
    "unemployed", "writer",
)  # fmt: skip
AGE_BANDS_1M = (1, 18, 25, 35, 45, 50, 56)  # ml-1m's age codes: 1 = under 18, 18 = 18-24, ... 56 = 56+
# Genres of the later releases that ml-100k's list lacks ("Children" is ml-20m's spelling of "Children's").
LATER_GENRES = ("Children", "IMAX")
# Movies in ml-20m and later may list up to 10 genres (Transform keeps features.MAX_GENRES of them).
MAX_LISTED_GENRES = 10
_YEAR = re.compile(r"\((\d{4})(?:[-–]\d{0,4})?\)\s*$")


@dataclasses.dataclass(frozen=True)
class Layout:
    """One file layout: its files (ratings, movies, users or None), what its records hold."""

    name: str
    ratings: str
    movies: str
    users: str | None
    half_stars: bool
    releases: tuple[str, ...]
    optional: tuple[str, ...] = ()  # files of the release the pipeline does not read (tags, links)

    @property
    def files(self) -> tuple[str, ...]:
        """The files ExampleGen reads (users first when there are users)."""
        return tuple(name for name in (self.users, self.movies, self.ratings) if name)

    @property
    def has_user_attributes(self) -> bool:
        return self.users is not None

    @property
    def rating_range(self) -> tuple[float, float]:
        return (0.5 if self.half_stars else 1.0), 5.0

    @property
    def has_header(self) -> bool:
        return self.ratings.endswith(".csv")


LAYOUTS = {
    ML_100K: Layout(ML_100K, "u.data", "u.item", "u.user", False, ("ml-100k",)),
    ML_1M: Layout(ML_1M, "ratings.dat", "movies.dat", "users.dat", False, ("ml-1m",)),
    ML_10M: Layout(ML_10M, "ratings.dat", "movies.dat", None, True, ("ml-10m",), ("tags.dat",)),
    CSV: Layout(
        CSV,
        "ratings.csv",
        "movies.csv",
        None,
        True,
        ("ml-20m", "ml-25m", "ml-32m", "ml-latest-small", "ml-latest"),
        ("tags.csv", "links.csv"),
    ),
}


class UnknownLayoutError(ValueError):
    """A directory that holds none of the known layouts."""


def detect(directory: str, exists: Callable[[str], bool] = os.path.isfile) -> Layout:
    """The layout of a release directory, from the files present (`exists` may be a remote check).

    `ratings.dat` with `users.dat` is ml-1m, without it ml-10m. Raises UnknownLayoutError naming what each
    layout needs and what is missing.
    """

    def has(name: str) -> bool:
        return exists(os.path.join(directory, name))

    for layout in LAYOUTS.values():
        if all(has(name) for name in layout.files) and not (layout.name == ML_10M and has("users.dat")):
            return layout
    needs = "; ".join(
        f"{layout.name} ({', '.join(layout.releases)}): {', '.join(layout.files)}" for layout in LAYOUTS.values()
    )
    raise UnknownLayoutError(f"{directory} holds no MovieLens layout I know. Each needs: {needs}")


def check_protocol(layout: Layout, protocol: str) -> None:
    """The folds u1..u5 exist in ml-100k only: ValueError elsewhere."""
    if splits.check(protocol) in splits.FOLDS and layout.name != ML_100K:
        raise ValueError(
            f"--split {protocol} uses the {protocol}.test fold shipped with ml-100k only; the {layout.name} layout "
            f"has no folds: use --split {splits.TIME} or {splits.STRATIFIED}"
        )


def input_files(layout: Layout, protocol: str) -> tuple[str, ...]:
    """Every file ExampleGen reads for `layout` under `protocol` (fingerprinted for the cache)."""
    check_protocol(layout, protocol)
    return (*layout.files, f"{protocol}.test") if protocol in splits.FOLDS else layout.files


def input_pattern(layout: Layout, protocol: str) -> str:
    """A glob matching every file of `input_files` (TFX's driver fingerprints its matches for the cache)."""
    if layout.name == ML_100K:
        return splits.input_pattern(protocol)
    check_protocol(layout, protocol)
    return "*.csv" if layout.has_header else "*.dat"


def missing_files(directory: str, layout: Layout, protocol: str) -> list[str]:
    return [name for name in input_files(layout, protocol) if not os.path.isfile(os.path.join(directory, name))]


# ---- Parsing -------------------------------------------------------------------------------------------


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


def header_columns(header: bytes, file: str, required: tuple[str, ...]) -> dict[str, int]:
    """Column name → index of a CSV header line (BOM, CRLF and extra columns are fine); ValueError if one of
    `required` is missing."""
    text = header.decode("utf-8-sig").rstrip("\r\n")
    names = [name.strip() for name in next(csv.reader([text]))]
    missing = [name for name in required if name not in names]
    if missing:
        raise ValueError(f"{file}: header {text!r} lacks column(s) {', '.join(missing)}")
    return {name: names.index(name) for name in required}


RATING_COLUMNS = ("userId", "movieId", "rating", "timestamp")
MOVIE_COLUMNS = ("movieId", "title", "genres")


@dataclasses.dataclass(frozen=True)
class Parser:
    """Parses one layout's lines into movielens.Rating / User / Movie; bad lines raise MalformedRecordError.

    `columns` maps each CSV file to its header's column indices (header_columns); unused for other layouts.
    """

    layout: Layout
    columns: Mapping[str, Mapping[str, int]] = dataclasses.field(default_factory=dict)
    max_timestamp: int | None = None

    def _csv(self, line: RawLine) -> dict[str, str]:
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
        if self.layout.name == ML_100K:
            return movielens.parse_rating(line, self.max_timestamp)
        if self.layout.has_header:
            row = self._csv(line)
            user, movie, rating, stamp = (row[name] for name in RATING_COLUMNS)
        else:
            user, movie, rating, stamp = movielens.fields_of(line, "::", 4)
        return Rating(
            user_id=movielens.positive_id(user, "user id"),
            movie_id=movielens.positive_id(movie, "movie id"),
            rating=movielens.rating_value(rating, self.layout.half_stars),
            timestamp=movielens.timestamp_value(stamp, self.max_timestamp),
        )

    def movie(self, line: RawLine) -> Movie:
        if self.layout.name == ML_100K:
            return movielens.parse_movie(line)
        if self.layout.has_header:
            row = self._csv(line)
            movie, title, genres = (row[name] for name in MOVIE_COLUMNS)
        else:
            movie, title, genres = movielens.fields_of(line, "::", 3)
        if not title.strip():
            raise MalformedRecordError("title is empty", movielens.BAD_VALUE)
        title = title.strip()
        return Movie(movielens.positive_id(movie, "movie id"), title, release_year(title), genre_list(genres))

    def user(self, line: RawLine) -> User:
        if self.layout.name == ML_100K:
            return movielens.parse_user(line)
        if self.layout.name != ML_1M:
            raise ValueError(f"the {self.layout.name} layout has no users file")
        user, gender, age, occupation, zip_code = movielens.fields_of(line, "::", 5)
        if not (age.strip().isdigit() and int(age) in AGE_BANDS_1M):
            raise MalformedRecordError(f"age code {age!r} is not one of {AGE_BANDS_1M}", movielens.BAD_VALUE)
        if not (occupation.strip().isdigit() and int(occupation) < len(OCCUPATIONS_1M)):
            raise MalformedRecordError(f"occupation code {occupation!r} is not 0..20", movielens.BAD_VALUE)
        if not gender.strip() or not zip_code.strip():
            raise MalformedRecordError("gender or zip code is empty", movielens.BAD_VALUE)
        return User(
            movielens.positive_id(user, "user id"),
            int(age),
            gender.strip(),
            OCCUPATIONS_1M[int(occupation)],
            zip_code.strip(),
        )
