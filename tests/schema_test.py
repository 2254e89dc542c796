"""The curated schema agrees with the ExampleGen's features and domains."""

from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.utils import io_utils

from components.example_gen import movielens
from pipeline.pipeline import schema_path
from transform import features as f


def load() -> schema_pb2.Schema:
    return io_utils.SchemaReader().read(schema_path())


def test_schema_lists_exactly_the_raw_features():
    assert sorted(feature.name for feature in load().feature) == sorted(f.RAW_FEATURES)


def test_label_is_absent_at_serving():
    schema = load()
    assert list(schema.default_environment) == ["TRAINING", "SERVING"]
    rating = next(x for x in schema.feature if x.name == f.RATING)
    assert list(rating.not_in_environment) == ["SERVING"]
    assert (rating.float_domain.min, rating.float_domain.max) == (f.RATING_MIN, f.RATING_MAX)


def test_domains_match_the_parser():
    by_name = {x.name: x for x in load().feature}
    assert tuple(by_name[f.USER_GENDER].string_domain.value) == movielens.GENDERS
    assert tuple(by_name[f.USER_OCCUPATION].string_domain.value) == movielens.OCCUPATIONS
    assert tuple(by_name[f.MOVIE_GENRES].string_domain.value) == movielens.GENRES
    assert by_name[f.MOVIE_GENRES].value_count.max == f.MAX_GENRES
    assert by_name[f.MOVIE_RELEASE_YEAR].int_domain.min == f.RELEASE_YEAR_UNKNOWN
