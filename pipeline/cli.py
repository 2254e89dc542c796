"""The `recommender` command: fetch MovieLens and run the pipeline locally.

recommender data fetch --mirror ../shared/data/ml-100k.zip
recommender run --mirror ../shared/data/ml-100k.zip --epochs 5 --tuner-trials 2
"""

from __future__ import annotations

import os
import sys
import time

import click

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before anything imports TensorFlow)

DEFAULT_WORKDIR = "artifacts"


def _fail(message: str) -> None:
    raise click.ClickException(message)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def main() -> None:
    """MovieLens recommender: a TFX pipeline from raw MovieLens to a TF Serving model."""


@main.group()
def data() -> None:
    """Get the MovieLens data."""


_mirror = click.option(
    "--mirror",
    envvar="MOVIELENS_MIRROR",
    type=click.Path(),
    help="Local ml-100k.zip or extracted directory to use instead of downloading (env MOVIELENS_MIRROR).",
)
_data_root = click.option(
    "--data-root",
    default=os.path.join(DEFAULT_WORKDIR, "data"),
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the verified ml-100k/ directory is kept.",
)


def _fetch(data_root: str, mirror: str | None, url: str | None = None) -> str:
    from components.example_gen import dataset

    try:
        path = dataset.fetch(data_root, mirror=mirror, url=url or dataset.DEFAULT_URL, progress=click.echo)
    except (dataset.DataVerificationError, OSError) as error:
        _fail(str(error))
    return str(path)


@data.command("fetch")
@_mirror
@_data_root
@click.option("--url", default=None, help="Download URL (HTTPS) of ml-100k.zip; default: GroupLens.")
def fetch_command(mirror: str | None, data_root: str, url: str | None) -> None:
    """Download (or copy from a mirror) MovieLens-100k and verify its SHA-256 sums."""
    click.echo(_fetch(data_root, mirror, url))


@main.command("run")
@_mirror
@_data_root
@click.option(
    "--input-dir",
    type=click.Path(exists=True, file_okay=False),
    help="Use this MovieLens-100k-shaped directory as is (no download, no checksum check).",
)
@click.option("--pipeline-root", default=os.path.join(DEFAULT_WORKDIR, "pipeline"), show_default=True)
@click.option("--serving-dir", default=os.path.join(DEFAULT_WORKDIR, "serving"), show_default=True)
@click.option("--metadata-path", default=None, help="SQLite MLMD file [default: PIPELINE_ROOT/metadata.sqlite].")
@click.option("--epochs", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--tuner-trials", default=2, show_default=True, type=click.IntRange(min=0), help="0 skips the Tuner.")
@click.option("--tuner-epochs", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--rmse-upper-bound", default=1.10, show_default=True, type=float, help="Blessing: max test RMSE.")
@click.option(
    "--rmse-max-increase",
    default=0.01,
    show_default=True,
    type=float,
    help="Blessing: max RMSE increase over the last blessed model.",
)
@click.option(
    "--beam-mode",
    type=click.Choice(["in_memory", "multi_processing", "multi_threading"]),
    default="in_memory",
    show_default=True,
    help="Beam DirectRunner running mode.",
)
@click.option("--beam-workers", default=0, show_default=True, type=int, help="DirectRunner workers (0 = all cores).")
@click.option("--no-cache", is_flag=True, help="Re-run every component even if its inputs are unchanged.")
@click.option("-v", "--verbose", is_flag=True, help="Show TFX/TensorFlow/Beam logs.")
def run_command(
    mirror, data_root, input_dir, pipeline_root, serving_dir, metadata_path, epochs, tuner_trials, tuner_epochs,
    seed, rmse_upper_bound, rmse_max_increase, beam_mode, beam_workers, no_cache, verbose,
) -> None:  # fmt: skip
    """Run the whole pipeline locally (LocalDagRunner, Beam DirectRunner, SQLite MLMD)."""
    from pipeline.config import PipelineConfig, TrainerConfig, direct_runner_args
    from pipeline.local_runner import PipelineRunError, run_local

    data_dir = input_dir or _fetch(data_root, mirror)
    try:
        config = PipelineConfig(
            pipeline_root=os.path.abspath(pipeline_root),
            data_dir=os.path.abspath(data_dir),
            serving_dir=os.path.abspath(serving_dir),
            metadata_path=os.path.abspath(metadata_path) if metadata_path else None,
            trainer=TrainerConfig(epochs=epochs, tuner_trials=tuner_trials, tuner_epochs=tuner_epochs, seed=seed),
            rmse_upper_bound=rmse_upper_bound,
            rmse_max_increase=rmse_max_increase,
            enable_cache=not no_cache,
            beam_pipeline_args=direct_runner_args(beam_mode, beam_workers),
        )
    except ValueError as error:
        _fail(str(error))
    started = time.monotonic()
    try:
        summary = run_local(config, verbose=verbose)
    except PipelineRunError as error:
        _fail(str(error))
    click.echo(f"Done in {time.monotonic() - started:.0f} s.")
    for line in summary.lines():
        click.echo(line)


if __name__ == "__main__":
    sys.exit(main())
