"""The file layouts of the MovieLens releases: which files each has, what its records hold, how to detect it.

- `ml-100k`: `u.data` (tab) / `u.user` / `u.item` (`|`), whole stars, user attributes, folds u1..u5.
- `ml-1m`: `ratings.dat` / `users.dat` / `movies.dat`, `::`-separated, latin-1 titles, user attributes
  (age bands and occupation codes, mapped to the names of the release's README).
- `ml-10m`: `ratings.dat` / `movies.dat` (+ `tags.dat`), `::`, half stars, no users file.
- `csv` (ml-20m, ml-25m, ml-32m, ml-latest, ml-latest-small): `ratings.csv` / `movies.csv` with a header
  (+ `tags.csv`, `links.csv`), read by column name (extra columns, BOM and CRLF are fine), UTF-8, titles quoted
  when they hold commas or quotes, the year inside the title, half stars, no users file.

Each layout's parser is in `readers/`; every layout's records go through the same checks (movielens.py) and are
rejected with the same reasons. No Beam and no TensorFlow here (the config and the CLI use it).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

from components.example_gen import splits

ML_100K, ML_1M, ML_10M, CSV = "ml-100k", "ml-1m", "ml-10m", "csv"
# Genres of the later releases that ml-100k's list lacks ("Children" is ml-20m's spelling of "Children's").
LATER_GENRES = ("Children", "IMAX")
# Movies in ml-20m and later may list up to 10 genres (Transform keeps features.MAX_GENRES of them).
MAX_LISTED_GENRES = 10


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
    """A glob matching every file of `input_files` (TFX's ExampleGen driver fingerprints its matches for the
    cache): ml-100k's `u.*`, plus `uK.*` for fold K; `*.dat` or `*.csv` elsewhere. A few unread files (u.genre,
    uK.base, tags) match too, which only makes the cache stricter."""
    check_protocol(layout, protocol)
    if layout.name == ML_100K:
        return f"u[.{protocol[1]}]*" if protocol in splits.FOLDS else "u.*"
    return "*.csv" if layout.has_header else "*.dat"


def missing_files(directory: str, layout: Layout, protocol: str) -> list[str]:
    return [name for name in input_files(layout, protocol) if not os.path.isfile(os.path.join(directory, name))]
