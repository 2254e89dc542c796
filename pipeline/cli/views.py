"""`recommender inspect` and `recommender report`: what a run saw and decided, read from ML Metadata."""

from __future__ import annotations

import os

import click

from pipeline.cli.common import DEFAULT_WORKDIR, fail, main, options, pipeline_name_option
from pipeline.config import METADATA_FILE_NAME

# Which run of which local store `inspect` and `report` read.
_store_options = options(
    click.option(
        "--pipeline-root",
        default=os.path.join(DEFAULT_WORKDIR, "pipeline"),
        show_default=True,
        help="Pipeline root of the local runs.",
    ),
    click.option("--metadata-path", default=None, help="SQLite MLMD file [default: PIPELINE_ROOT/metadata.sqlite]."),
    pipeline_name_option,
    click.option("--run", "run_id", default="latest", show_default=True, help="Run id (see the list) or 'latest'."),
)


def _inspect(pipeline_root: str, metadata_path: str | None, pipeline_name: str, run_id: str) -> dict:
    from pipeline.inspection import InspectionError, inspect_run
    from pipeline.local_runner import quiet_logs

    quiet_logs()
    metadata_file = metadata_path or os.path.join(pipeline_root, METADATA_FILE_NAME)
    try:
        return inspect_run(metadata_file, pipeline_name, run_id)
    except InspectionError as error:
        fail(str(error))


def _failed(data: dict) -> None:
    """Exit non-zero (after showing the run) when the run did not complete."""
    if data["run"]["status"] != "COMPLETE":
        broken = [c["component"] for c in data["components"] if c["state"] not in ("COMPLETE", "CACHED")]
        fail(f"run {data['run']['run_id']} is {data['run']['status']} (at {', '.join(broken) or '?'})")


@main.command("inspect")
@_store_options
@click.option("--json", "as_json", is_flag=True, help="Print the same as JSON.")
def inspect_command(pipeline_root, metadata_path, pipeline_name, run_id, as_json) -> None:
    """What a run saw and decided: components, splits, anomalies, metrics, blessing, push, lineage."""
    import json

    from pipeline.inspection import render_text

    data = _inspect(pipeline_root, metadata_path, pipeline_name, run_id)
    if as_json:
        click.echo(json.dumps(data, indent=1))
    else:
        for line in render_text(data):
            click.echo(line)
    _failed(data)


@main.command("report")
@_store_options
@click.option("--output", default="report.html", show_default=True, type=click.Path(dir_okay=False))
def report_command(pipeline_root, metadata_path, pipeline_name, run_id, output) -> None:
    """Write a self-contained HTML report of a run (data, training, evaluation, decision)."""
    from pipeline.inspection import InspectionError
    from pipeline.report import write_report

    data = _inspect(pipeline_root, metadata_path, pipeline_name, run_id)
    try:
        written = write_report(data, output)
    except InspectionError as error:
        fail(str(error))
    except OSError as error:
        fail(f"cannot write the report to {output}: {error.strerror or error}")
    click.echo(f"Wrote {written} (run {data['run']['run_id']}, {data['run']['status']}).")
    _failed(data)
