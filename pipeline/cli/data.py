"""`recommender data fetch`: MovieLens-100k onto disk, verified."""

from __future__ import annotations

import click

from pipeline.cli.common import data_root_option, fail, main, mirror_option


@main.group()
def data() -> None:
    """Get the MovieLens data."""


def fetch(data_root: str, mirror: str | None, url: str | None = None) -> str:
    from components.example_gen import dataset

    try:
        path = dataset.fetch(data_root, mirror=mirror, url=url or dataset.DEFAULT_URL, progress=click.echo)
    except (dataset.DataVerificationError, OSError) as error:
        fail(str(error))
    return str(path)


@data.command("fetch")
@mirror_option
@data_root_option
@click.option("--url", default=None, help="Download URL (HTTPS) of ml-100k.zip; default: GroupLens.")
def fetch_command(mirror: str | None, data_root: str, url: str | None) -> None:
    """Download (or copy from a mirror) MovieLens-100k and verify its SHA-256 sums."""
    click.echo(fetch(data_root, mirror, url))
