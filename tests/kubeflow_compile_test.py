"""`recommender compile --target kubeflow`: the PipelineSpec is the local DAG, on the given image and paths."""

from __future__ import annotations

import importlib
import importlib.util
import json
import subprocess
import sys

import kfp.components
import pytest
import yaml
from click.testing import CliRunner
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.utils import import_utils

from kubeflow.runner import EXECUTOR_ENTRYPOINT, FLINK_EXECUTOR_ENTRYPOINT, IMAGE_SCHEMA_FILE, image_wheel
from pipeline import pipeline as dag
from pipeline.config import CLUSTER_FLINK_JOB_ENDPOINT, CLUSTER_FLINK_WORKER_POOL, PipelineConfig, TrainerConfig
from recommender.cli import main

IMAGE = "registry.example.com/ml/recommender:1.2.3"
ROOT = "gs://bucket/root"
DATA = "gs://bucket/movielens"
SERVING = "gs://bucket/serving"
BEAM_COMPONENTS = (dag.EXAMPLE_GEN, dag.STATISTICS_GEN, dag.TRANSFORM, dag.EVALUATOR)
DATAFLOW_ARGS = ("--project=my-project", "--region=europe-west4", "--temp_location=gs://bucket/tmp")


def _compile(tmp_path, *extra: str) -> dict:
    output = tmp_path / "pipeline.yaml"
    args = ["compile", "--image", IMAGE, "--pipeline-root", ROOT, "--data-root", DATA, "--serving-dir", SERVING]
    result = CliRunner().invoke(main, [*args, "--output", str(output), *extra])
    assert result.exit_code == 0, result.output
    assert f"Wrote {output}" in result.output
    return yaml.safe_load(output.read_text())


@pytest.fixture(scope="module")
def cpu_spec(tmp_path_factory) -> dict:
    return _compile(tmp_path_factory.mktemp("cpu"))


@pytest.fixture(scope="module")
def gpu_spec(tmp_path_factory) -> dict:
    beam = [f"--beam-arg={arg}" for arg in DATAFLOW_ARGS]
    return _compile(tmp_path_factory.mktemp("gpu"), "--gpus", "2", "--beam-runner", "DataflowRunner", *beam)


def _containers(spec: dict) -> dict[str, dict]:
    """Task name -> its executor's container (resolver tasks have none)."""
    executors = spec["deploymentSpec"]["executors"]
    result = {}
    for task, task_spec in spec["root"]["dag"]["tasks"].items():
        executor = executors[spec["components"][task_spec["componentRef"]["name"]]["executorLabel"]]
        if "container" in executor:
            result[task] = executor["container"]
    return result


def _parameter(spec: dict, task: str, name: str):
    return spec["root"]["dag"]["tasks"][task]["inputs"]["parameters"][name]["runtimeValue"]["constant"]


def _local_node(task: str) -> str:
    """KFP splits the TFX Resolver into two resolver tasks named after it."""
    return dag.MODEL_RESOLVER if task.startswith(dag.MODEL_RESOLVER) else task


def test_the_yaml_is_a_pipeline_spec_the_kfp_sdk_loads(cpu_spec, tmp_path):
    proto = pipeline_spec_pb2.PipelineSpec()
    json_format.ParseDict(cpu_spec, proto)  # Unknown fields would raise.
    assert proto.schema_version == "2.1.0"
    assert proto.pipeline_info.name == "movielens-recommender"
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(cpu_spec))
    component = kfp.components.load_component_from_file(str(path))
    assert component.pipeline_spec.root.dag.tasks.keys() == cpu_spec["root"]["dag"]["tasks"].keys()


def test_same_components_and_edges_as_the_local_dag(cpu_spec):
    config = PipelineConfig(pipeline_root=ROOT, data_dir=f"{DATA}/ml-100k", serving_dir=SERVING)
    local = {node.id: {up.id for up in node.upstream_nodes} for node in dag.create_pipeline(config).components}
    compiled: dict[str, set[str]] = {}
    for task, task_spec in cpu_spec["root"]["dag"]["tasks"].items():
        upstream = {_local_node(t) for t in task_spec.get("dependentTasks", [])} - {_local_node(task)}
        compiled.setdefault(_local_node(task), set()).update(upstream)
    assert compiled == local
    assert dag.TUNER in compiled and compiled[dag.TRAINER] >= {dag.TRANSFORM, dag.TUNER, dag.VALIDATION_GATE}


def test_every_executor_runs_the_given_image_through_the_tfx_v2_entrypoint(cpu_spec):
    containers = _containers(cpu_spec)
    assert set(containers) == set(cpu_spec["root"]["dag"]["tasks"]) - {
        t for t in cpu_spec["root"]["dag"]["tasks"] if t.startswith(dag.MODEL_RESOLVER)
    }
    for task, container in containers.items():
        assert container["image"] == IMAGE, task
        assert container["command"] == ["python", "-m", EXECUTOR_ENTRYPOINT], task


def test_accelerators_only_for_trainer_and_tuner_and_only_with_gpus(cpu_spec, gpu_spec):
    assert not any("resources" in c for c in _containers(cpu_spec).values())
    for task, container in _containers(gpu_spec).items():
        if task in (dag.TRAINER, dag.TUNER):
            resources = container["resources"]
            assert resources["accelerator"] == {"type": "nvidia.com/gpu", "count": "2"}
            assert resources["cpuLimit"] == 8.0 and resources["memoryLimit"] == 32.0
        else:
            assert "resources" not in container, task


def test_beam_args_reach_the_beam_components(cpu_spec, gpu_spec):
    expected = ["--runner=DataflowRunner", *DATAFLOW_ARGS]
    containers = _containers(gpu_spec)
    for task in BEAM_COMPONENTS:
        assert containers[task]["args"][-len(expected) :] == expected, task
    driver = containers[dag.EXAMPLE_GEN]["lifecycle"]["preCacheCheck"]
    assert driver["args"][-len(expected) :] == expected
    for task in BEAM_COMPONENTS:  # Default: Beam's DirectRunner inside the step's pod.
        assert _containers(cpu_spec)[task]["args"][-1] == "--runner=DirectRunner"


def test_flink_points_the_beam_steps_at_the_cluster_manifests_job_server_and_worker_pools(tmp_path):
    """The defaults are kubeflow/manifests/flink/'s Service and sidecar (tests/manifests_test.py checks those)."""
    spec = _compile(tmp_path, "--beam-runner", "flink", "--beam-arg=--sdk_worker_parallelism=1")
    expected = [
        "--runner=PortableRunner",
        f"--job_endpoint={CLUSTER_FLINK_JOB_ENDPOINT}",
        "--environment_type=EXTERNAL",
        f"--environment_config={CLUSTER_FLINK_WORKER_POOL}",
        "--sdk_location=container",
        "--execution_mode_for_batch=BATCH_FORCED",
        f"--extra_package={image_wheel()}",
        "--sdk_worker_parallelism=1",
    ]
    containers = _containers(spec)
    for task in BEAM_COMPONENTS:
        assert containers[task]["args"][-len(expected) :] == expected, task
    assert "/work/" not in yaml.safe_dump(spec)  # The image's wheel, not the compiling machine's setup.py.
    other = _compile(tmp_path, "--beam-runner", "flink", "--flink-job-endpoint", "jobs.flink.svc:18099")
    assert "--job_endpoint=jobs.flink.svc:18099" in _containers(other)[dag.TRANSFORM]["args"]
    # Each step starts TFX's entry point through the one that spreads TFRecord reads over the partitions.
    commands = {task: container["command"] for task, container in _containers(spec).items()}
    assert set(map(tuple, commands.values())) == {("python", "-m", FLINK_EXECUTOR_ENTRYPOINT)}, commands


def test_the_flink_entrypoint_is_tfxs_own():
    """`python -m pipeline.flink.kubeflow_executor` is TFX's entry point: its flags, and its refusal without them."""
    command = [sys.executable, "-m", FLINK_EXECUTOR_ENTRYPOINT]
    shown = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0 and "--executor_class_path" in shown.stdout, shown.stderr[-2000:]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "--executor_class_path" in refused.stderr


def test_paths_are_the_given_ones(cpu_spec):
    assert cpu_spec["defaultPipelineRoot"] == ROOT
    assert _parameter(cpu_spec, dag.EXAMPLE_GEN, "input_base") == f"{DATA}/ml-100k"
    assert _parameter(cpu_spec, dag.SCHEMA_IMPORTER, "schema_file") == IMAGE_SCHEMA_FILE
    destination = json.loads(_parameter(cpu_spec, dag.PUSHER, "push_destination"))
    assert destination["filesystem"]["base_directory"] == f"{SERVING}/movielens_ranker"
    text = yaml.safe_dump(cpu_spec)
    assert "/work/" not in text and "/tmp/" not in text  # Nothing from the compiling machine leaks in.


def test_every_dotted_path_in_the_spec_is_importable(cpu_spec):
    paths = set()
    for container in _containers(cpu_spec).values():
        steps = [container, container.get("lifecycle", {}).get("preCacheCheck")]
        for step in filter(None, steps):
            module = step["command"][step["command"].index("-m") + 1]
            assert importlib.util.find_spec(module) is not None, module
        args = container["args"]
        paths.add(args[args.index("--executor_class_path") + 1])
    for path in paths:
        assert isinstance(import_utils.import_class_by_path(path), type), path
    functions = [
        _parameter(cpu_spec, dag.TRANSFORM, "preprocessing_fn"),
        _parameter(cpu_spec, dag.TRAINER, "run_fn"),
        _parameter(cpu_spec, dag.TUNER, "tuner_fn"),
    ]
    assert functions == [dag.PREPROCESSING_FN, dag.RUN_FN, dag.TUNER_FN]
    for function in functions:
        module, name = function.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), name)), function


def test_trainer_settings_travel_in_custom_config(tmp_path):
    spec = _compile(tmp_path, "--epochs", "7", "--tuner-trials", "0", "--seed", "3")
    assert dag.TUNER not in spec["root"]["dag"]["tasks"]
    trainer = TrainerConfig.from_dict(json.loads(_parameter(spec, dag.TRAINER, "custom_config")))
    assert (trainer.epochs, trainer.tuner_trials, trainer.seed) == (7, 0, 3)


@pytest.mark.parametrize(("split", "seed", "drawn_with"), [("time", 3, 0), ("stratified", 3, 3), ("u4", 5, 5)])
def test_the_split_protocol_and_its_seed_reach_example_gen(tmp_path, split, seed, drawn_with):
    spec = _compile(tmp_path, "--split", split, "--seed", str(seed))
    custom = json.loads(_parameter(spec, dag.EXAMPLE_GEN, "custom_config"))["custom_config"]["value"]
    assert (custom["split_protocol"], int(custom["split_seed"])) == (split, drawn_with)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--pipeline-root", "relative/root"], "--pipeline-root relative/root: give a gs:// URI or an absolute path"),
        (["--serving-dir", "minio://mlpipeline/serving"], "--serving-dir minio://mlpipeline/serving: TFX executors"),
        (["--data-root", "s3://bucket/movielens"], "--data-root s3://bucket/movielens: TFX executors"),
        (["--beam-arg=--runner=FlinkRunner"], "give the Beam runner with --beam-runner"),
        (["--beam-arg=project=p"], "Beam args look like --name=value"),
        (["--output", "pipeline.json"], "must be a .yaml file"),
        (["--image", "bad image"], "--image must be a container image reference"),
        (["--flink-job-endpoint", "jobs:8099"], "--flink-job-endpoint needs --beam-runner flink"),
        (["--beam-runner", "flink", "--flink-worker-pool", "pool"], "--flink-worker-pool is HOST:PORT, got 'pool'"),
    ],
)
def test_bad_options_are_clear_errors(tmp_path, extra, message):
    args = ["compile", "--image", IMAGE, "--pipeline-root", ROOT, "--data-root", DATA, "--serving-dir", SERVING]
    result = CliRunner().invoke(main, [*args, "--output", str(tmp_path / "p.yaml"), *extra])
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not any(name in result.output for name in ("pipeline_root", "data_dir", "serving_dir", "ml-100k"))
