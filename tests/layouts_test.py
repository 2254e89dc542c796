"""Every MovieLens release layout: detection, parsing, reading in byte ranges, and ExampleGen's Beam transform."""

import json
import os
import random
import subprocess
import sys

import apache_beam as beam
import pytest
import tensorflow as tf

from components.example_gen import layouts, movielens, readers, reading, synthetic_release
from components.example_gen.executor import LINE_COUNTS, REJECTED, ReadMovieLens
from components.example_gen.movielens import MalformedRecordError, RawLine
from components.example_gen.quarantine import WriteQuarantine, read_summary
from components.example_gen.readers import headed_csv, titles
from transform import features as f

SPLIT = movielens.TimeSplit(("train", "eval", "test"), (0.6, 0.2, 0.2))

# ml-25m's layout as copies in the wild have it: BOM, CRLF, extra and reordered columns, quoted titles.
CSV_MOVIES = (
    "\ufeffmovieId,title,genres,imdbId\r\n"
    "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy,0114709\r\n"
    '2,"American President, The (1995)",Comedy|Drama|Romance,0112346\r\n'
    '3,"""Great Performances"" Cats (1998)",Musical,0173722\r\n'
    "4,Untitled Project,(no genres listed),0000001\r\n"
)
CSV_RATINGS = (
    "timestamp,userId,movieId,rating,source\r\n"
    "964982703,1,1,4.0,web\r\n"
    "964981247,1,2,3.5,web\r\n"
    "964982224,2,3,0.5,app\r\n"
    "964983815,2,4,5.0,app\r\n"
    "964982931,3,1,4.5,web\r\n"
    "964982400,3,9,4.0,web\r\n"  # line 7: movie 9 is not in movies.csv
    "964982401,3,2,5.5,web\r\n"  # line 8: not a half star in 0.5..5
)
ML1M_USERS = "1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::15::55117\n"
ML1M_MOVIES = "1::Toy Story (1995)::Animation|Children's|Comedy\n2::Caf\xe9 Society (1995)::Drama\n"
ML1M_RATINGS = "1::1::5::978300760\n1::2::3::978302109\n2::1::4::978301968\n3::2::3.5::978300275\n4::1::4::978300276\n"
ML10M_MOVIES = "1::Toy Story (1995)::Adventure|Animation|Children|Comedy|Fantasy\n2::Jumanji (1995)::Adventure\n"
ML10M_RATINGS = "1::1::5::838985046\n1::2::4.5::838983525\n2::2::0.5::838983392\n"


def _write(directory, files: dict[str, str], encoding="utf-8"):
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_bytes(text.encode(encoding))
    return directory


@pytest.fixture()
def releases(tmp_path):
    return {
        layouts.CSV: _write(
            tmp_path / "ml-25m", {"movies.csv": CSV_MOVIES, "ratings.csv": CSV_RATINGS, "tags.csv": ""}
        ),
        layouts.ML_1M: _write(
            tmp_path / "ml-1m",
            {"users.dat": ML1M_USERS, "movies.dat": ML1M_MOVIES, "ratings.dat": ML1M_RATINGS},
            "latin-1",
        ),
        layouts.ML_10M: _write(
            tmp_path / "ml-10m", {"movies.dat": ML10M_MOVIES, "ratings.dat": ML10M_RATINGS, "tags.dat": ""}
        ),
    }


def test_each_layout_is_detected_from_its_files(releases, synthetic_dir):
    assert layouts.detect(str(synthetic_dir)).name == layouts.ML_100K
    for name, directory in releases.items():
        assert layouts.detect(str(directory)).name == name  # ml-1m vs ml-10m: users.dat decides


def test_an_unknown_directory_names_what_each_layout_needs(tmp_path):
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    with pytest.raises(layouts.UnknownLayoutError) as error:
        layouts.detect(str(tmp_path))
    message = str(error.value)
    for needed in ("u.data", "users.dat", "movies.csv", "ml-25m"):
        assert needed in message


def test_folds_exist_only_in_ml100k():
    layouts.check_protocol(layouts.LAYOUTS[layouts.ML_100K], "u1")
    for name in (layouts.ML_1M, layouts.ML_10M, layouts.CSV):
        with pytest.raises(ValueError, match="u1.test fold shipped with ml-100k only"):
            layouts.check_protocol(layouts.LAYOUTS[name], "u1")
        layouts.check_protocol(layouts.LAYOUTS[name], "stratified")


def test_titles_genres_and_headers():
    assert titles.release_year("American President, The (1995)") == 1995
    assert titles.release_year("Fawlty Towers (1975-1979)") == 1975
    assert titles.release_year("Untitled Project") == f.RELEASE_YEAR_UNKNOWN
    assert titles.genre_list("Comedy|Drama") == ("Comedy", "Drama")
    assert titles.genre_list("(no genres listed)") == ("unknown",)
    with pytest.raises(MalformedRecordError):
        titles.genre_list("")
    columns = headed_csv.header_columns(
        b"\xef\xbb\xbftimestamp,userId,movieId,rating,x\r", "r.csv", headed_csv.RATING_COLUMNS
    )
    assert columns == {"userId": 1, "movieId": 2, "rating": 3, "timestamp": 0}
    with pytest.raises(ValueError, match="lacks column"):
        headed_csv.header_columns(b"user,movie,rating,timestamp", "r.csv", headed_csv.RATING_COLUMNS)


def _line(file: str, text: str) -> RawLine:
    return RawLine(file, 2, text.encode("utf-8"))


def test_half_stars_only_where_the_release_has_them():
    half = readers.for_layout(layouts.LAYOUTS[layouts.ML_10M])
    whole = readers.for_layout(layouts.LAYOUTS[layouts.ML_1M])
    assert half.rating(_line("ratings.dat", "1::2::0.5::838985046")).rating == 0.5
    for parser, text in ((whole, "1::2::3.5::978300760"), (half, "1::2::5.5::1"), (half, "1::2::0::1")):
        with pytest.raises(MalformedRecordError) as error:
            parser.rating(_line("ratings.dat", text))
        assert error.value.reason == movielens.BAD_RATING


def test_ml1m_users_map_codes_to_the_releases_names():
    user = readers.for_layout(layouts.LAYOUTS[layouts.ML_1M]).user(_line("users.dat", "7::M::35::17::10027-1234"))
    assert (user.user_id, user.gender, user.age, user.occupation) == ("7", "M", 35, "technician/engineer")
    with pytest.raises(MalformedRecordError):
        readers.for_layout(layouts.LAYOUTS[layouts.ML_1M]).user(_line("users.dat", "7::M::33::17::10027"))


def test_reading_in_byte_ranges_gives_the_lines_of_a_whole_file_read(tmp_path):
    rng = random.Random(7)
    for case in range(30):
        words = [rng.choice([b"a", b"bc", b"\r", b"", b"12345", b"\xc3\xa9"]) for _ in range(rng.randint(0, 40))]
        data = b"".join(word + rng.choice([b"\n", b"", b"\r\n"]) for word in words)
        path = tmp_path / f"f{case}.dat"
        path.write_bytes(data)
        expected = movielens.split_lines(path.name, data)
        for chunk in (1, 2, 3, 7, 64, 1 << 20):
            spans = reading.ranges(len(data), chunk)
            counts = [reading.count_newlines(str(path), start, end) for _, start, end in spans]
            got = [
                line
                for index, start, end in spans
                for line in reading.lines_in_range(str(path), start, end, sum(counts[:index]))
            ]
            assert got == expected, (case, chunk)


def _run(directory, layout_name, max_timestamp=2_000_000_000):
    """ReadMovieLens + WriteQuarantine on `directory`: (every example by (user, movie), summary, rejections)."""
    out = directory.parent / f"{directory.name}-out"
    with beam.Pipeline() as pipeline:
        read = pipeline | ReadMovieLens(str(directory), SPLIT, max_timestamp, layout=layouts.LAYOUTS[layout_name])
        _ = read.pop(REJECTED) | WriteQuarantine(str(out / "q"), read.pop(LINE_COUNTS))
        _ = tuple(read.values()) | beam.Flatten() | beam.io.WriteToTFRecord(str(out / "examples"), num_shards=1)
    examples = {}
    for record in tf.data.TFRecordDataset(str(out / "examples-00000-of-00001")):
        feature = tf.train.Example.FromString(record.numpy()).features.feature
        key = (feature[f.USER_ID].bytes_list.value[0].decode(), feature[f.MOVIE_ID].bytes_list.value[0].decode())
        examples[key] = feature
    rejections = [
        json.loads(line) for path in (out / "q").glob("rejected*.jsonl") for line in path.read_text().splitlines()
    ]
    return examples, read_summary(str(out / "q")), rejections


def _bytes(feature, name):
    return [v.decode() for v in feature[name].bytes_list.value]


@pytest.mark.slow
def test_csv_layout_through_example_gen(releases):
    examples, summary, rejections = _run(releases[layouts.CSV], layouts.CSV)
    assert sorted(examples) == [("1", "1"), ("1", "2"), ("2", "3"), ("2", "4"), ("3", "1")]
    assert {(r["file"], r["line_no"], r["reason"]) for r in rejections} == {
        ("ratings.csv", 7, movielens.UNKNOWN_MOVIE),
        ("ratings.csv", 8, movielens.BAD_RATING),
    }
    assert summary["lines"] == {"movies.csv": 4, "ratings.csv": 7}  # records: headers are not counted
    assert examples[("1", "2")][f.RATING].float_list.value[0] == 3.5
    assert examples[("2", "3")][f.RATING].float_list.value[0] == 0.5
    assert _bytes(examples[("1", "2")], f.MOVIE_TITLE) == ["American President, The (1995)"]
    assert examples[("1", "2")][f.MOVIE_RELEASE_YEAR].int64_list.value[0] == 1995
    assert _bytes(examples[("2", "3")], f.MOVIE_TITLE) == ['"Great Performances" Cats (1998)']
    assert _bytes(examples[("2", "4")], f.MOVIE_GENRES) == ["unknown"]
    assert examples[("2", "4")][f.MOVIE_RELEASE_YEAR].int64_list.value[0] == f.RELEASE_YEAR_UNKNOWN
    assert _bytes(examples[("1", "1")], f.MOVIE_GENRES) == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    for feature in examples.values():
        assert not set(f.USER_ATTRIBUTES) & set(feature)  # absent, not filled in
    # Point-in-time history works as in ml-100k: user 1's second rating (by time) sees the first.
    assert examples[("1", "1")][f.USER_PRIOR_COUNT].int64_list.value[0] == 1
    assert examples[("1", "1")][f.USER_PRIOR_RATING_SUM].float_list.value[0] == 3.5


@pytest.mark.slow
def test_ml1m_and_ml10m_layouts_through_example_gen(releases):
    examples, _, rejections = _run(releases[layouts.ML_1M], layouts.ML_1M)
    assert sorted(examples) == [("1", "1"), ("1", "2"), ("2", "1")]
    assert {(r["line_no"], r["reason"]) for r in rejections} == {(4, movielens.BAD_RATING), (5, movielens.UNKNOWN_USER)}
    user = examples[("1", "2")]
    assert _bytes(user, f.MOVIE_TITLE) == ["Café Society (1995)"]  # latin-1
    assert user[f.USER_AGE].int64_list.value[0] == 1
    assert _bytes(user, f.USER_OCCUPATION) == ["K-12 student"]
    assert _bytes(user, f.USER_GENDER) == ["F"]

    examples, _, rejections = _run(releases[layouts.ML_10M], layouts.ML_10M)
    assert rejections == []
    assert {key: e[f.RATING].float_list.value[0] for key, e in examples.items()} == {
        ("1", "1"): 5.0,
        ("1", "2"): 4.5,
        ("2", "2"): 0.5,
    }
    assert not set(f.USER_ATTRIBUTES) & set(examples[("1", "1")])


@pytest.mark.slow
@pytest.mark.parametrize("layout_name", [layouts.ML_100K, layouts.ML_1M, layouts.ML_10M, layouts.CSV])
def test_synthetic_releases_of_every_layout_come_through_whole(tmp_path, layout_name):
    directory = synthetic_release.write(
        tmp_path / layout_name, layout_name, synthetic_release.SynthSpec(2000, 60, 90, seed=1)
    )
    examples, summary, rejections = _run(directory, layout_name)
    assert rejections == []
    assert len(examples) == 2000
    assert summary["lines"][layouts.LAYOUTS[layout_name].ratings] == 2000


def test_synth_is_deterministic_per_seed_and_exact_in_size(tmp_path):
    spec = synthetic_release.SynthSpec(3000, 50, 120, seed=5)
    first, again = (
        synthetic_release.write(tmp_path / "a", layouts.CSV, spec),
        synthetic_release.write(tmp_path / "b", layouts.CSV, spec),
    )
    other = synthetic_release.write(tmp_path / "c", layouts.CSV, synthetic_release.SynthSpec(3000, 50, 120, seed=6))
    for name in ("ratings.csv", "movies.csv"):
        assert (first / name).read_bytes() == (again / name).read_bytes()
    assert (first / "ratings.csv").read_bytes() != (other / "ratings.csv").read_bytes()
    rows = (first / "ratings.csv").read_text().splitlines()[1:]
    assert len(rows) == 3000
    assert len({tuple(row.split(",")[:2]) for row in rows}) == 3000  # each user rates a movie once
    assert {row.split(",")[0] for row in rows} == {str(u) for u in range(1, 51)}
    assert {float(row.split(",")[2]) for row in rows} <= movielens.HALF_STAR_VALUES
    assert len((first / "movies.csv").read_text().splitlines()) == 121


def _peak_rss_mb(command: list[str]) -> float:
    """Peak resident memory of a child process, from the kernel's accounting of it (os.wait4)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, process.stderr.read()
    return usage.ru_maxrss / 1024


def test_synth_memory_does_not_grow_with_the_number_of_ratings(tmp_path):
    def peak(ratings: int) -> float:
        return _peak_rss_mb(
            [sys.executable, "-m", "recommender.cli", "data", "synth", "--ratings", str(ratings), "--users", "4000",
             "--movies", "1000", "--layout", "csv", "--output", str(tmp_path / str(ratings))]
        )  # fmt: skip

    small, large = peak(20_000), peak(400_000)
    assert (tmp_path / "400000" / "ratings.csv").stat().st_size > 15 * (
        tmp_path / "20000" / "ratings.csv"
    ).stat().st_size
    assert large < small + 40, (small, large)  # 20× the ratings, about the same memory (measured ≈ +0 MB)
