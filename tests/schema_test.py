"""The curated schema agrees with the ExampleGen's features and domains."""

from pathlib import Path

from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.utils import io_utils

from components.evaluator.eval_config import evaluation_schema
from components.example_gen import layouts, movielens
from components.example_gen.readers import dat
from pipeline.pipeline import schema_path
from schemas import derive
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


def test_every_layouts_schema_file_is_the_derivation_of_the_curated_one():
    """Generated files, never edited by hand: `python -m schemas.derive` rewrites them after an edit."""
    for layout in layouts.LAYOUTS.values():
        if layout.name != layouts.ML_100K:
            text = Path(schema_path(layout.name)).read_text(encoding="utf-8")
            assert text == derive.text(layout), f"run `python -m schemas.derive` ({layout.name} is stale)"


def test_a_release_without_users_has_no_user_attributes_and_half_stars():
    schema = derive.derive(layouts.LAYOUTS[layouts.CSV])
    by_name = {x.name: x for x in schema.feature}
    assert sorted(by_name) == sorted(set(f.RAW_FEATURES) - set(f.USER_ATTRIBUTES))
    assert by_name[f.RATING].float_domain.min == by_name[f.USER_PRIOR_MOVIE_RATINGS].float_domain.min == 0.5
    assert set(layouts.LATER_GENRES) <= set(by_name[f.MOVIE_GENRES].string_domain.value)
    ml1m = {x.name: x for x in derive.derive(layouts.LAYOUTS[layouts.ML_1M]).feature}
    assert tuple(ml1m[f.USER_OCCUPATION].string_domain.value) == dat.OCCUPATIONS_1M
    assert ml1m[f.RATING].float_domain.min == 1.0


def test_the_evaluators_schema_is_the_label_as_the_schema_has_it():
    """What the ValidationGate hands the Evaluator (the slice features come from the model), for every layout."""
    for layout in layouts.LAYOUTS:
        schema = io_utils.SchemaReader().read(schema_path(layout))
        kept = evaluation_schema(schema)
        assert list(kept.feature) == [feature for feature in schema.feature if feature.name == f.LABEL_KEY], layout
        assert list(kept.default_environment) == list(schema.default_environment)
        assert len(schema.feature) > 1  # the input is not changed
