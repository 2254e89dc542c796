"""Small synthetic MovieLens-100k-shaped datasets with planted structure, for tests and smoke runs
(releases of any size and layout: synthetic_release.py).

Ratings have real structure (user and movie biases, a genre/gender effect), so a
model trained on them beats the train mean; who rates what has structure too (each user
has one of `tastes` groups and draws most of their movies from that group's), so a
recommender that learned it beats most popular; and users arrive over time, so later
splits hold unseen users, as in the real data.
"""

from __future__ import annotations

import random
from pathlib import Path

from components.example_gen import movielens

_START = 874_724_710  # 1997-09-20, like ml-100k
_DAY = 86_400
# The share of a user's ratings drawn from their taste group's movies (the rest: any movie).
IN_TASTE = 0.6


def taste_of_movie(movie_id: int, tastes: int) -> int:
    """The taste group a movie belongs to: movies are dealt round-robin to the groups."""
    return (movie_id - 1) % tastes


def write_synthetic_movielens(
    directory: str | Path, users: int = 120, movies: int = 80, ratings: int = 3000, seed: int = 0, tastes: int = 4
) -> Path:
    """Writes u.data, u.user and u.item into `directory` and returns it.

    User `u` has taste group `(u - 1) % tastes` and draws IN_TASTE of their movies from it (`taste_of_movie`).
    """
    rng = random.Random(seed)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    user_rows, user_bias, user_gender = [], {}, {}
    for uid in range(1, users + 1):
        gender = rng.choice(movielens.GENDERS)
        user_gender[uid], user_bias[uid] = gender, rng.gauss(0, 0.5)
        occupation = rng.choice(movielens.OCCUPATIONS)
        user_rows.append(f"{uid}|{rng.randint(15, 70)}|{gender}|{occupation}|{rng.randint(10000, 99999)}")
    movie_rows, movie_bias, movie_genres = [], {}, {}
    for mid in range(1, movies + 1):
        genres = set(rng.sample(range(1, len(movielens.GENRES)), rng.randint(1, 3)))
        flags = "|".join("1" if i in genres else "0" for i in range(len(movielens.GENRES)))
        year = rng.randint(1930, 1998)
        date = "" if mid == movies else f"01-Jan-{year}"  # one movie without a date, like ml-100k
        movie_rows.append(f"{mid}|Movie {mid} ({year})|{date}||http://example.invalid/{mid}|{flags}")
        movie_bias[mid], movie_genres[mid] = rng.gauss(0, 0.6), genres
    # Users become active at a random time and stay for a while (a few days to months), so the newest split
    # holds new users and users with a history.
    first_day = {uid: rng.uniform(0, 200) for uid in range(1, users + 1)}
    active_days = {uid: rng.uniform(5, 100) for uid in range(1, users + 1)}
    rating_rows, seen = [], set()
    by_taste = [[m for m in range(1, movies + 1) if taste_of_movie(m, tastes) == t] for t in range(tastes)]
    while len(rating_rows) < ratings:
        uid = rng.randint(1, users)
        own = by_taste[(uid - 1) % tastes]
        mid = rng.choice(own) if rng.random() < IN_TASTE else rng.randint(1, movies)
        if (uid, mid) in seen:
            continue
        seen.add((uid, mid))
        effect = 0.4 if (8 in movie_genres[mid]) == (user_gender[uid] == "F") else -0.4  # Drama x gender
        value = 3.5 + user_bias[uid] + movie_bias[mid] + effect + rng.gauss(0, 0.5)
        day = first_day[uid] + rng.uniform(0, active_days[uid])
        rating_rows.append(f"{uid}\t{mid}\t{min(5, max(1, round(value)))}\t{_START + int(day * _DAY)}")
    (out / movielens.USERS_FILE).write_text("\n".join(user_rows) + "\n", encoding=movielens.ENCODING)
    (out / movielens.MOVIES_FILE).write_text("\n".join(movie_rows) + "\n", encoding=movielens.ENCODING)
    (out / movielens.RATINGS_FILE).write_text("\n".join(rating_rows) + "\n", encoding=movielens.ENCODING)
    return out
