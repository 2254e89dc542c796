"""The client side of the serving contract: history features computed like ExampleGen, named input errors."""

from pathlib import Path

import pytest
from history_test import _examples, records

from components.example_gen import movielens
from components.example_gen.serving_history import EarlierRating, history_features, raw_request
from transform import features as f

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_history_features_equal_what_example_gen_wrote_for_every_rating(synthetic_dir):
    """For each rating of the synthetic data: the request a client would build from the raw files (the user's
    ratings, each with its movie's earlier ratings, and the movie's ratings) gives ExampleGen's features."""
    examples = _examples(synthetic_dir)
    genres = {
        line.split("|")[0]: tuple(
            g for g, flag in zip(movielens.GENRES, line.split("|")[5:], strict=True) if flag == "1"
        )
        for line in (synthetic_dir / movielens.MOVIES_FILE).read_text(movielens.ENCODING).splitlines()
    }
    ratings = [line.split("\t") for line in (synthetic_dir / movielens.RATINGS_FILE).read_text().splitlines()]
    by_movie: dict[str, list[tuple[str, float, int]]] = {}
    for rater, movie, value, at in ratings:
        by_movie.setdefault(movie, []).append((rater, float(value), int(at)))

    def earlier_of_movie(movie: str, at: int) -> list[float]:
        return [v for _, v, t in by_movie[movie] if t < at]

    checked = 0
    for (user, movie, at), example in sorted(examples.items())[::25]:  # every 25th rating: 120 of 3,000
        user_ratings = [
            EarlierRating(
                m, float(v), int(t), genres[m],
                len(earlier_of_movie(m, int(t))), sum(earlier_of_movie(m, int(t))),
            )
            for u, m, v, t in ratings if u == user
        ]  # fmt: skip
        request = history_features(user_ratings, at, genres[movie], by_movie[movie])
        for name, value in request.items():
            written = example[name]
            if isinstance(value, tuple):
                assert list(value) == written, (user, movie, at, name)
            else:
                assert value == pytest.approx(written, abs=1e-4), (user, movie, at, name)
        checked += 1
    assert checked == 120


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["stratified", "u1"])  # the time split: every e2e run's Evaluator
def test_every_example_example_gen_writes_passes_the_serving_coherence_checks(synthetic_dir, tmp_path, protocol):
    """The checks the serving signatures apply (components/trainer/export.py) hold for every history ExampleGen
    writes, under every protocol: the Evaluator sends exactly these examples through serving_default."""
    import random
    import shutil

    import tensorflow as tf
    from tensorflow_transform.tf_metadata import schema_utils
    from tfx.utils import io_utils

    from components.trainer.export import coherence_checks
    from pipeline.pipeline import schema_path

    data = tmp_path / "data"
    shutil.copytree(synthetic_dir, data)
    lines = (data / movielens.RATINGS_FILE).read_text().splitlines()
    (data / "u1.test").write_text("\n".join(sorted(random.Random(0).sample(lines, len(lines) // 5))) + "\n")
    spec = schema_utils.schema_as_feature_spec(io_utils.SchemaReader().read(schema_path())).feature_spec
    serialized = tf.stack([record for _, record in records(data, protocol)])
    parsed = tf.io.parse_example(serialized, {k: v for k, v in spec.items() if k != f.LABEL_KEY})
    assert len(coherence_checks(parsed)) > 10  # each raises InvalidArgumentError if it fails (eager)


def test_only_strictly_earlier_ratings_count():
    user = [EarlierRating("1", 5.0, 100), EarlierRating("2", 1.0, 200), EarlierRating("3", 3.0, 300)]
    movie = [("7", 4.0, 150), ("8", 2.0, 200), ("9", 5.0, 250)]
    history = history_features(user, at=200, genres=(), movie_ratings=movie)
    assert history[f.USER_PRIOR_COUNT] == 1 and history[f.USER_PRIOR_MOVIES] == ("1",)
    assert history[f.USER_SECONDS_SINCE_LAST] == 100
    assert (history[f.MOVIE_PRIOR_COUNT], history[f.MOVIE_PRIOR_RATING_SUM]) == (1, 4.0)
    assert (history[f.MOVIE_PRIOR_RATERS], history[f.MOVIE_PRIOR_RATER_RATINGS]) == (("7",), (4.0,))
    nothing = history_features([], at=200)
    assert nothing[f.USER_PRIOR_COUNT] == 0 and nothing[f.USER_SECONDS_SINCE_LAST] == -1
    assert nothing[f.USER_PRIOR_MOVIES] == () and nothing[f.MOVIE_PRIOR_COUNT] == 0
    assert nothing[f.MOVIE_PRIOR_RATERS] == ()


def test_movie_ratings_without_their_user_are_refused_naming_the_form():
    with pytest.raises(ValueError, match=r"movie_ratings: expected \(user id, rating, timestamp\) triples"):
        history_features([], at=200, movie_ratings=[(4.0, 150)])


def test_the_documented_example_runs_and_says_what_it_returns():
    readme = (REPO / "docs" / "serving.md").read_text()
    snippet = readme.split("```python\nfrom components.example_gen.serving_history import", 1)[1].split("```", 1)[0]
    scope: dict = {}
    exec("from components.example_gen.serving_history import" + snippet, scope)  # noqa: S102
    history = scope["history"]
    assert history[f.USER_PRIOR_COUNT] == 2
    assert history[f.USER_PRIOR_MOVIES] == ("302", "377") and history[f.USER_PRIOR_MOVIE_RATINGS] == (3.0, 1.0)
    assert (history[f.USER_PRIOR_GENRE_COUNT], history[f.MOVIE_PRIOR_COUNT]) == (1, 2)
    assert history[f.MOVIE_PRIOR_RATERS] == ("1", "22") and history[f.MOVIE_PRIOR_RATER_RATINGS] == (4.0, 3.0)


def test_raw_request_pads_lists_and_keeps_dtypes():
    instance = {name: "x" for name in f.STRING_FEATURES} | {name: 1 for name in f.INT_FEATURES}
    instance |= {name: 1.5 for name in f.HISTORY_FLOAT_FEATURES}
    instance |= {f.MOVIE_PRIOR_RATERS: ["7"], f.MOVIE_PRIOR_RATER_RATINGS: [3.0]}
    first = instance | {f.MOVIE_GENRES: ["Drama"], f.USER_PRIOR_MOVIES: ["1", "2"], f.USER_PRIOR_MOVIE_RATINGS: [4, 5]}
    second = instance | {f.MOVIE_GENRES: [], f.USER_PRIOR_MOVIES: [], f.USER_PRIOR_MOVIE_RATINGS: []}
    tensors = raw_request([first, second])
    assert set(tensors) == set(f.SERVING_FEATURES)
    assert tensors[f.USER_PRIOR_MOVIES].numpy().tolist() == [[b"1", b"2"], [b"", b""]]
    assert tensors[f.USER_PRIOR_MOVIE_RATINGS].numpy().tolist() == [[4.0, 5.0], [0.0, 0.0]]
    assert tensors[f.MOVIE_GENRES].shape == (2, 1) and tensors[f.USER_AGE].dtype.name == "int64"
    with pytest.raises(ValueError, match="instance 1: user_age: expected an integer, got float 1.5"):
        raw_request([first, second | {f.USER_AGE: 1.5}])
    with pytest.raises(ValueError, match=r"instance 0: user_prior_movies\[1\]: expected a string, got int 2"):
        raw_request([first | {f.USER_PRIOR_MOVIES: ["1", 2]}])
