"""How ExampleGen's records travel between Beam stages: as tuples of primitives, not dataclasses.

Beam encodes an object it has no coder for with pickle, and its in-memory runner keeps every grouped value
decoded until the pipeline ends, so at a grouping each rating cost several kB as dataclasses (a movie history
as two tuples of 50 Python strings and floats). Measured, ExampleGen alone on 300,000 generated ratings:
104 s and 3.20 GB before, 85 s and 2.01 GB after (docs/releases.md, "Memory on one machine").
"""

from __future__ import annotations

import array
import dataclasses

from components.example_gen.history import MovieHistory
from components.example_gen.movielens import Rating

# Positions in a packed Rating, from the dataclass's own field order.
_RATING_FIELDS = [field.name for field in dataclasses.fields(Rating)]
RATING_USER, RATING_MOVIE, RATING_TIME = (_RATING_FIELDS.index(n) for n in ("user_id", "movie_id", "timestamp"))


def pack(record) -> tuple:
    """A record dataclass (movielens.RawLine, Rating, User, Movie) as the tuple of its fields; `Class(*t)` undoes it."""
    return tuple(record.__dict__.values())


def pack_movie_history(movie_history: MovieHistory) -> tuple[int, float, str, bytes]:
    """A MovieHistory as (count, rating sum, the raters' ids joined by commas, their ratings as float64 bytes)."""
    raters = ",".join(movie_history.raters)  # ids are validated positive integers: no commas
    ratings = array.array("d", movie_history.rater_ratings).tobytes()
    return movie_history.count, movie_history.rating_sum, raters, ratings


def unpack_movie_history(packed: tuple[int, float, str, bytes]) -> MovieHistory:
    """What pack_movie_history packed, equal to the original."""
    count, rating_sum, raters, ratings = packed
    return MovieHistory(count, rating_sum, tuple(raters.split(",")) if raters else (), tuple(array.array("d", ratings)))
