"""`recommender run`: the whole DAG locally."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import time
from pathlib import Path

import click
from click.core import ParameterSource

from recommender.cli.common import (
    DEFAULT_WORKDIR,
    build_config,
    data_root_option,
    fail,
    main,
    mirror_option,
    model_options,
)
from recommender.cli.data import dataset_option, fetch


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
    "--beam-runner",
    type=click.Choice(["direct", "flink"]),
    default="direct",
    show_default=True,
    help="Where the Beam steps run: Beam's in-process DirectRunner, or Apache Flink through one Beam job server "
    "for the whole run (embedded Flink unless --flink-master; needs Java, and Maven the first time).",
)
@click.option(
    "--flink-master",
    default="[local]",
    show_default=True,
    metavar="HOST:PORT",
    help="Where the Beam steps run: Flink embedded in the job server ([local]), a Flink session cluster started "
    "on this machine for the run ([local-cluster]: bounded memory for big inputs, see docs/flink.md), or a Flink "
    "cluster's JobManager (REST).",
)
@click.option(
    "--flink-job-server-jar",
    type=click.Path(dir_okay=False),
    help="Use this Beam Flink job-server jar instead of the one fetched with Maven and verified.",
)
@click.option(
    "--flink-maven-repository",
    metavar="URL",
    help="Maven repository to fetch the job server from [default: your Maven's, i.e. Maven Central].",
)
@click.option(
    "--flink-parallelism",
    default=0,
    show_default=True,
    type=int,
    help="Partitions of each Beam step's data (0: all cores with [local], one per 1.5 MB of input with "
    "[local-cluster], the cluster's default otherwise).",
)
@click.option(
    "--flink-slots",
    default=0,
    show_default=True,
    type=int,
    help="Task slots of the [local-cluster] TaskManager: the partitions that run at once (0 = all cores).",
)
@click.option(
    "--flink-heap",
    default="",
    help="Java heap where Flink runs the steps: the job server's ([local], default 2g) or the TaskManager's task "
    "heap ([local-cluster], default 1g).",
)
@click.option(
    "--flink-managed-memory",
    default="512m",
    show_default=True,
    help="Flink's managed memory for batch sorts and joins; past it they spill to --flink-tmp-dir.",
)
@click.option(
    "--flink-tmp-dir",
    type=click.Path(file_okay=False),
    help="Where Flink spills [default: PIPELINE_ROOT/flink/tmp, emptied after the run].",
)
@click.option(
    "--flink-worker-pool",
    metavar="HOST:PORT",
    help="A Beam Python worker pool the cluster's TaskManagers reach (EXTERNAL environment) [default: LOOPBACK, "
    "this process runs the Python code].",
)
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
    mirror, data_root, input_dir, dataset, pipeline_root, serving_dir, metadata_path, beam_runner, flink_master,
    flink_job_server_jar, flink_maven_repository, flink_parallelism, flink_slots, flink_heap, flink_managed_memory,
    flink_tmp_dir, flink_worker_pool, beam_mode, beam_workers, verbose, **model_options,
) -> None:  # fmt: skip
    """Run the whole pipeline locally (LocalDagRunner, SQLite MLMD; Beam on the DirectRunner or on Flink)."""
    from components.example_gen import layouts, releases
    from pipeline.config import FlinkConfig, direct_runner_args, flink_runner_args
    from pipeline.flink import job_server
    from pipeline.local_runner import PipelineRunError, run_local

    source = click.get_current_context().get_parameter_source
    if input_dir and ParameterSource.COMMANDLINE in (source("mirror"), source("dataset")):
        fail("--input-dir names the data already: give it alone, or --dataset/--mirror to fetch a verified release")
    flink = class_path = None
    if beam_runner == "flink":  # Everything the job server needs is checked before anything is written.
        try:
            flink = FlinkConfig(
                master=flink_master,
                job_server_jar=os.path.abspath(flink_job_server_jar) if flink_job_server_jar else None,
                parallelism=flink_parallelism,
                slots=flink_slots,
                heap=flink_heap,
                managed_memory=flink_managed_memory,
                tmp_dir=os.path.abspath(flink_tmp_dir) if flink_tmp_dir else None,
                worker_pool=flink_worker_pool,
            )
            class_path = job_server.resolve(flink, flink_maven_repository, progress=click.echo)
        except (ValueError, job_server.artifacts.JobServerError) as error:
            fail(str(error))
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
        beam = flink_runner_args(flink) if flink else direct_runner_args(beam_mode, beam_workers)
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
    from components.pusher.executor import PushError, check_same_data

    try:  # The Pusher refuses too, at the end; better now, before minutes of work.
        check_same_data(config.training_identity, config.model_serving_dir)
    except PushError as error:
        fail(str(error))
    from recommender.inspection import InspectionError
    from recommender.summary import summarize

    started = time.monotonic()
    try:
        if flink:
            run_id = _run_on_flink(config, flink, class_path, verbose)
        else:
            run_id = run_local(config, verbose=verbose)
    except PipelineRunError as error:
        fail(str(error))
    click.echo(f"Done in {time.monotonic() - started:.0f} s.")
    try:
        summary = summarize(config, run_id)
    except InspectionError as error:
        fail(f"the run finished, but its outcome cannot be read: {error}")
    for line in summary.lines():
        click.echo(line)


def _run_on_flink(config, flink, class_path, verbose: bool) -> str:
    """The DAG with one Flink job server for all its Beam steps (and, for [local-cluster], a Flink session cluster
    on this machine), stopped at the end whatever happens; the run id."""
    from components.example_gen import layouts
    from pipeline.flink import job_server, local_cluster, record_reads
    from pipeline.local_runner import PipelineRunError, run_local

    work_dir = Path(config.pipeline_root) / "flink"
    work_dir.mkdir(parents=True, exist_ok=True)
    if flink.master == local_cluster.MASTER and not flink.parallelism:
        read = layouts.input_files(layouts.LAYOUTS[config.layout], config.split_protocol)
        size = local_cluster.input_bytes(config.data_dir, read)
        flink = dataclasses.replace(flink, parallelism=local_cluster.partitions_for(size, flink.effective_slots))
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(job_server.terminate_on_sigterm())
            stack.enter_context(record_reads.spread_over_partitions())
            cluster = master = None
            if flink.master == local_cluster.MASTER:
                cluster = stack.enter_context(local_cluster.running(flink, class_path, work_dir))
                master = cluster.master
                slots = flink.effective_slots
                where = f"a Flink cluster started on this machine at {master}, {slots} task slot{'s' * (slots != 1)}"
            else:
                where = "embedded Flink" if flink.master == "[local]" else f"Flink at {flink.master}"
            server = stack.enter_context(job_server.running(flink, class_path, work_dir, master))
            click.echo(
                f"Flink job server at {server.endpoint} ({where}, parallelism {flink.effective_parallelism}, "
                f"heap {flink.effective_heap}, managed memory {flink.managed_memory}; logs in {work_dir})"
            )
            try:
                return run_local(config, verbose=verbose)
            except PipelineRunError as error:
                note = server.death_note() or (cluster.death_note() if cluster else None)
                raise PipelineRunError(f"{error} ({note})" if note else str(error)) from error
    except job_server.artifacts.JobServerError as error:
        raise PipelineRunError(str(error)) from error
    except job_server.Terminated as error:
        raise PipelineRunError(f"stopped: {error}; the Flink job server was stopped too") from None
    finally:
        if not flink.tmp_dir:
            shutil.rmtree(work_dir / "tmp", ignore_errors=True)
