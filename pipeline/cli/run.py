"""`recommender run`: the whole DAG locally."""

from __future__ import annotations

import os
import time

import click
from click.core import ParameterSource

from pipeline.cli.common import (
    DEFAULT_WORKDIR,
    build_config,
    data_root_option,
    fail,
    main,
    mirror_option,
    model_options,
)
from pipeline.cli.data import dataset_option, fetch


@main.command("run")
@mirror_option
@data_root_option
@click.option(
    "--input-dir",
    type=click.Path(exists=True, file_okay=False),
    help="Use this directory as is, in any MovieLens release's layout (detected; no download, no checksum check); "
    "conflicts with --mirror and --dataset (a MOVIELENS_MIRROR in the environment is ignored).",
)
@dataset_option
@click.option("--pipeline-root", default=os.path.join(DEFAULT_WORKDIR, "pipeline"), show_default=True)
@click.option("--serving-dir", default=os.path.join(DEFAULT_WORKDIR, "serving"), show_default=True)
@click.option("--metadata-path", default=None, help="SQLite MLMD file [default: PIPELINE_ROOT/metadata.sqlite].")
@model_options
@click.option(
    "--beam-mode",
    type=click.Choice(["in_memory", "multi_processing", "multi_threading"]),
    default="in_memory",
    show_default=True,
    help="Beam DirectRunner running mode.",
)
@click.option("--beam-workers", default=0, show_default=True, type=int, help="DirectRunner workers (0 = all cores).")
@click.option("-v", "--verbose", is_flag=True, help="Show TFX/TensorFlow/Beam logs.")
def run_command(
    mirror, data_root, input_dir, dataset, pipeline_root, serving_dir, metadata_path, beam_mode, beam_workers, verbose,
    **model_options,
) -> None:  # fmt: skip
    """Run the whole pipeline locally (LocalDagRunner, Beam DirectRunner, SQLite MLMD)."""
    from components.example_gen import layouts, releases
    from pipeline.config import direct_runner_args
    from pipeline.local_runner import PipelineRunError, run_local

    source = click.get_current_context().get_parameter_source
    if input_dir and ParameterSource.COMMANDLINE in (source("mirror"), source("dataset")):
        fail("--input-dir names the data already: give it alone, or --dataset/--mirror to fetch a verified release")
    protocol = model_options["split_protocol"]
    if input_dir:
        try:
            layout = layouts.detect(input_dir)
            missing = layouts.missing_files(input_dir, layout, protocol)
        except (layouts.UnknownLayoutError, ValueError) as error:
            fail(str(error))
        if missing:
            fail(f"--input-dir {input_dir} lacks {', '.join(missing)} (needed by --split {protocol})")
        click.echo(f"{input_dir}: {layout.name} layout ({', '.join(layout.files)})")
    else:
        layout = layouts.LAYOUTS[releases.RELEASES[dataset].layout]
        try:
            layouts.check_protocol(layout, protocol)
        except ValueError as error:
            fail(str(error))
    data_dir = input_dir or fetch(data_root, mirror, name=dataset)
    try:
        beam = direct_runner_args(beam_mode, beam_workers)
    except ValueError as error:
        fail(str(error))
    config = build_config(
        pipeline_root=os.path.abspath(pipeline_root),
        data_dir=os.path.abspath(data_dir),
        serving_dir=os.path.abspath(serving_dir),
        metadata_path=os.path.abspath(metadata_path) if metadata_path else None,
        beam_pipeline_args=beam,
        layout=layout.name,
        **model_options,
    )
    started = time.monotonic()
    try:
        summary = run_local(config, verbose=verbose)
    except PipelineRunError as error:
        fail(str(error))
    click.echo(f"Done in {time.monotonic() - started:.0f} s.")
    for line in summary.lines():
        click.echo(line)
