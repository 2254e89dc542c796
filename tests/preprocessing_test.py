"""preprocessing_fn through tft_beam on a few rows: vocabularies, OOV, time features."""

import math
import re

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils
from tfx.utils import io_utils

from pipeline.pipeline import schema_path
from transform import features as f
from transform.preprocessing import preprocessing_fn

pytestmark = pytest.mark.slow
THURSDAY_15H55 = 881250949  # 1997-12-04 15:55:49 UTC


NO_HISTORY = {name: [0] for name in f.HISTORY_INT_FEATURES} | {name: [0.0] for name in f.HISTORY_FLOAT_FEATURES}
NO_HISTORY[f.USER_SECONDS_SINCE_LAST] = [-1]
NO_HISTORY |= {name: [] for name in f.HISTORY_LIST_FEATURES}


def raw_row(
    user: str, movie: str, timestamp: int, age: int = 30, year: int = 1995, genres=("Action",), **history
) -> dict:
    return {
        **NO_HISTORY,
        **{name: value if isinstance(value, list) else [value] for name, value in history.items()},
        f.USER_ID: [user],
        f.MOVIE_ID: [movie],
        f.RATING: [4.0],
        f.TIMESTAMP: [timestamp],
        f.USER_AGE: [age],
        f.USER_GENDER: ["F"],
        f.USER_OCCUPATION: ["writer"],
        f.USER_ZIP: ["55414"],
        f.MOVIE_TITLE: ["Some movie"],
        f.MOVIE_GENRES: list(genres),
        f.MOVIE_RELEASE_YEAR: [year],
    }


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    schema = io_utils.SchemaReader().read(schema_path())
    metadata = dataset_metadata.DatasetMetadata(schema)
    train = [
        raw_row("1", "10", THURSDAY_15H55, age=17, genres=("Action", "Drama")),
        raw_row("1", "11", THURSDAY_15H55 + 3600, age=17, year=1990),
        raw_row(
            "2", "10", THURSDAY_15H55 + 86_400, age=40, year=0,
            user_prior_count=2, user_prior_rating_sum=9.0, user_prior_rating_sq_sum=41.0, user_recent_count=2,
            user_recent_rating_sum=9.0, user_seconds_since_last=3600, movie_prior_count=3, movie_prior_rating_sum=12.0,
            user_prior_genre_count=1, user_prior_genre_rating_sum=5.0,
            user_prior_offset_count=2, user_prior_offset_sum=-1.0,
            user_prior_movies=["11", "99"], user_prior_movie_ratings=[5.0, 4.0],
            movie_prior_raters=["2", "7", "1"], movie_prior_rater_ratings=[5.0, 3.0, 4.0],
        ),
    ]  # fmt: skip
    long_history = {
        f.USER_PRIOR_MOVIES: ["11"] * 10 + ["10"] * f.MAX_PRIOR_MOVIES,
        f.USER_PRIOR_MOVIE_RATINGS: [1.0] * 10 + [5.0] * f.MAX_PRIOR_MOVIES,
    }
    serve = [raw_row("unknown-user", "10", THURSDAY_15H55, genres=("Western",)), raw_row("3", "11", 0, **long_history)]
    output_dir = str(tmp_path_factory.mktemp("tft"))
    with tft_beam.Context(temp_dir=str(tmp_path_factory.mktemp("tmp"))):
        (train_out, out_metadata), transform_fn = (train, metadata) | tft_beam.AnalyzeAndTransformDataset(
            preprocessing_fn
        )
        serve_out, _ = ((serve, metadata), transform_fn) | tft_beam.TransformDataset()
        _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
    return train_out, serve_out, tft.TFTransformOutput(output_dir)


def test_vocabularies_and_oov(transformed):
    train, serve, tft_output = transformed
    assert tft_output.vocabulary_by_name(f.VOCAB_FEATURES[f.USER_ID_XF]) == [b"1", b"2"]
    assert [train[i][f.USER_ID_XF] for i in range(3)] == [0, 0, 1]
    # An unseen user goes to the OOV bucket: index == vocabulary size, and is sliced as "unseen".
    assert serve[0][f.USER_ID_XF] == 2
    assert [r[f.USER_SEEN_XF] for r in train] == [b"seen"] * 3 and serve[0][f.USER_SEEN_XF] == b"unseen"
    assert tft_output.vocabulary_size_by_name(f.GENRES_VOCAB) == 2  # Action, Drama
    assert sorted(train[0][f.MOVIE_GENRES_XF][:2]) == [0, 1] and list(train[0][f.MOVIE_GENRES_XF][2:]) == [-1] * 4
    assert serve[0][f.MOVIE_GENRES_XF][0] == 2  # Western: OOV
    assert tft_output.vocabulary_by_name(f.VOCAB_FEATURES[f.USER_ZIP_PREFIX_XF]) == [b"554"]


def test_time_features_for_a_known_timestamp(transformed):
    train, _, _ = transformed
    row = train[0]
    assert row[f.HOUR_XF] == 15
    assert row[f.DAY_OF_WEEK_XF] == 3  # Thursday (Monday = 0)
    angle = 2 * math.pi * (15 * 3600 + 55 * 60 + 49) / 86_400
    assert row[f.HOUR_SIN_XF] == pytest.approx(math.sin(angle), abs=1e-5)
    assert row[f.HOUR_COS_XF] == pytest.approx(math.cos(angle), abs=1e-5)
    assert row[f.DOW_SIN_XF] == pytest.approx(math.sin(2 * math.pi * 3 / 7), abs=1e-5)
    assert train[2][f.DAY_OF_WEEK_XF] == 4  # one day later: Friday


def test_age_bucket_year_imputation_and_normalisation(transformed):
    train, _, _ = transformed
    assert [r[f.USER_AGE_BUCKET_XF] for r in train] == [b"under_18", b"under_18", b"35-44"]
    assert [r[f.MOVIE_YEAR_MISSING_XF] for r in train] == [0.0, 0.0, 1.0]
    ages = np.array([r[f.USER_AGE_XF] for r in train])
    assert ages.mean() == pytest.approx(0.0, abs=1e-6) and ages.std() == pytest.approx(1.0, abs=1e-5)
    # The unknown year is imputed with the mean of the known ones (1992.5): z-score 0.
    assert train[2][f.MOVIE_YEAR_XF] == pytest.approx(0.0, abs=1e-5)
    assert train[0][f.LABEL_XF] == pytest.approx(4.0)


def test_history_means_are_shrunk_towards_the_prior_and_centred(transformed):
    train, serve, _ = transformed
    prior = 12.0 / 3  # mean movie_prior_rating_sum / mean movie_prior_count over train: 4.0
    first, third = train[0], train[2]
    # No history: every mean sits exactly on the prior (0 once centred), the flag is off.
    assert [first[name] for name in (f.USER_MEAN_XF, f.USER_GENRE_MEAN_XF, f.MOVIE_MEAN_XF)] == [0.0, 0.0, 0.0]
    assert first[f.USER_HAS_HISTORY_XF] == 0.0 and first[f.USER_SINCE_LAST_XF] == 0.0
    user_mean = (9.0 + f.USER_MEAN_PSEUDO_COUNT * prior) / (2 + f.USER_MEAN_PSEUDO_COUNT) - prior
    assert third[f.USER_MEAN_XF] == pytest.approx(user_mean, abs=1e-5)
    assert third[f.MOVIE_MEAN_XF] == pytest.approx((12.0 + 10 * prior) / 13 - prior, abs=1e-5)
    assert third[f.USER_GENRE_MEAN_XF] == pytest.approx((5.0 + 3 * prior) / 4 - prior, abs=1e-5)
    assert third[f.USER_STD_XF] == pytest.approx(np.sqrt((41 - 81 / 2 + 2) / 4) - 1, abs=1e-5)
    assert third[f.USER_HAS_HISTORY_XF] == 1.0
    assert third[f.USER_OFFSET_XF] == pytest.approx(-1.0 / (2 + f.USER_OFFSET_PSEUDO_COUNT), abs=1e-6)
    assert first[f.USER_OFFSET_XF] == 0.0
    assert serve[0][f.USER_MEAN_XF] == 0.0  # serving: same constants, no label needed


def test_earlier_movies_become_padded_indices_and_deviations_from_the_user_mean(transformed):
    train, serve, tft_output = transformed
    prior = 4.0
    assert tft_output.vocabulary_by_name(f.VOCAB_FEATURES[f.MOVIE_ID_XF]) == [b"10", b"11"]
    padding = f.MAX_PRIOR_MOVIES - 2
    third = train[2]
    assert list(third[f.USER_PRIOR_MOVIES_XF]) == [1, 2] + [-1] * padding  # "99" was never rated in train: OOV
    user_mean = (9.0 + f.USER_MEAN_PSEUDO_COUNT * prior) / (2 + f.USER_MEAN_PSEUDO_COUNT)
    expected = [5.0 - user_mean, 4.0 - user_mean] + [0.0] * padding
    np.testing.assert_allclose(third[f.USER_PRIOR_DEVIATIONS_XF], expected, atol=1e-5)
    assert list(train[0][f.USER_PRIOR_MOVIES_XF]) == [-1] * f.MAX_PRIOR_MOVIES  # a first rating: all padding
    assert not train[0][f.USER_PRIOR_DEVIATIONS_XF].any()
    # A longer list (a serving request) keeps its latest MAX_PRIOR_MOVIES entries.
    assert list(serve[1][f.USER_PRIOR_MOVIES_XF]) == [0] * f.MAX_PRIOR_MOVIES
    np.testing.assert_allclose(serve[1][f.USER_PRIOR_DEVIATIONS_XF], [5.0 - prior] * f.MAX_PRIOR_MOVIES, atol=1e-5)


def test_earlier_raters_become_padded_user_indices_and_deviations_from_the_movie_mean(transformed):
    train, _, tft_output = transformed
    assert tft_output.vocabulary_by_name(f.VOCAB_FEATURES[f.USER_ID_XF]) == [b"1", b"2"]
    padding = f.MAX_PRIOR_RATERS - 3
    third = train[2]
    assert list(third[f.MOVIE_PRIOR_RATERS_XF]) == [1, 2, 0] + [-1] * padding  # user "7" is not in train: OOV
    movie_mean = (12.0 + f.MOVIE_MEAN_PSEUDO_COUNT * 4.0) / (3 + f.MOVIE_MEAN_PSEUDO_COUNT)  # the prior is 4.0 too
    expected = [5.0 - movie_mean, 3.0 - movie_mean, 4.0 - movie_mean] + [0.0] * padding
    np.testing.assert_allclose(third[f.MOVIE_PRIOR_DEVIATIONS_XF], expected, atol=1e-5)
    assert list(train[0][f.MOVIE_PRIOR_RATERS_XF]) == [-1] * f.MAX_PRIOR_RATERS  # a movie's first rating


def test_serving_features_do_not_need_the_label(transformed):
    _, _, tft_output = transformed
    layer = tft_output.transform_features_layer()
    schema = io_utils.SchemaReader().read(schema_path())
    spec = schema_utils.schema_as_feature_spec(schema).feature_spec
    del spec[f.LABEL_KEY]
    example = tf.train.Example()
    for key, value in raw_row("1", "10", THURSDAY_15H55).items():
        if key == f.LABEL_KEY:
            continue
        feat = example.features.feature[key]
        if key in f.MULTI_FLOAT_FEATURES:
            feat.float_list.SetInParent()  # an empty list is still a (present) list
            feat.float_list.value.extend(value)
        elif key in f.MULTI_STRING_FEATURES or isinstance(value[0], str):
            feat.bytes_list.SetInParent()
            feat.bytes_list.value.extend(v.encode() for v in value)
        elif isinstance(value[0], float):
            feat.float_list.value.extend(value)
        else:
            feat.int64_list.value.extend(value)
    out = layer(tf.io.parse_example([example.SerializeToString()], spec))
    assert f.LABEL_XF not in out
    assert int(out[f.USER_ID_XF][0]) == 0


def test_the_prior_is_the_popularity_weighted_mean_of_earlier_ratings(tmp_path):
    """Movie A was rated 5 three times, then B rated 1 once. The plain mean of the train ratings is 4.0;
    the prior is Σ movie_prior_rating_sum / Σ movie_prior_count = (0 + 5 + 10 + 0) / (0 + 1 + 2 + 0) = 5.0:
    each earlier rating weighs once per later train rating of its movie (README, Transform)."""
    schema = io_utils.SchemaReader().read(schema_path())
    rows = [
        raw_row("1", "A", THURSDAY_15H55),
        raw_row("2", "A", THURSDAY_15H55 + 1, movie_prior_count=1, movie_prior_rating_sum=5.0),
        raw_row("3", "A", THURSDAY_15H55 + 2, movie_prior_count=2, movie_prior_rating_sum=10.0),
        raw_row("4", "B", THURSDAY_15H55 + 3),
    ]
    for row, label in zip(rows, (5.0, 5.0, 5.0, 1.0), strict=True):
        row[f.RATING] = [label]
    with tft_beam.Context(temp_dir=str(tmp_path)):
        (out, _), _ = (rows, dataset_metadata.DatasetMetadata(schema)) | tft_beam.AnalyzeAndTransformDataset(
            preprocessing_fn
        )
    weighted, plain = 15.0 / 3, 16.0 / 4
    # A movie mean of 2 ratings of 5, shrunk towards the prior with 10 pseudo-ratings and centred on it.
    assert out[2][f.MOVIE_MEAN_XF] == pytest.approx((10.0 + 10 * weighted) / 12 - weighted, abs=1e-6)  # 0.0
    assert out[2][f.MOVIE_MEAN_XF] != pytest.approx((10.0 + 10 * plain) / 12 - plain, abs=1e-3)


def test_year_z_scores_use_the_known_years_statistics(transformed):
    """Years 1995, 1990 and unknown (imputed with their mean): z-scores +1, -1 and 0; the movie's age at the rating
    z-scored with the two known rows' ages."""
    train, _, _ = transformed
    assert [r[f.MOVIE_YEAR_XF] for r in train] == pytest.approx([1.0, -1.0, 0.0], abs=1e-5)
    seconds = np.array([THURSDAY_15H55, THURSDAY_15H55 + 3600, THURSDAY_15H55 + 86_400])
    ages = np.maximum(1970 + seconds / (365.2425 * 86_400) - (np.array([1995, 1990, 1992.5]) + 0.5), 0.0)
    expected = (ages - ages[:2].mean()) / ages[:2].std()
    assert [r[f.MOVIE_AGE_XF] for r in train] == pytest.approx(expected, abs=1e-3)


def test_transform_analyses_the_train_split_in_one_pass(tmp_path):
    """An analyzer fed by another analyzer's result makes TFT analyse in phases, each one a pass over every train
    example; TFT's Beam graph names each phase's steps (`...[Phase0]`, `...[Phase1]`)."""
    metadata = dataset_metadata.DatasetMetadata(io_utils.SchemaReader().read(schema_path()))
    pipeline = beam.Pipeline()
    with tft_beam.Context(temp_dir=str(tmp_path)):
        rows = pipeline | beam.Create([raw_row("1", "10", THURSDAY_15H55)])
        _ = (rows, metadata) | tft_beam.AnalyzeDataset(preprocessing_fn)
    phases = {int(match) for label in pipeline.applied_labels for match in re.findall(r"\[Phase(\d+)\]", label)}
    assert phases == {0}
