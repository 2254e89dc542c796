"""Executor contract: every container step of the compiled PipelineSpec, run exactly as KFP would start it.

`kfp_launcher.LocalLauncher` fills in `{{$}}` with the ExecutorInput the KFP v2 launcher would build
(local paths instead of gs://), then runs the step's own command and args in a subprocess whose
environment is the Dockerfile's ENV (TF_USE_LEGACY_KERAS is removed from the inherited environment
first, so the image must set it). The whole DAG runs this way on synthetic data, in dependency order,
artifacts flowing from each step's ExecutorOutput to the next step's inputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tensorflow as tf
import yaml
from kfp_launcher import EXECUTOR_INPUT_PLACEHOLDER, LocalLauncher, image_env

from kubeflow.runner import EXECUTOR_ENTRYPOINT, compile_pipeline
from pipeline import pipeline as dag
from pipeline.config import PipelineConfig, TrainerConfig, beam_args
from transform import features

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "kubeflow" / "Dockerfile"

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def launched(synthetic_dir, tmp_path_factory) -> tuple[LocalLauncher, dict, Path]:
    root = tmp_path_factory.mktemp("kfp")
    config = PipelineConfig(
        pipeline_root=str(root / "pipeline-root"),
        data_dir=str(synthetic_dir),
        serving_dir=str(root / "serving"),
        trainer=TrainerConfig(epochs=10, tuner_trials=0, retrieval_epochs=1),
        # The train mean scores test RMSE 1.05 on the synthetic data, 10 epochs 0.74: blessed means it learned.
        rmse_upper_bound=0.9,
        beam_pipeline_args=beam_args("DirectRunner"),
    )
    spec = yaml.safe_load(Path(compile_pipeline(config, "local/recommender:test", str(root / "p.yaml"))).read_text())
    launcher = LocalLauncher(spec, root / "pipeline-root", image_env(DOCKERFILE))
    outputs = {task: launcher.run(task) for task in launcher.order()}
    return launcher, outputs, root


def _uri(launcher: LocalLauncher, task: str, key: str) -> Path:
    return Path(launcher.outputs[task][key][0]["uri"])


def test_the_image_sets_legacy_keras():
    assert image_env(DOCKERFILE)["TF_USE_LEGACY_KERAS"] == "1"


def test_steps_run_the_spec_entrypoints_with_the_executor_input(launched):
    launcher, _, _ = launched
    example_gen = launcher.commands[dag.EXAMPLE_GEN]
    assert [argv[:3] for argv in example_gen] == [
        ["python", "-m", "tfx.orchestration.kubeflow.v2.file_based_example_gen.driver"],
        ["python", "-m", EXECUTOR_ENTRYPOINT],
    ]
    trainer = launcher.commands[dag.TRAINER][0]
    assert trainer[:3] == ["python", "-m", EXECUTOR_ENTRYPOINT]
    assert EXECUTOR_INPUT_PLACEHOLDER not in trainer
    invocation = json.loads(trainer[trainer.index("--json_serialized_invocation_args") + 1])
    assert invocation["inputs"]["parameterValues"]["run_fn"] == dag.RUN_FN
    assert set(invocation["inputs"]["artifacts"]) == {"examples", "transform_graph", "schema"}


def test_example_gen_writes_the_three_splits(launched):
    launcher, outputs, _ = launched
    examples = _uri(launcher, dag.EXAMPLE_GEN, "examples")
    metadata = outputs[dag.EXAMPLE_GEN]["artifacts"]["examples"]["artifacts"][0]["metadata"]
    assert json.loads(metadata["split_names"]) == ["train", "eval", "test"]
    counts = {}
    for split in ("train", "eval", "test"):
        files = tf.io.gfile.glob(str(examples / f"Split-{split}" / "*.gz"))
        counts[split] = sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP"))
    assert sum(counts.values()) == 3000  # synthetic_dir has 3,000 valid ratings
    assert counts["train"] > counts["eval"] > 0 and counts["test"] > 0


def test_trainer_exports_a_serving_model(launched):
    launcher, _, _ = launched
    model_dir = _uri(launcher, dag.TRAINER, "model") / "Format-Serving"
    model = tf.saved_model.load(str(model_dir))
    assert {
        features.SERVING_SIGNATURE, features.TRANSFORM_SIGNATURE, features.SLICE_SIGNATURE, features.RAW_SIGNATURE,
        features.RECOMMEND_SIGNATURE, features.CATALOGUE_SIGNATURE,
    } <= set(model.signatures.keys())  # fmt: skip


def test_evaluator_blesses_and_pusher_pushes_a_version(launched):
    launcher, outputs, root = launched
    blessing = outputs[dag.EVALUATOR]["artifacts"]["blessing"]["artifacts"][0]["metadata"]
    assert blessing["blessed"] == 1.0
    assert (_uri(launcher, dag.EVALUATOR, "blessing") / "BLESSED").exists()
    final = outputs[dag.RANKING_EVALUATOR]["artifacts"]["blessing"]["artifacts"][0]["metadata"]
    assert final["blessed"] == 1.0 and (_uri(launcher, dag.RANKING_EVALUATOR, "blessing") / "BLESSED").exists()
    ranking = outputs[dag.RANKING_EVALUATOR]["artifacts"]["evaluation"]["artifacts"][0]["metadata"]
    assert 0 < ranking["ndcg"] < 1
    pushed = outputs[dag.PUSHER]["artifacts"]["pushed_model"]["artifacts"][0]["metadata"]
    version_dir = root / "serving" / "movielens_ranker" / pushed["pushed_version"]
    assert pushed["pushed_destination"] == str(version_dir)
    assert (version_dir / "saved_model.pb").is_file()


def test_every_container_step_produced_its_output_artifacts(launched):
    launcher, _, _ = launched
    for task, keys in launcher.outputs.items():
        if "resolver" in launcher.executor(task):
            continue
        for key, artifacts in keys.items():
            uri = Path(artifacts[0]["uri"])
            assert uri.exists(), f"{task}.{key}: {uri} missing"
