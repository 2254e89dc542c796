"""ml-1m and ml-10m: `ratings.dat`, `movies.dat` and (ml-1m only) `users.dat`, `::`-separated."""

from __future__ import annotations

import dataclasses

from components.example_gen import movielens
from components.example_gen.movielens import MalformedRecordError, Movie, Rating, RawLine, User
from components.example_gen.readers import titles

# ml-1m's users.dat occupation codes (its README), 0..20.
OCCUPATIONS_1M = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
    "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer", "programmer",
    "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer", "tradesman/craftsman",
    "unemployed", "writer",
)  # fmt: skip
AGE_BANDS_1M = (1, 18, 25, 35, 45, 50, 56)  # ml-1m's age codes: 1 = under 18, 18 = 18-24, ... 56 = 56+


@dataclasses.dataclass(frozen=True)
class DatReader:
    half_stars: bool  # ml-10m
    users: bool  # ml-1m
    max_timestamp: int | None = None

    def rating(self, line: RawLine) -> Rating:
        """`UserID::MovieID::Rating::Timestamp`."""
        user, movie, rating, stamp = movielens.fields_of(line, "::", 4)
        return Rating(
            user_id=movielens.positive_id(user, "user id"),
            movie_id=movielens.positive_id(movie, "movie id"),
            rating=movielens.rating_value(rating, self.half_stars),
            timestamp=movielens.timestamp_value(stamp, self.max_timestamp),
        )

    def movie(self, line: RawLine) -> Movie:
        """`MovieID::Title (Year)::Genre|Genre`."""
        return titles.movie(*movielens.fields_of(line, "::", 3))

    def user(self, line: RawLine) -> User:
        """`UserID::Gender::Age code::Occupation code::Zip-code` (ml-1m): codes → the README's values."""
        if not self.users:
            raise ValueError("this layout has no users file")
        user, gender, age, occupation, zip_code = movielens.fields_of(line, "::", 5)
        if not (age.strip().isdigit() and int(age) in AGE_BANDS_1M):
            raise MalformedRecordError(f"age code {age!r} is not one of {AGE_BANDS_1M}", movielens.BAD_VALUE)
        if not (occupation.strip().isdigit() and int(occupation) < len(OCCUPATIONS_1M)):
            raise MalformedRecordError(f"occupation code {occupation!r} is not 0..20", movielens.BAD_VALUE)
        if not gender.strip() or not zip_code.strip():
            raise MalformedRecordError("gender or zip code is empty", movielens.BAD_VALUE)
        return User(
            movielens.positive_id(user, "user id"), int(age), gender.strip(), OCCUPATIONS_1M[int(occupation)],
            zip_code.strip(),
        )  # fmt: skip
