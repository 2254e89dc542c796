"""`recommender data fetch` (any MovieLens release, verified) and `recommender data synth` (generated releases)."""

from __future__ import annotations

import os
import time

import click

from recommender.cli.common import data_root_option, fail, main, mirror_option

RELEASE_NAMES = ("ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m", "ml-latest-small", "ml-latest")
LAYOUT_NAMES = ("ml-100k", "ml-1m", "ml-10m", "csv")
dataset_option = click.option(
    "--dataset",
    type=click.Choice(RELEASE_NAMES),
    default="ml-100k",
    show_default=True,
    help="Which MovieLens release to fetch and verify (GroupLens' published checksums; see docs/releases.md).",
)


@main.group()
def data() -> None:
    """Get the MovieLens data, or generate data in its layouts."""


def fetch(data_root: str, mirror: str | None, url: str | None = None, name: str = "ml-100k") -> str:
    """The verified release's directory (fetched or copied from the mirror if needed), or one Error: line."""
    from components.example_gen import dataset, releases

    try:
        path = releases.fetch(name, data_root, mirror=mirror, url=url, progress=click.echo)
    except (dataset.DataVerificationError, OSError) as error:
        fail(str(error))
    return str(path)


@data.command("fetch")
@dataset_option
@mirror_option
@data_root_option
@click.option("--url", default=None, help="Download URL (HTTPS) of the release's zip; default: GroupLens.")
def fetch_command(dataset: str, mirror: str | None, data_root: str, url: str | None) -> None:
    """Download (or copy from a mirror) a MovieLens release and verify it."""
    click.echo(fetch(data_root, mirror, url, dataset))


@data.command("synth")
@click.option("--ratings", required=True, type=click.IntRange(min=1), help="How many ratings (exactly).")
@click.option("--users", type=click.IntRange(min=1), help="[default: ratings / 100, at least 20]")
@click.option("--movies", type=click.IntRange(min=1), help="[default: ratings / 200, enough for a 25% density]")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--layout", type=click.Choice(LAYOUT_NAMES), default="csv", show_default=True)
@click.option("--output", required=True, type=click.Path(file_okay=False), help="Directory to write the files into.")
def synth_command(ratings: int, users: int | None, movies: int | None, seed: int, layout: str, output: str) -> None:
    """Generate a MovieLens-like release of any size in a release's file layout (power-law popularity and
    activity, user/movie effects and genre tastes, timestamps over ten years; deterministic per seed)."""
    from components.example_gen import synthetic_release

    default = synthetic_release.default_spec(ratings, seed)
    try:
        spec = synthetic_release.SynthSpec(ratings, users or default.users, movies or default.movies, seed)
    except ValueError as error:
        fail(str(error))
    if os.path.isdir(output) and os.listdir(output):
        fail(f"--output {output} is not empty: give a new directory (nothing is overwritten)")
    started = time.monotonic()
    click.echo(f"writing {spec.ratings:,} ratings of {spec.users:,} users on {spec.movies:,} movies ({layout} layout)")
    path = synthetic_release.write(output, layout, spec, progress=click.echo)
    click.echo(f"{path} in {time.monotonic() - started:.0f} s")
