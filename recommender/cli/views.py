"""`recommender inspect` and `recommender report`: what a run saw and decided, read from ML Metadata."""

from __future__ import annotations

import os

import click

from pipeline.config import METADATA_FILE_NAME
from recommender.cli.common import DEFAULT_WORKDIR, fail, main, options, pipeline_name_option
from recommender.monitoring import drift

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
    from pipeline.local_runner import quiet_logs
    from recommender.inspection import InspectionError, inspect_run

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

    from recommender.inspection import render_text

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
    from recommender.inspection import InspectionError
    from recommender.report import write_report

    data = _inspect(pipeline_root, metadata_path, pipeline_name, run_id)
    try:
        written = write_report(data, output)
    except InspectionError as error:
        fail(str(error))
    except OSError as error:
        fail(f"cannot write the report to {output}: {error.strerror or error}")
    click.echo(f"Wrote {written} (run {data['run']['run_id']}, {data['run']['status']}).")
    _failed(data)


ALERT_EXIT = 3  # `monitor`: a threshold was crossed (1 stays "the command failed")


@main.command("monitor")
@click.option(
    "--requests",
    "request_files",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Request log (JSONL, as the app writes it); repeatable.",
)
@click.option(
    "--ratings",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Later true ratings (CSV with user/movie/rating columns, or u.data lines): live RMSE and NDCG.",
)
@_store_options
@click.option("--output", default="monitor.html", show_default=True, type=click.Path(dir_okay=False))
@click.option("--drift-threshold", default=drift.DRIFT_THRESHOLD, show_default=True, type=float,
              help="Input drift: L-infinity (strings) / Jensen-Shannon (numbers) distance that fires.")  # fmt: skip
@click.option(
    "--prediction-shift",
    default=drift.PREDICTION_SHIFT,
    show_default=True,
    type=float,
    help="Prediction drift: a mean predicted rating this far from the training labels' mean fires.",
)
@click.option("--rmse-margin", default=drift.RMSE_MARGIN, show_default=True, type=float,
              help="Live RMSE above the Evaluator's test RMSE by more than this fires.")  # fmt: skip
def monitor_command(request_files, ratings, pipeline_root, metadata_path, pipeline_name, run_id, output,
                    drift_threshold, prediction_shift, rmse_margin) -> None:  # fmt: skip
    """Served traffic against what the model was trained on: input and prediction drift (TFDV), live quality.

    Writes an HTML page (and the same as JSON beside it) and exits 3 when a threshold is crossed, so that a
    scheduler can alert (docs/monitoring.md)."""
    import json

    from recommender.inspection import InspectionError
    from recommender.monitoring import check, requests

    data = _inspect(pipeline_root, metadata_path, pipeline_name, run_id)
    try:
        log = requests.read(request_files)
        later = drift.read_ratings(ratings) if ratings else None
        result = check.run_check(log, data, later, drift_threshold, prediction_shift, rmse_margin)
    except (ValueError, InspectionError) as error:
        fail(str(error))
    for line in check.text_lines(result):
        click.echo(line)
    try:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(check.render_html(result))
        with open(os.path.splitext(output)[0] + ".json", "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=1)
    except OSError as error:
        fail(f"cannot write {output}: {error.strerror or error}")
    click.echo(f"Wrote {output}")
    if result["alerts"]:
        raise click.exceptions.Exit(ALERT_EXIT)
