"""ml-100k: `u.data` (tab), `u.user` and `u.item` (`|`); the parsing rules are movielens.py's."""

from __future__ import annotations

import dataclasses

from components.example_gen import movielens
from components.example_gen.movielens import Movie, Rating, RawLine, User


@dataclasses.dataclass(frozen=True)
class Ml100kReader:
    max_timestamp: int | None = None

    def rating(self, line: RawLine) -> Rating:
        return movielens.parse_rating(line, self.max_timestamp)

    def movie(self, line: RawLine) -> Movie:
        return movielens.parse_movie(line)

    def user(self, line: RawLine) -> User:
        return movielens.parse_user(line)
