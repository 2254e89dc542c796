"""The RankingEvaluator's test users (components/ranking_evaluator/component.read_test_users), read from a split
written as ExampleGen writes it, with and without a users file."""

import os

import pytest
import tensorflow as tf

from components.example_gen import history
from components.example_gen.movielens import Movie, Rating, User
from components.ranking_evaluator.component import read_test_users

MOVIES = {m: Movie(m, f"Film {m} (1990)", 1990, ("Drama",)) for m in ("10", "11", "12")}
USERS = {"1": User("1", 24, "F", "writer", "12345"), "2": User("2", 61, "M", "artist", "54321")}
# A repeated movie for user 1: one relevant movie, not two.
RATINGS = [Rating("2", "11", 4.0, 5), Rating("1", "10", 5.0, 6), Rating("1", "10", 3.0, 7), Rating("2", "12", 2.0, 8)]


def write_split(root, with_users: bool, many: int = 0) -> str:
    """An Examples directory whose Split-test holds RATINGS (then `many` more ratings of user 1) in two files."""
    ratings = RATINGS + [Rating("1", str(100 + i), 3.0, 10 + i) for i in range(many)]
    examples = [
        history.to_example(r, USERS[r.user_id] if with_users else None, MOVIES.get(r.movie_id, MOVIES["12"]))
        for r in ratings
    ]
    split = os.path.join(root, "Split-test")
    os.makedirs(split)
    half = len(examples) // 2
    for index, part in enumerate((examples[:half], examples[half:])):
        with tf.io.TFRecordWriter(os.path.join(split, f"data_tfrecord-{index:05d}-of-00002.gz"), "GZIP") as out:
            for example in part:
                out.write(example.SerializeToString())
    return str(root)


@pytest.mark.parametrize("with_users", [True, False])
def test_each_user_has_their_movies_and_the_attributes_of_the_examples(tmp_path, with_users):
    users = read_test_users(write_split(tmp_path, with_users), "test")
    assert sorted(users) == ["1", "2"]
    assert users["2"]["relevant"] == {"11", "12"} and users["1"]["relevant"] == {"10"}
    expected = {"1": ("F", 24), "2": ("M", 61)} if with_users else {"1": (None, None), "2": (None, None)}
    assert {user: (entry["gender"], entry["age"]) for user, entry in users.items()} == expected


def test_a_split_larger_than_one_read_batch_is_read_whole(tmp_path):
    users = read_test_users(write_split(tmp_path, True, many=5000), "test")
    assert len(users["1"]["relevant"]) == 5001 and users["2"]["relevant"] == {"11", "12"}


def test_a_missing_split_is_an_error_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="Split-test"):
        read_test_users(str(tmp_path), "test")
