"""`recommender compile` and `recommender submit`: the pipeline on Kubeflow Pipelines v2."""

from __future__ import annotations

import os

import click
from click.core import ParameterSource

from pipeline.config import (
    BEAM_RUNNERS,
    CLUSTER_FLINK_JOB_ENDPOINT,
    CLUSTER_FLINK_WORKER_POOL,
    DEFAULT_PIPELINE_NAME,
)
from recommender.cli.common import build_config, fail, main, model_options, pipeline_name_option
from recommender.cli.data import dataset_option

# Trainer/Tuner limits on Kubeflow when --gpus is given without --trainer-cpu/--trainer-memory.
GPU_DEFAULT_CPU = 8.0
GPU_DEFAULT_MEMORY_GB = 32.0


@main.command("compile")
@click.option("--target", type=click.Choice(["kubeflow"]), default="kubeflow", show_default=True)
@click.option("--image", required=True, help="Pipeline image built from kubeflow/Dockerfile (REGISTRY/NAME:TAG).")
@click.option("--pipeline-root", required=True, help="Pipeline root the cluster can write, e.g. gs://bucket/root.")
@click.option(
    "--data-root",
    required=True,
    help="Holds the verified release directory (ml-100k/, or --dataset NAME/), e.g. gs://bucket/movielens.",
)
@click.option("--serving-dir", required=True, help="TF Serving model root; versions go to SERVING_DIR/MODEL_NAME/N/.")
@click.option(
    "--output",
    default=f"{DEFAULT_PIPELINE_NAME}.yaml",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Where to write the KFP v2 PipelineSpec YAML.",
)
@pipeline_name_option
@click.option(
    "--schema-file",
    default=None,
    help="Curated schema as seen from the pods [default: the copy inside the image].",
)
@model_options
@dataset_option
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
    type=click.Choice([*BEAM_RUNNERS, "flink"]),
    default="DirectRunner",
    show_default=True,
    help="Beam runner of ExampleGen, StatisticsGen, Transform and Evaluator; flink: the Flink cluster of "
    "kubeflow/manifests/flink/ (its Beam job server and worker pools).",
)
@click.option(
    "--flink-job-endpoint",
    default=CLUSTER_FLINK_JOB_ENDPOINT,
    show_default=True,
    metavar="HOST:PORT",
    help="With --beam-runner flink: the Beam job server in front of the Flink cluster, as the pods reach it "
    "(from another namespace: movielens-flink-job-server.NAMESPACE.svc:8099).",
)
@click.option(
    "--flink-worker-pool",
    default=CLUSTER_FLINK_WORKER_POOL,
    show_default=True,
    metavar="HOST:PORT",
    help="With --beam-runner flink: the Beam Python worker pool as the TaskManagers reach it (the sidecar).",
)
@click.option(
    "--beam-arg",
    "beam_extra",
    multiple=True,
    help="Extra Beam pipeline arg, repeatable, e.g. --beam-arg=--project=P (see README).",
)
@click.pass_context
def compile_command(
    context, target, image, pipeline_root, data_root, serving_dir, output, pipeline_name, schema_file, gpus,
    gpu_type, trainer_cpu, trainer_memory, beam_runner, flink_job_endpoint, flink_worker_pool, beam_extra, dataset,
    **model_options,
) -> None:  # fmt: skip
    """Compile the pipeline for Kubeflow Pipelines v2 into a PipelineSpec YAML (offline, nothing uploaded)."""
    from components.example_gen import releases
    from kubeflow.runner import CompileError, check_location, compile_pipeline, image_schema_file, image_wheel
    from pipeline.config import FlinkConfig, Resources, beam_args, flink_runner_args

    if beam_runner != "flink":
        for name in ("flink_job_endpoint", "flink_worker_pool"):
            if context.get_parameter_source(name) is not ParameterSource.DEFAULT:
                fail(f"--{name.replace('_', '-')} needs --beam-runner flink")

    layout = releases.RELEASES[dataset].layout

    try:  # The user's own values first, so that errors name the flags they typed.
        check_location("--pipeline-root", pipeline_root)
        check_location("--data-root", data_root)
        check_location("--serving-dir", serving_dir)
    except CompileError as error:
        fail(str(error))
    try:
        if beam_runner == "flink":
            endpoints = {"--flink-job-endpoint": flink_job_endpoint, "--flink-worker-pool": flink_worker_pool}
            for flag, value in endpoints.items():
                host, _, port = value.rpartition(":")
                if not (host and port.isdigit()):
                    raise ValueError(f"{flag} is HOST:PORT, got {value!r}")
            flink = FlinkConfig(worker_pool=flink_worker_pool)
            beam = flink_runner_args(flink, job_endpoint=flink_job_endpoint, package=image_wheel())
            beam = (*beam, *beam_args("PortableRunner", beam_extra)[1:])  # the extras, checked as for any runner
        else:
            beam = beam_args(beam_runner, beam_extra)
        resources = None
        if gpus:
            cpu, memory = trainer_cpu or GPU_DEFAULT_CPU, trainer_memory or GPU_DEFAULT_MEMORY_GB
            resources = Resources(gpus=gpus, gpu_type=gpu_type, cpu=cpu, memory_gb=memory)
        elif trainer_cpu or trainer_memory:
            resources = Resources(cpu=trainer_cpu, memory_gb=trainer_memory)
    except ValueError as error:
        fail(str(error))
    config = build_config(
        pipeline_root=pipeline_root,
        data_dir=f"{data_root.rstrip('/')}/{dataset}",
        serving_dir=serving_dir,
        pipeline_name=pipeline_name,
        schema_file=schema_file or image_schema_file(layout),
        layout=layout,
        trainer_resources=resources,
        beam_pipeline_args=beam,
        **model_options,
    )
    try:
        path = compile_pipeline(config, image, output)
    except CompileError as error:
        fail(str(error))
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
            fail(f"--token-env {token_env}: that environment variable is not set or empty")
    try:
        run = submit(package, host, experiment=experiment, namespace=namespace, token=token, run_name=run_name)
    except SubmitError as error:
        fail(str(error))
    click.echo(f"Run id: {run.run_id}")
    click.echo(f"Run URL: {run.url}")
