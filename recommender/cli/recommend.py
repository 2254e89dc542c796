"""`recommender recommend` and `recommender explain`: top-K movies for a user from the newest pushed model's
`recommend` signature, and why the model rates a movie as it does (SHAP, recommender/explanations.py)."""

from __future__ import annotations

import json
import os

import click

from pipeline.config import DEFAULT_MODEL_NAME
from recommender.cli.common import DEFAULT_WORKDIR, fail, main, options
from recommender.recommendations import RecommendError, newest_version, parse_rated, recommend

# Which pushed model `recommend` and `explain` call: the newest version under SERVING_DIR/MODEL_NAME.
_served_model = options(
    click.option("--serving-dir", default=os.path.join(DEFAULT_WORKDIR, "serving"), show_default=True),
    click.option("--model-name", default=DEFAULT_MODEL_NAME, show_default=True),
)


def _request(rated: tuple[str, ...], serving_dir: str, model_name: str) -> tuple[list[tuple[str, float]], str]:
    """The --rated pairs and the newest pushed model's path; one `Error:` line when either is wrong."""
    try:
        return parse_rated(rated), newest_version(os.path.join(serving_dir, model_name))
    except (ValueError, FileNotFoundError) as error:
        fail(str(error))


@main.command("recommend")
@click.option("--user-id", required=True, help="The user to recommend for (an unknown id is a new user).")
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(min=1), help="How many movies.")
@click.option(
    "--rated",
    multiple=True,
    metavar="MOVIE_ID:RATING",
    help="A movie the user rated (repeatable): a new user's taste, or a known user's latest ratings.",
)
@click.option(
    "--diversity",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="0: by relevance; towards 1: fewer movies of the same genres (maximal marginal relevance).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of {movie_id, title, genres, score}.")
@_served_model
def recommend_command(user_id, k, rated, diversity, as_json, serving_dir, model_name) -> None:
    """Top-K movies for a user, from the newest pushed model (movies they rated are left out)."""
    pairs, path = _request(rated, serving_dir, model_name)
    try:
        result = recommend(path, user_id, pairs, k, diversity)
    except RecommendError as error:
        fail(str(error))
    if as_json:
        click.echo(json.dumps(result["movies"], indent=1))
        return
    who = "known to the model" if result["known_user"] else "not in the model's snapshot"
    given = f", with {len(pairs)} given rating{'s' * (len(pairs) != 1)}" if pairs else ""
    click.echo(f"Top {len(result['movies'])} for user {user_id} ({who}{given}); model {path}")
    click.echo(f"{'rank':>4}  {'movie':>6}  {'score':>7}  {'pred.':>5}  title — genres")
    for rank, movie in enumerate(result["movies"], 1):
        click.echo(
            f"{rank:>4}  {movie['movie_id']:>6}  {movie['score']:>7.3f}  {movie['predicted_rating']:>5.2f}  "
            f"{movie['title']} — {movie['genres'].replace('|', ', ')}"
        )


@main.command("explain")
@click.option("--user-id", required=True, help="The user (an unknown id is a new user).")
@click.option("--movie-id", required=True, help="The movie whose predicted rating to explain.")
@click.option("--rated", multiple=True, metavar="MOVIE_ID:RATING", help="A rating to add to the user's history.")
@click.option("--background", default=100, show_default=True, type=click.IntRange(min=1),
              help="Background ratings SHAP averages over (drawn from the model's snapshot).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
@_served_model
def explain_command(user_id, movie_id, rated, background, as_json, serving_dir, model_name) -> None:
    """Why the newest pushed model predicts this rating: SHAP attributions by term (docs/app-and-monitoring.md)."""
    pairs, path = _request(rated, serving_dir, model_name)
    from recommender.explanations import explain
    from recommender.recommendations import Model

    try:
        result = explain(Model(path), user_id, movie_id, pairs, background=background)
    except RecommendError as error:
        fail(str(error))
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    click.echo(
        f"User {user_id}, movie {movie_id} ({result['title']}): predicted {result['served_prediction']:.2f}"
        f" (ranker {result['prediction']:.3f}); model {path}"
    )
    click.echo(f"  {result['base_value']:.3f}  average over {result['background']} background ratings")
    for term in result["terms"]:
        click.echo(f"  {term['contribution']:+.3f}  {term['term']}: {term['sources']}")
    click.echo(f"  = {result['prediction']:.3f}  ({result['seconds']:.2f} s)")
