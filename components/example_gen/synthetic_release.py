"""Synthetic MovieLens releases of any size, in any layout (`recommender data synth`), for scale runs and tests
(the small structured ml-100k data of the e2e tests: tiny_ml100k.py).

Movie popularity and user activity follow power laws (a few blockbusters and heavy raters, a long tail);
a rating is a global mean plus a user effect, a movie effect and the user's taste for the movie's genres,
plus noise, in whole stars (ml-100k, ml-1m) or half stars (ml-10m, CSV). Users arrive over the years, rate in
bursts, and rate each movie once. Deterministic per seed, and written user by user, so memory grows with the
number of users and movies, never with the number of ratings.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

import numpy as np

from components.example_gen import layouts, movielens
from components.example_gen.readers import dat, headed_csv

_START = 946_684_800  # 2000-01-01
_YEAR = 31_556_952
_GENRES = movielens.GENRES[1:]  # without "unknown"


@dataclasses.dataclass(frozen=True)
class SynthSpec:
    ratings: int
    users: int
    movies: int
    seed: int = 0
    years: int = 10

    def __post_init__(self) -> None:
        if min(self.ratings, self.users, self.movies) < 1:
            raise ValueError("ratings, users and movies must be positive")
        if self.ratings > self.users * self.movies // 2:
            raise ValueError(
                f"{self.ratings:,} ratings do not fit {self.users:,} users × {self.movies:,} movies "
                "(at most half of the pairs): give more --users or --movies"
            )


def default_spec(ratings: int, seed: int = 0) -> SynthSpec:
    """MovieLens-like proportions: about 100 ratings per user and 200 per movie, and at most a quarter of the
    (user, movie) pairs rated (small sizes get more movies)."""
    users = max(20, ratings // 100)
    return SynthSpec(ratings, users, max(20, ratings // 200, -(-4 * ratings // users)), seed)


def _counts(rng: np.random.Generator, total: int, n: int, cap: int, exponent: float) -> np.ndarray:
    """`n` power-law counts summing to exactly `total`, each within 1..cap, in random order."""
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    counts = np.minimum(np.maximum(np.floor(weights / weights.sum() * total), 1), cap).astype(np.int64)
    while (left := total - int(counts.sum())) != 0:  # hand out (or take back) the rounding, within 1..cap
        room = np.flatnonzero(counts < cap) if left > 0 else np.flatnonzero(counts > 1)
        step = min(abs(left), len(room))
        counts[room[:step]] += 1 if left > 0 else -1
    return rng.permutation(counts)


def _writer(path: Path):
    return open(path, "w", encoding="utf-8", newline="")


def write(directory: str | Path, layout_name: str, spec: SynthSpec, progress=lambda message: None) -> Path:
    """Writes a synthetic release of `spec` in `layout_name` (layouts.LAYOUTS) into `directory`; returns it."""
    layout = layouts.LAYOUTS[layout_name]
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    g = len(_GENRES)
    movie_genres = [sorted(rng.choice(g, size=int(rng.integers(1, 4)), replace=False)) for _ in range(spec.movies)]
    genre_share = np.zeros((spec.movies, g))  # each movie's genres, weights summing to 1
    for movie, genres in enumerate(movie_genres):
        genre_share[movie, genres] = 1.0 / len(genres)
    movie_effect = rng.normal(0, 0.5, spec.movies)
    years = rng.integers(1930, 2000 + spec.years, spec.movies)
    popularity = 1.0 / np.arange(1, spec.movies + 1) ** 0.9
    popularity = rng.permutation(popularity / popularity.sum())
    user_effect = rng.normal(0, 0.4, spec.users)
    taste = rng.normal(0, 0.5, (spec.users, g))
    per_user = _counts(rng, spec.ratings, spec.users, spec.movies // 2, 0.8)
    first = rng.uniform(0, spec.years * _YEAR * 0.8, spec.users)
    _write_movies(out, layout, movie_genres, years)
    if layout.users:
        _write_users(out, layout, rng, spec.users)
    step = 0.5 if layout.half_stars else 1.0
    low, high = layout.rating_range
    with _writer(out / layout.ratings) as handle:
        if layout.has_header:
            handle.write(",".join(headed_csv.RATING_COLUMNS) + "\n")
        sep = {layouts.ML_100K: "\t", layouts.CSV: ","}.get(layout.name, "::")
        for user in range(spec.users):
            n = int(per_user[user])
            movies = rng.choice(spec.movies, size=n, replace=False, p=popularity)
            genre_taste = genre_share[movies] @ taste[user]
            value = 3.5 + user_effect[user] + movie_effect[movies] + genre_taste + rng.normal(0, 0.6, n)
            stars = np.clip(np.round(value / step) * step, low, high)
            times = (_START + first[user] + np.cumsum(rng.exponential(_YEAR * 0.2 / n, n))).astype(np.int64)
            buffer = io.StringIO()
            for movie, star, stamp in zip(movies, stars, times, strict=True):
                rating = f"{star:g}" if layout.half_stars else f"{int(star)}"
                buffer.write(f"{user + 1}{sep}{movie + 1}{sep}{rating}{sep}{stamp}\n")
            handle.write(buffer.getvalue())
            if user % max(1, spec.users // 10) == 0:
                progress(f"  user {user + 1:,} of {spec.users:,}")
    return out


def _title(movie: int, year: int) -> str:
    """Titles like the real ones: some with commas, quotes or an article moved to the end."""
    if movie % 7 == 3:
        return f"Movie {movie + 1}, The ({year})"
    if movie % 11 == 5:
        return f'"Movie" {movie + 1}: Return ({year})'
    return f"Movie {movie + 1} ({year})"


def _write_movies(out: Path, layout: layouts.Layout, movie_genres: list, years: np.ndarray) -> None:
    names = [[_GENRES[i] for i in genres] for genres in movie_genres]
    with _writer(out / layout.movies) as handle:
        if layout.name == layouts.ML_100K:
            for m, genres in enumerate(names):
                flags = "|".join("1" if genre in genres else "0" for genre in movielens.GENRES)
                handle.write(
                    f"{m + 1}|{_title(m, years[m])}|01-Jan-{years[m]}||http://example.invalid/{m + 1}|{flags}\n"
                )
        elif layout.has_header:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(headed_csv.MOVIE_COLUMNS)
            for m, genres in enumerate(names):
                writer.writerow([m + 1, _title(m, years[m]), "|".join(genres)])
        else:
            for m, genres in enumerate(names):
                handle.write(f"{m + 1}::{_title(m, years[m])}::{'|'.join(genres)}\n")


def _write_users(out: Path, layout: layouts.Layout, rng: np.random.Generator, users: int) -> None:
    with _writer(out / layout.users) as handle:
        for u in range(1, users + 1):
            gender, zip_code = ("F", "M")[int(rng.integers(2))], f"{int(rng.integers(10000, 99999))}"
            if layout.name == layouts.ML_100K:
                occupation = movielens.OCCUPATIONS[int(rng.integers(len(movielens.OCCUPATIONS)))]
                handle.write(f"{u}|{int(rng.integers(15, 70))}|{gender}|{occupation}|{zip_code}\n")
            else:
                age = dat.AGE_BANDS_1M[int(rng.integers(len(dat.AGE_BANDS_1M)))]
                handle.write(f"{u}::{gender}::{age}::{int(rng.integers(len(dat.OCCUPATIONS_1M)))}::{zip_code}\n")
