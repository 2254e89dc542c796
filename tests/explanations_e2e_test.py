"""Explanations end to end on the shared first run's pushed model (e2e_run.py): SHAP by term over the ranker's
inputs, its additivity, its agreement with `recommend`, and `recommender explain`."""

import itertools
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from recommender import explanations
from recommender.recommendations import Model, RecommendError
from transform import features as f

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def model(first_run) -> Model:
    return Model(first_run["summary"].pushed_path)


@pytest.fixture(scope="module")
def explainer(model) -> explanations.Explainer:
    return explanations.Explainer(model, background=40)


@pytest.fixture(scope="module")
def user(model) -> str:
    """The known user with the most ratings in the snapshot."""
    return max(model.catalogue()["user_ids"], key=lambda u: len(model.user_ratings(u)))


def test_every_ranker_input_is_in_exactly_one_term(model):
    inputs = set(model.signature(f.RANK_INPUTS_SIGNATURE).structured_input_signature[1])
    terms = explanations.terms_of(tuple(inputs))
    grouped = [name for names in terms.values() for name in names]
    assert sorted(grouped) == sorted(inputs)  # every input once, none twice
    assert set(terms) == set(f.EXPLANATION_TERMS)  # this release has user attributes: every term is there
    with pytest.raises(ValueError, match="not in exactly one explanation term"):
        explanations.terms_of((*inputs, "something_new_xf"))


def test_attributions_plus_the_base_value_equal_the_prediction(explainer, model, user):
    movies = model.catalogue()["movie_ids"]
    for movie in movies[:3]:
        result = explainer.explain(user, movie)
        total = result["base_value"] + sum(t["contribution"] for t in result["terms"])
        assert total == pytest.approx(result["prediction"], abs=1e-4)
        assert len({t["term"] for t in result["terms"]}) == len(result["terms"]) == len(f.EXPLANATION_TERMS)
        assert 1.0 <= result["served_prediction"] <= 5.0
    # The base value is the background's mean prediction, whatever the pair.
    bases = {round(explainer.explain(user, m)["base_value"], 5) for m in movies[:3]}
    assert len(bases) == 1


def test_the_attributions_are_exact_shapley_values(explainer, model, user):
    """Brute force over every coalition of terms (the definition), against SHAP's exact explainer."""
    movie = model.catalogue()["movie_ids"][5]
    result = explainer.explain(user, movie)
    mine = explanations._pair_inputs(model, [user], [movie])
    pool = {name: np.concatenate([mine[name], explainer.pool[name]]) for name in explainer.pool}
    names = list(explainer.terms)
    players, background = len(names), len(explainer.users)

    def value(coalition: frozenset) -> float:  # mean prediction with the coalition's terms from the pair
        rows = np.array([[0 if g in coalition else b for g in range(players)] for b in range(1, background + 1)])
        return float(explainer._predict(pool, rows).mean())

    values = {
        frozenset(c): value(frozenset(c)) for n in range(players + 1) for c in itertools.combinations(range(players), n)
    }
    weights = [math.factorial(s) * math.factorial(players - s - 1) / math.factorial(players) for s in range(players)]
    shapley = {
        names[g]: sum(weights[len(c)] * (values[c | {g}] - values[c]) for c in values if g not in c)
        for g in range(players)
    }
    got = {t["term"]: t["contribution"] for t in result["terms"]}
    assert got == pytest.approx(shapley, abs=1e-4)


def test_the_explained_prediction_is_the_one_recommend_shows(explainer, model, user):
    """pair_inputs builds a pair's inputs as the `recommend` signature does: same predicted rating."""
    for movie in model.recommend(user, k=3)["movies"]:
        result = explainer.explain(user, movie["movie_id"])
        assert result["served_prediction"] == pytest.approx(movie["predicted_rating"], abs=1e-4)
    # With ratings given (a new user): the same again.
    given = [(m, 5.0) for m in model.catalogue()["movie_ids"][:3]]
    movie = model.recommend("someone-new", given, k=1)["movies"][0]
    result = explainer.explain("someone-new", movie["movie_id"], given)
    assert result["served_prediction"] == pytest.approx(movie["predicted_rating"], abs=1e-4)


def test_an_unknown_movie_is_refused(explainer, user):
    with pytest.raises(RecommendError, match="not in the model's catalogue"):
        explainer.explain(user, "no-such-movie")


def test_the_explain_command(first_run, workspace, model, user):
    movie = model.catalogue()["movie_ids"][0]
    base = [sys.executable, "-m", "recommender.cli", "explain", "--serving-dir", str(workspace["serving"])]
    result = subprocess.run([*base, "--user-id", user, "--movie-id", movie, "--json", "--background", "20"],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    explanation = json.loads(result.stdout)
    assert explanation["movie_id"] == movie and explanation["background"] == 20 and explanation["seconds"] > 0
    total = explanation["base_value"] + sum(t["contribution"] for t in explanation["terms"])
    assert total == pytest.approx(explanation["prediction"], abs=1e-4)
    unknown = subprocess.run([*base, "--user-id", user, "--movie-id", "no-such-movie"],
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert unknown.returncode == 1 and unknown.stdout == ""
    (line,) = unknown.stderr.strip().splitlines()  # One line: no traceback, no TensorFlow noise.
    assert line.startswith("Error: ") and "no-such-movie" in line and "not in the model's catalogue" in line
