"""The `recommender` command: fetch MovieLens, run the pipeline locally, compile and submit it to Kubeflow.

recommender data fetch --mirror ../shared/data/ml-100k.zip
recommender run --mirror ../shared/data/ml-100k.zip --epochs 5 --tuner-trials 2
recommender compile --image REGISTRY/recommender:TAG --pipeline-root gs://b/root --data-root gs://b/data ...
recommender submit --host https://KFP_HOST movielens-recommender.yaml
"""

from __future__ import annotations

import os
import sys
import time
import traceback

import click
from click.core import ParameterSource

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before anything imports TensorFlow)
from components.example_gen import splits
from pipeline.config import BEAM_RUNNERS, DEFAULT_PIPELINE_NAME, METADATA_FILE_NAME

DEFAULT_WORKDIR = "artifacts"
# Trainer/Tuner limits on Kubeflow when --gpus is given without --trainer-cpu/--trainer-memory.
GPU_DEFAULT_CPU = 8.0
GPU_DEFAULT_MEMORY_GB = 32.0


def _fail(message: str) -> None:
    raise click.ClickException(message)


class _Commands(click.Group):
    """Every failure ends in one `Error:` line (exit 1); `--debug` adds the Python stack for bug reports.

    Expected failures raise click.ClickException (`_fail`); anything else is a bug of ours or of a
    library, reported in one line by default so that users never see a page of traceback, and with
    its stack under `--debug`, so that developers still can.
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort):
            raise
        except click.ClickException as error:
            if ctx.params.get("debug") and (error.__cause__ or error.__context__):
                cause = error.__cause__ or error.__context__
                traceback.print_exception(type(cause), cause, cause.__traceback__, file=sys.stderr)
            raise
        except Exception as error:  # Not one we expected: one line, the stack only under --debug.
            if ctx.params.get("debug"):
                raise
            message = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise click.ClickException(
                f"unexpected {type(error).__name__}: {message} (run again with --debug to see the stack)"
            ) from error


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--debug",
    is_flag=True,
    envvar="RECOMMENDER_DEBUG",
    help="On failure, print the Python stack after the Error: line (for bug reports).",
)
def main(debug: bool) -> None:
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


def _options(*options):
    """One decorator applying several click options, in the order given."""

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


# Training and blessing options shared by `run` and `compile`.
_model_options = _options(
    click.option("--epochs", default=12, show_default=True, type=click.IntRange(min=1)),
    click.option("--tuner-trials", default=2, show_default=True, type=click.IntRange(min=0), help="0 skips the Tuner."),
    click.option("--tuner-epochs", default=3, show_default=True, type=click.IntRange(min=1)),
    click.option("--seed", default=42, show_default=True, type=int, help="Training seed (and random splits')."),
    click.option(
        "--split",
        "split_protocol",
        type=click.Choice(splits.PROTOCOLS),
        default=splits.TIME,
        show_default=True,
        help="How ratings go to train/eval/test: by time (oldest 60/20/20), per-user stratified random "
        "65/10/25, or the zip's fold uK (test = uK.test). Random protocols hide test ratings from histories.",
    ),
    click.option("--rmse-upper-bound", default=1.10, show_default=True, type=float, help="Blessing: max RMSE."),
    click.option(
        "--rmse-max-increase",
        default=0.01,
        show_default=True,
        type=float,
        help="Blessing: max RMSE increase over the last blessed model.",
    ),
    click.option("--no-cache", is_flag=True, help="Re-run every component even if its inputs are unchanged."),
    click.option(
        "--max-rejected-fraction",
        default=0.001,
        show_default=True,
        type=click.FloatRange(min=0, max=1, max_open=True),
        help="ExampleGen fails the run if more than this fraction of raw records is malformed (else quarantined).",
    ),
    click.option(
        "--accept-anomalies",
        "accepted_anomalies",
        multiple=True,
        metavar="FEATURE",
        help="Let schema anomalies of FEATURE through the validation gate ('*' = all); repeatable, recorded in MLMD.",
    ),
)
_pipeline_name = click.option("--pipeline-name", default=DEFAULT_PIPELINE_NAME, show_default=True)


def _config(**kwargs):
    """Builds the frozen PipelineConfig from CLI values; a bad value is a usage error, not a traceback."""
    from pipeline.config import PipelineConfig, TrainerConfig

    trainer = {key: kwargs.pop(key) for key in ("epochs", "tuner_trials", "tuner_epochs", "seed")}
    kwargs["enable_cache"] = not kwargs.pop("no_cache")
    try:
        return PipelineConfig(trainer=TrainerConfig(**trainer), **kwargs)
    except ValueError as error:
        _fail(str(error))


@main.command("run")
@_mirror
@_data_root
@click.option(
    "--input-dir",
    type=click.Path(exists=True, file_okay=False),
    help="Use this MovieLens-100k-shaped directory as is (no download, no checksum check); "
    "conflicts with --mirror (a MOVIELENS_MIRROR in the environment is ignored).",
)
@click.option("--pipeline-root", default=os.path.join(DEFAULT_WORKDIR, "pipeline"), show_default=True)
@click.option("--serving-dir", default=os.path.join(DEFAULT_WORKDIR, "serving"), show_default=True)
@click.option("--metadata-path", default=None, help="SQLite MLMD file [default: PIPELINE_ROOT/metadata.sqlite].")
@_model_options
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
    mirror, data_root, input_dir, pipeline_root, serving_dir, metadata_path, beam_mode, beam_workers, verbose,
    **model_options,
) -> None:  # fmt: skip
    """Run the whole pipeline locally (LocalDagRunner, Beam DirectRunner, SQLite MLMD)."""
    from pipeline.config import direct_runner_args
    from pipeline.local_runner import PipelineRunError, run_local

    if input_dir and click.get_current_context().get_parameter_source("mirror") == ParameterSource.COMMANDLINE:
        _fail("--input-dir and --mirror both name the data: give one (--input-dir uses a directory as is)")
    if input_dir:
        missing = splits.missing_files(input_dir, model_options["split_protocol"])
        if missing:
            _fail(
                f"--input-dir {input_dir} lacks {', '.join(missing)} "
                f"(needed by --split {model_options['split_protocol']}; MovieLens-100k layout)"
            )
    data_dir = input_dir or _fetch(data_root, mirror)
    try:
        beam = direct_runner_args(beam_mode, beam_workers)
    except ValueError as error:
        _fail(str(error))
    config = _config(
        pipeline_root=os.path.abspath(pipeline_root),
        data_dir=os.path.abspath(data_dir),
        serving_dir=os.path.abspath(serving_dir),
        metadata_path=os.path.abspath(metadata_path) if metadata_path else None,
        beam_pipeline_args=beam,
        **model_options,
    )
    started = time.monotonic()
    try:
        summary = run_local(config, verbose=verbose)
    except PipelineRunError as error:
        _fail(str(error))
    click.echo(f"Done in {time.monotonic() - started:.0f} s.")
    for line in summary.lines():
        click.echo(line)


# Which run of which local store `inspect` and `report` read.
_store_options = _options(
    click.option(
        "--pipeline-root",
        default=os.path.join(DEFAULT_WORKDIR, "pipeline"),
        show_default=True,
        help="Pipeline root of the local runs.",
    ),
    click.option("--metadata-path", default=None, help="SQLite MLMD file [default: PIPELINE_ROOT/metadata.sqlite]."),
    _pipeline_name,
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
        _fail(str(error))


def _failed(data: dict) -> None:
    """Exit non-zero (after showing the run) when the run did not complete."""
    if data["run"]["status"] != "COMPLETE":
        broken = [c["component"] for c in data["components"] if c["state"] not in ("COMPLETE", "CACHED")]
        _fail(f"run {data['run']['run_id']} is {data['run']['status']} (at {', '.join(broken) or '?'})")


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
        _fail(str(error))
    except OSError as error:
        _fail(f"cannot write the report to {output}: {error.strerror or error}")
    click.echo(f"Wrote {written} (run {data['run']['run_id']}, {data['run']['status']}).")
    _failed(data)


@main.command("compile")
@click.option("--target", type=click.Choice(["kubeflow"]), default="kubeflow", show_default=True)
@click.option("--image", required=True, help="Pipeline image built from kubeflow/Dockerfile (REGISTRY/NAME:TAG).")
@click.option("--pipeline-root", required=True, help="Pipeline root the cluster can write, e.g. gs://bucket/root.")
@click.option("--data-root", required=True, help="Holds the verified ml-100k/ directory, e.g. gs://bucket/movielens.")
@click.option("--serving-dir", required=True, help="TF Serving model root; versions go to SERVING_DIR/MODEL_NAME/N/.")
@click.option(
    "--output",
    default=f"{DEFAULT_PIPELINE_NAME}.yaml",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Where to write the KFP v2 PipelineSpec YAML.",
)
@_pipeline_name
@click.option(
    "--schema-file",
    default=None,
    help="Curated schema as seen from the pods [default: the copy inside the image].",
)
@_model_options
@click.option("--gpus", default=0, show_default=True, type=click.IntRange(min=0), help="GPUs for Trainer and Tuner.")
@click.option("--gpu-type", default="nvidia.com/gpu", show_default=True, help="Kubernetes GPU resource name.")
@click.option(
    "--trainer-cpu",
    type=click.FloatRange(min=0, min_open=True),
    help=f"Trainer/Tuner CPU cores [with --gpus: {GPU_DEFAULT_CPU:g}].",
)
@click.option(
    "--trainer-memory",
    type=click.FloatRange(min=0, min_open=True),
    help=f"Trainer/Tuner memory in GB [with --gpus: {GPU_DEFAULT_MEMORY_GB:g}].",
)
@click.option(
    "--beam-runner",
    type=click.Choice(BEAM_RUNNERS),
    default="DirectRunner",
    show_default=True,
    help="Beam runner of ExampleGen, StatisticsGen, Transform and Evaluator.",
)
@click.option(
    "--beam-arg",
    "beam_extra",
    multiple=True,
    help="Extra Beam pipeline arg, repeatable, e.g. --beam-arg=--project=P (see README).",
)
def compile_command(
    target, image, pipeline_root, data_root, serving_dir, output, pipeline_name, schema_file, gpus, gpu_type,
    trainer_cpu, trainer_memory, beam_runner, beam_extra, **model_options,
) -> None:  # fmt: skip
    """Compile the pipeline for Kubeflow Pipelines v2 into a PipelineSpec YAML (offline, nothing uploaded)."""
    from kubeflow.runner import IMAGE_SCHEMA_FILE, CompileError, check_location, compile_pipeline
    from pipeline.config import Resources, beam_args

    try:  # The user's own values first, so that errors name the flags they typed.
        check_location("--pipeline-root", pipeline_root)
        check_location("--data-root", data_root)
        check_location("--serving-dir", serving_dir)
    except CompileError as error:
        _fail(str(error))
    try:
        beam = beam_args(beam_runner, beam_extra)
        resources = None
        if gpus:
            cpu, memory = trainer_cpu or GPU_DEFAULT_CPU, trainer_memory or GPU_DEFAULT_MEMORY_GB
            resources = Resources(gpus=gpus, gpu_type=gpu_type, cpu=cpu, memory_gb=memory)
        elif trainer_cpu or trainer_memory:
            resources = Resources(cpu=trainer_cpu, memory_gb=trainer_memory)
    except ValueError as error:
        _fail(str(error))
    config = _config(
        pipeline_root=pipeline_root,
        data_dir=f"{data_root.rstrip('/')}/ml-100k",
        serving_dir=serving_dir,
        pipeline_name=pipeline_name,
        schema_file=schema_file or IMAGE_SCHEMA_FILE,
        trainer_resources=resources,
        beam_pipeline_args=beam,
        **model_options,
    )
    try:
        path = compile_pipeline(config, image, output)
    except CompileError as error:
        _fail(str(error))
    click.echo(f"Wrote {path} (KFP v2 PipelineSpec, image {image}).")


@main.command("submit")
@click.argument("package", type=click.Path(exists=True, dir_okay=False))
@click.option("--host", required=True, envvar="KF_PIPELINES_ENDPOINT", help="KFP API URL (env KF_PIPELINES_ENDPOINT).")
@click.option("--experiment", default=DEFAULT_PIPELINE_NAME, show_default=True)
@click.option("--namespace", default=None, help="Kubeflow profile namespace (multi-user deployments).")
@click.option("--run-name", default=None, help="Run display name [default: pipeline name and UTC time].")
@click.option(
    "--token-env",
    default=None,
    metavar="VAR",
    help="Name of the environment variable holding a bearer token (the token itself is never a flag).",
)
def submit_command(package, host, experiment, namespace, run_name, token_env) -> None:
    """Upload a compiled PipelineSpec to Kubeflow Pipelines and start a run."""
    from kubeflow.submit import SubmitError, submit

    token = None
    if token_env:
        token = os.environ.get(token_env)
        if not token:
            _fail(f"--token-env {token_env}: that environment variable is not set or empty")
    try:
        run = submit(package, host, experiment=experiment, namespace=namespace, token=token, run_name=run_name)
    except SubmitError as error:
        _fail(str(error))
    click.echo(f"Run id: {run.run_id}")
    click.echo(f"Run URL: {run.url}")


if __name__ == "__main__":
    sys.exit(main())
