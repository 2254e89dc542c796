"""The pushed model's rating signatures (serving_default, predict_raw): what clients send and get back.

The model is the shared first run's (e2e_run.py).
"""

import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from e2e_run import ENSEMBLE

from components.example_gen.history import set_feature
from components.example_gen.serving_history import EarlierRating, history_features, raw_request
from transform import features as f

pytestmark = pytest.mark.e2e

NOW = 880_000_000
DAY = 86_400


def earlier(*ratings: float, movies: tuple[str, ...] | None = None) -> list[EarlierRating]:
    """Earlier ratings, one a day until two hours before NOW, of movies 1, 2, ... (or `movies`)."""
    movies = movies or tuple(str(i + 1) for i in range(len(ratings)))
    n = len(ratings)
    return [
        EarlierRating(movie, value, NOW - 7200 - (n - 1 - i) * DAY, ("Drama",), i, 3.5 * i)
        for i, (movie, value) in enumerate(zip(movies, ratings, strict=True))
    ]  # movie i had i earlier ratings, mean 3.5


# A user with 4 earlier ratings (5, 3, 3, 3); a movie rated 10 times before (sum 38) by users 11..20.
USER_RATINGS = earlier(5.0, 3.0, 3.0, 3.0)
MOVIE_RATINGS = [(str(11 + i), 4.0 if i < 8 else 3.0, NOW - DAY) for i in range(10)]


def history(user_ratings=USER_RATINGS, genres=("Drama",), movie_ratings=MOVIE_RATINGS) -> dict:
    """The history features of a request at NOW, computed by the package's client function."""
    return history_features(user_ratings, NOW, genres, movie_ratings)


def raw_history(batch: int, values: dict | None = None) -> dict[str, tf.Tensor]:
    """The history features as predict_raw takes them, for `batch` identical requests."""
    values = values or history()
    dtypes = {**dict.fromkeys(f.HISTORY_INT_FEATURES, tf.int64), **dict.fromkeys(f.MULTI_STRING_FEATURES, tf.string)}
    return {
        k: tf.constant([list(v) if isinstance(v, tuple) else v] * batch, dtypes.get(k, tf.float32))
        for k, v in values.items()
    }


def serialized_example(
    user: str, movie: str, genres=("Drama",), occupation="writer", values: dict | None = None
) -> bytes:
    values = values or history(genres=genres)
    feature = {
        f.USER_ID: [user.encode()], f.MOVIE_ID: [movie.encode()], f.USER_GENDER: [b"F"],
        f.USER_OCCUPATION: [occupation.encode()], f.USER_ZIP: [b"55414"], f.MOVIE_TITLE: [b"A movie"],
        f.MOVIE_GENRES: [g.encode() for g in genres],
    }  # fmt: skip
    example = tf.train.Example()
    for key, value in feature.items():
        example.features.feature[key].bytes_list.value.extend(value)
    for key, value in {f.TIMESTAMP: NOW, f.USER_AGE: 33, f.MOVIE_RELEASE_YEAR: 1995}.items():
        example.features.feature[key].int64_list.value.append(value)
    for key, value in values.items():
        set_feature(example.features.feature, key, value)
    return example.SerializeToString()


def labelled(requests: list[bytes]) -> tf.Tensor:
    """The requests with a rating of 4 each: transform_features parses the label too."""
    examples = [tf.train.Example.FromString(request) for request in requests]
    for example in examples:
        example.features.feature[f.RATING].float_list.value.append(4.0)
    return tf.constant([example.SerializeToString() for example in examples])


@pytest.fixture(scope="module")
def model(first_run):
    """The SavedModel the first run pushed."""
    return tf.saved_model.load(first_run["summary"].pushed_path)


RAW_ATTRIBUTES = dict(
    user_gender=["F", "F"], user_occupation=["writer", "astronaut"], user_zip=["55414", "55414"],
    movie_title=["A movie", "A movie"],
)  # fmt: skip


def raw_inputs(batch: int = 2, values: dict | None = None, **overrides) -> dict[str, tf.Tensor]:
    """Every predict_raw input for `batch` requests (user 1 / an unknown user, movie 1 / an unknown one)."""
    users, movies = ["1", "no-such-user"] * batch, ["1", "999999"] * batch
    inputs = {f.USER_ID: tf.constant(users[:batch]), f.MOVIE_ID: tf.constant(movies[:batch])}
    inputs |= {k: tf.constant((v * batch)[:batch]) for k, v in RAW_ATTRIBUTES.items()}
    ints = {f.TIMESTAMP: NOW, f.USER_AGE: 33, f.MOVIE_RELEASE_YEAR: 1995}
    inputs |= {k: tf.constant([v] * batch, tf.int64) for k, v in ints.items()}
    inputs[f.MOVIE_GENRES] = tf.constant([["Drama", ""]] * batch)
    return inputs | raw_history(batch, values) | overrides


def test_pushed_model_scores_known_and_unknown_users(model):
    assert {f.SERVING_SIGNATURE, f.TRANSFORM_SIGNATURE, f.RAW_SIGNATURE} <= set(model.signatures)
    serve = model.signatures[f.SERVING_SIGNATURE]
    others = earlier(5.0, 3.0, 3.0, 3.0, movies=("5", "6", "7", "8"))
    examples = [
        serialized_example("1", "1"),  # known user and movie
        serialized_example("1", "2", genres=("Comedy", "Thriller")),
        serialized_example("no-such-user", "999999", genres=("Western", "NewGenre"), occupation="astronaut"),
        serialized_example("1", "1", values=history(others)),  # other earlier movies, same ratings
        serialized_example("1", "1", values=history([])),  # a first rating
    ]
    ratings = serve(examples=tf.constant(examples))[f.PREDICTION_KEY].numpy().ravel()
    assert ratings.shape == (5,) and np.isfinite(ratings).all()
    assert ((ratings > 1) & (ratings < 5)).all()  # none at the clip: the differences below are the model's
    assert ratings[0] != ratings[1]  # the movie's features matter (ids are not embedded by default)
    assert len({ratings[0], ratings[3], ratings[4]}) == 3  # which movies the user rated before matters

    json_like = model.signatures[f.RAW_SIGNATURE](**raw_inputs())[f.PREDICTION_KEY].numpy().ravel()
    np.testing.assert_allclose(json_like[0], ratings[0], rtol=1e-5)


def test_the_pushed_ensemble_predicts_its_members_mean(model):
    """The first run trains e2e_run.ENSEMBLE ranking models (seeds 42, 1042): serving averages them."""
    assert len(model.members) == ENSEMBLE
    requests = [serialized_example("1", "1"), serialized_example("no-such-user", "2")]
    examples = tf.constant(requests)
    transformed = model.signatures[f.TRANSFORM_SIGNATURE](examples=labelled(requests))
    inputs = {name: value for name, value in transformed.items() if name != f.LABEL_XF}
    members = np.stack([member(inputs).numpy().ravel() for member in model.members])
    assert not np.allclose(members[0], members[1])  # two seeds, two models
    served = model.signatures[f.SERVING_SIGNATURE](examples=examples)[f.PREDICTION_KEY].numpy().ravel()
    np.testing.assert_allclose(served, np.clip(members.mean(axis=0), f.RATING_MIN, f.RATING_MAX), rtol=1e-5)


def test_slice_features_are_the_transformed_features_the_evaluator_slices_by(model):
    """`slice_features` (what the Evaluator calls) returns exactly those of `transform_features`' outputs, the same."""
    requests = [serialized_example("1", "1"), serialized_example("no-such-user", "2", occupation="artist")]
    everything = model.signatures[f.TRANSFORM_SIGNATURE](examples=labelled(requests))
    sliced = model.signatures[f.SLICE_SIGNATURE](examples=tf.constant(requests))  # no label needed
    assert set(sliced) == set(f.SLICE_FEATURES)  # ml-100k has users: all four
    for name, value in sliced.items():
        assert value.numpy().tolist() == everything[name].numpy().tolist(), name
    assert sliced[f.USER_SEEN_XF].numpy().ravel().tolist()[1] == b"unseen"  # a user the model never saw


def test_a_users_history_moves_the_score_in_its_direction(model):
    """The same request from a user who rated 20 movies 5 and from one who rated them 1. Clipping to [1, 5]
    can only shrink a difference, never create one: a gap of more than a rating point is the model's."""
    raw = model.signatures[f.RAW_SIGNATURE]
    movies = tuple(str(m) for m in range(1, 21))
    generous = raw(**raw_inputs(1, history(earlier(*[5.0] * 20, movies=movies))))[f.PREDICTION_KEY]
    harsh = raw(**raw_inputs(1, history(earlier(*[1.0] * 20, movies=movies))))[f.PREDICTION_KEY]
    generous, harsh = float(generous.numpy().ravel()[0]), float(harsh.numpy().ravel()[0])
    assert generous - harsh > 1.0, (generous, harsh)


def test_the_readme_request_is_coherent_and_scored(model):
    """The `predict_raw` example of docs/serving.md, run as written against the pushed model."""
    readme = (Path(__file__).resolve().parents[1] / "docs" / "serving.md").read_text()
    snippet = readme.split("```python\nimport tensorflow as tf\n", 1)[1].split("```", 1)[0]
    snippet = snippet.replace('model = tf.saved_model.load("artifacts/serving/movielens_ranker/<version>")', "")
    scope = {"tf": tf, "model": model, "print": lambda *values: printed.extend(values)}
    printed = []
    exec(compile("import tensorflow as tf\n" + snippet, "docs/serving.md", "exec"), scope)  # noqa: S102
    [prediction] = printed
    assert 1 < float(prediction.numpy().ravel()[0]) < 5


def _with(serialized: bytes, edit) -> bytes:
    example = tf.train.Example.FromString(serialized)
    edit(example.features.feature)
    return example.SerializeToString()


def _retyped_age(feature):
    feature[f.USER_AGE].Clear()
    feature[f.USER_AGE].bytes_list.value.append(b"33")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda feature: feature.__delitem__(f.USER_AGE), "Feature: user_age .* is required but could not be found"),
        (_retyped_age, "Key: user_age.*Data types don't match.*expected type: int64"),
        (lambda feature: feature[f.USER_AGE].int64_list.value.append(40), "Key: user_age.*Number of int64 values"),
        (
            lambda feature: feature[f.USER_PRIOR_MOVIE_RATINGS].float_list.value.append(4.0),
            "user_prior_movies and user_prior_movie_ratings differ in length",
        ),
    ],
)
def test_serving_rejects_malformed_examples_with_a_clear_error(model, edit, message):
    serve = model.signatures[f.SERVING_SIGNATURE]
    good = serialized_example("1", "1")
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"(?s){message}"):
        serve(examples=tf.constant([good, _with(good, edit)]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="Could not parse example input"):
        serve(examples=tf.constant([b"\x00 not a tf.Example"]))


def _set(name: str, value):
    def edit(values: dict) -> dict:
        return {**values, name: value}

    return edit


# Incoherent histories (each breaks one rule ExampleGen's histories always follow) → the features named.
INCOHERENT = {
    "README's old recent sum": (_set(f.USER_RECENT_RATING_SUM, 20.0), f"{f.USER_RECENT_RATING_SUM} must be the sum"),
    "recent count over 5": (_set(f.USER_RECENT_COUNT, 6), f"{f.USER_RECENT_COUNT} must be min"),
    "rating outside 1-5": (
        _set(f.USER_PRIOR_MOVIE_RATINGS, (5.0, 3.0, 3.0, 7.0)), f"{f.USER_PRIOR_MOVIE_RATINGS} must lie within"
    ),
    "count vs list": (_set(f.USER_PRIOR_COUNT, 9), f"{f.USER_PRIOR_MOVIES} must list the last"),
    "sum vs list": (_set(f.USER_PRIOR_RATING_SUM, 15.0), f"{f.USER_PRIOR_RATING_SUM} must be the sum"),
    "squares vs list": (_set(f.USER_PRIOR_RATING_SQ_SUM, 50.0), f"{f.USER_PRIOR_RATING_SQ_SUM} must be the sum"),
    "negative count": (_set(f.USER_PRIOR_GENRE_COUNT, -1), f"{f.USER_PRIOR_GENRE_COUNT} is a count"),
    "offsets over count": (_set(f.USER_PRIOR_OFFSET_COUNT, 5), f"{f.USER_PRIOR_OFFSET_COUNT} cannot exceed"),
    "no last rating": (_set(f.USER_SECONDS_SINCE_LAST, -1), f"{f.USER_SECONDS_SINCE_LAST} must be -1 when"),
    "genre sum": (_set(f.USER_PRIOR_GENRE_RATING_SUM, 40.0), f"{f.USER_PRIOR_GENRE_RATING_SUM} must lie within"),
    "movie sum": (_set(f.MOVIE_PRIOR_RATING_SUM, 51.0), f"{f.MOVIE_PRIOR_RATING_SUM} must be the sum"),
    "movie sum vs list": (_set(f.MOVIE_PRIOR_RATING_SUM, 37.0), f"{f.MOVIE_PRIOR_RATING_SUM} must be the sum"),
    "movie count vs list": (_set(f.MOVIE_PRIOR_COUNT, 12), f"{f.MOVIE_PRIOR_RATERS} must list the last"),
    "rater rating outside 1-5": (
        _set(f.MOVIE_PRIOR_RATER_RATINGS, (4.0,) * 8 + (6.0, 0.0)), f"{f.MOVIE_PRIOR_RATER_RATINGS} must lie within"
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", INCOHERENT)
def test_incoherent_histories_are_rejected_naming_the_features(model, case):
    edit, message = INCOHERENT[case]
    bad = edit(history())
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"incoherent request: {re.escape(message)}"):
        model.signatures[f.RAW_SIGNATURE](**raw_inputs(2, bad))
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"incoherent request: {re.escape(message)}"):
        model.signatures[f.SERVING_SIGNATURE](examples=tf.constant([serialized_example("1", "1", values=bad)]))


@pytest.mark.parametrize("name", sorted(f.SERVING_FEATURES))
def test_every_predict_raw_input_with_another_batch_size_is_named(model, name):
    inputs = raw_inputs(2)
    inputs[name] = inputs[name][:1]
    expected = "has another batch size than user_id" if name == f.USER_ID else f"{name} has another batch size"
    with pytest.raises(tf.errors.InvalidArgumentError, match=expected):
        model.signatures[f.RAW_SIGNATURE](**inputs)


@pytest.mark.parametrize("name", sorted(f.SERVING_FEATURES))
def test_every_predict_raw_input_of_a_wrong_type_is_named_by_the_client(model, name):
    instance = {
        f.USER_ID: "1", f.MOVIE_ID: "1", f.USER_GENDER: "F", f.USER_OCCUPATION: "writer", f.USER_ZIP: "55414",
        f.MOVIE_TITLE: "A movie", f.TIMESTAMP: NOW, f.USER_AGE: 33, f.MOVIE_RELEASE_YEAR: 1995,
        f.MOVIE_GENRES: ["Drama"], **{k: list(v) if isinstance(v, tuple) else v for k, v in history().items()},
    }  # fmt: skip
    np.testing.assert_allclose(
        model.signatures[f.RAW_SIGNATURE](**raw_request([instance]))[f.PREDICTION_KEY].numpy(),
        model.signatures[f.RAW_SIGNATURE](**raw_inputs(1))[f.PREDICTION_KEY].numpy(),
    )
    wrong = {**instance, name: {"not": "a value"}}
    with pytest.raises(ValueError, match=f"instance 0: {name}: "):
        raw_request([wrong])
    missing = {k: v for k, v in instance.items() if k != name}
    with pytest.raises(ValueError, match=f"instance 0: {name}: missing"):
        raw_request([missing])


def test_serving_batches_empty_to_ten_thousand_stay_finite_and_spread(model):
    serve, raw = model.signatures[f.SERVING_SIGNATURE], model.signatures[f.RAW_SIGNATURE]
    assert serve(examples=tf.constant([], tf.string))[f.PREDICTION_KEY].shape == (0, 1)

    rng = np.random.default_rng(0)
    # Each request's user rates around their own level (1.5 to 4.5), as the training data's users do.
    levels = rng.uniform(1.5, 4.5, size=10_000)
    pasts = [np.clip(np.round(rng.normal(level, 0.7, size=rng.integers(0, 60))), 1, 5) for level in levels]
    batch = [
        serialized_example(
            str(rng.integers(1, 10**6)),
            str(rng.integers(1, 10**6)),
            genres=("Drama", "Zzz"),
            values=history(earlier(*past.astype(float))),
        )
        for past in pasts
    ]  # fmt: skip  (mostly unknown users and movies: OOV buckets; histories of 0 to 59 ratings)
    ratings = serve(examples=tf.constant(batch))[f.PREDICTION_KEY].numpy().ravel()
    assert ratings.shape == (10_000,) and np.isfinite(ratings).all()
    inside = (ratings > 1) & (ratings < 5)
    assert inside.mean() > 0.9 and ratings.std() > 0.1  # histories spread the scores; few hit the clip
    # An unknown user is scored from their history: the more they rated high, the higher the prediction.
    long = np.array([len(past) >= 20 for past in pasts])
    means = np.array([past.mean() for past, is_long in zip(pasts, long, strict=True) if is_long])
    correlation = float(np.corrcoef(ratings[long], means)[0, 1])
    assert correlation > 0.5, correlation

    # Coherent extremes: a million earlier ratings, all 5 or all 1, the last a second ago or years ago.
    extremes = [
        history(earlier(*[value] * 50)) | {
            f.USER_PRIOR_COUNT: 10**6, f.USER_PRIOR_RATING_SUM: value * 10**6,
            f.USER_PRIOR_RATING_SQ_SUM: value * value * 10**6, f.USER_SECONDS_SINCE_LAST: seconds,
        }
        for value in (1.0, 5.0) for seconds in (1, 10**9)
    ]  # fmt: skip
    scores = np.concatenate([raw(**raw_inputs(2, values))[f.PREDICTION_KEY].numpy().ravel() for values in extremes])
    assert np.isfinite(scores).all() and ((scores >= 1) & (scores <= 5)).all()
    assert len(np.unique(np.round(scores, 4))) > 2  # not every output saturated at one bound
    assert scores[4:].min() > scores[:4].max(), scores  # a million 5s scores above a million 1s
    empty = raw(**{k: v[:0] for k, v in raw_inputs(2).items()})[f.PREDICTION_KEY]
    assert empty.shape == (0, 1)
    with pytest.raises(TypeError, match="missing a required argument: 'user_age'"):
        raw(**{k: v for k, v in raw_inputs(2).items() if k != "user_age"})
