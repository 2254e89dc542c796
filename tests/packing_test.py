"""ExampleGen's records packed for Beam (components/example_gen/packing.py) unpack to equal records."""

from components.example_gen import movielens
from components.example_gen.history import MovieHistory
from components.example_gen.packing import pack, pack_movie_history, unpack_movie_history


def test_records_unpack_to_equal_records():
    records = [
        movielens.RawLine("ratings.csv", 7, b"1,2,3.5,100", terminated=False),
        movielens.Rating("12", "345", 3.5, 978300760),
        movielens.User("12", 25, "F", "writer", "02138"),
        movielens.Movie("345", 'Toy Story, "the" (1995)', 1995, ("Animation", "Children's")),
    ]
    for record in records:
        packed = pack(record)
        assert type(packed) is tuple and type(record)(*packed) == record


def test_movie_histories_unpack_to_equal_histories():
    histories = [
        MovieHistory(),
        MovieHistory(1, 4.0, ("7",), (4.0,)),
        MovieHistory(60, 201.5, tuple(str(u) for u in range(1, 51)), tuple(0.5 + (u % 10) / 2 for u in range(50))),
        MovieHistory(3, 10.1, ("1", "22", "333"), (3.3, 3.4, 3.4)),  # not halves: float64 keeps them exactly
    ]
    for history in histories:
        packed = pack_movie_history(history)
        assert [type(part) for part in packed] == [int, float, str, bytes]
        assert unpack_movie_history(packed) == history
