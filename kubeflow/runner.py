"""Compile `create_pipeline(config)` for Kubeflow Pipelines v2 with TFX's KubeflowV2DagRunner.

The output is a bare KFP v2 PipelineSpec YAML (schema 2.1.0, what `kfp.Client` uploads and the KFP v2
backend runs). Nothing is uploaded at compile time: every module the components run (`preprocessing_fn`,
`run_fn`, `tuner_fn`, the custom executors) is referenced by dotted path into this package, which the
pipeline image installs (kubeflow/Dockerfile).
"""

from __future__ import annotations

import os
import tempfile

import yaml
from tfx import v1 as tfx

from pipeline.config import PipelineConfig
from pipeline.flink import kubeflow_executor
from pipeline.pipeline import create_pipeline

# Where kubeflow/Dockerfile puts the source tree (and so the curated schema) inside the image.
IMAGE_SOURCE_DIR = "/opt/recommender"
IMAGE_SCHEMA_FILE = f"{IMAGE_SOURCE_DIR}/schemas/schema.pbtxt"  # ml-100k's; image_schema_file(layout) for others
# The project's wheel, built into the image: the one dependency the Beam steps name on a Flink cluster.
IMAGE_WHEEL_DIR = f"{IMAGE_SOURCE_DIR}/dist"


def image_wheel() -> str:
    """The project's wheel inside the pipeline image (its name carries the version being compiled)."""
    from importlib.metadata import version

    return f"{IMAGE_WHEEL_DIR}/movielens_recommender-{version('movielens-recommender')}-py3-none-any.whl"


def image_schema_file(layout: str) -> str:
    """The schema of `layout` inside the pipeline image (the `schemas` package's files are all installed there)."""
    from schemas import derive

    return f"{IMAGE_SOURCE_DIR}/schemas/{derive.file_name(layout)}"


# URI schemes tf.io.gfile reads without extra plugins (s3:// needs tensorflow-io; minio:// is KFP-only).
GFILE_SCHEMES = ("gs",)
# The entry point every compiled executor runs (the KFP launcher fills in `{{$}}`): TFX's own.
EXECUTOR_ENTRYPOINT = kubeflow_executor.TFX_ENTRYPOINT
# What every executor runs instead when the Beam steps run on Flink: TFX's entry point with tfx_bsl's TFRecord
# reads spread over the Flink job's partitions (pipeline/flink/record_reads.py says why).
FLINK_EXECUTOR_ENTRYPOINT = kubeflow_executor.__name__


class CompileError(RuntimeError):
    """The pipeline could not be compiled (bad image, paths or options)."""


# The `recommender compile` flag behind each location of the config (errors name what the user typed).
LOCATION_FLAGS = {"pipeline_root": "--pipeline-root", "data_dir": "--data-root", "serving_dir": "--serving-dir"}


def check_location(flag: str, path: str) -> None:
    """Raises CompileError, naming `flag`, unless every pod can open `path` (gs:// or an absolute mount)."""
    scheme = path.split("://", 1)[0] if "://" in path else ""
    if scheme and scheme not in GFILE_SCHEMES:
        raise CompileError(
            f"{flag} {path}: TFX executors open artifact URIs with tf.io.gfile, which cannot read {scheme}:// "
            f"in this image (supported: {', '.join(s + '://' for s in GFILE_SCHEMES)})"
        )
    if not scheme and not os.path.isabs(path):
        raise CompileError(f"{flag} {path}: give a gs:// URI or an absolute path mounted in every pod")


def _check(config: PipelineConfig, image: str) -> None:
    if not image or any(c.isspace() for c in image):
        raise CompileError(f"--image must be a container image reference, got {image!r}")
    for name, flag in LOCATION_FLAGS.items():
        check_location(flag, getattr(config, name))
    if config.metadata_path:
        raise CompileError("--metadata-path is for local runs; on Kubeflow, ML Metadata is the cluster's")


def pipeline_spec(config: PipelineConfig, image: str) -> dict:
    """The KFP v2 PipelineSpec (as a dict) of the pipeline, every executor running `image`.

    `defaultPipelineRoot` is set from `config.pipeline_root`, so a run needs no extra pipeline-root
    argument; the bare YAML written by TFX itself leaves it out.
    """
    _check(config, image)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=image, use_pipeline_spec_2_1=True
        ),
        output_dir=tempfile.gettempdir(),  # Unused: write_out=False.
    )
    job = runner.run(create_pipeline(config), write_out=False)
    spec = job["pipelineSpec"]
    spec["defaultPipelineRoot"] = config.pipeline_root
    if "--runner=PortableRunner" in config.beam_pipeline_args:  # flink_runner_args
        for executor in spec["deploymentSpec"]["executors"].values():
            container = executor.get("container", {})
            if container.get("command") == ["python", "-m", EXECUTOR_ENTRYPOINT]:
                container["command"] = ["python", "-m", FLINK_EXECUTOR_ENTRYPOINT]
    return spec


def compile_pipeline(config: PipelineConfig, image: str, output: str) -> str:
    """Writes the PipelineSpec YAML to `output` (created atomically) and returns its path."""
    if not output.endswith((".yaml", ".yml")):
        raise CompileError(f"the output must be a .yaml file (a bare PipelineSpec), got {output!r}")
    spec = pipeline_spec(config, image)
    directory = os.path.dirname(os.path.abspath(output))
    os.makedirs(directory, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=directory, suffix=".tmp", delete=False) as handle:
        handle.write(f"# KFP v2 PipelineSpec of {config.pipeline_name}, compiled by `recommender compile`.\n")
        yaml.safe_dump(spec, handle, sort_keys=True)
    os.replace(handle.name, output)
    return output
