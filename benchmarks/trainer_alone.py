"""The Trainer alone on a finished run's pipeline root, for TrainerConfig variants: each one's phases, its eval
choices and its test figures, without re-running the Beam steps before it.

    python benchmarks/trainer_alone.py --pipeline-root ROOT --work-dir DIR \
        --variant base: --variant "patience1:retrieval_patience=1" --variant "norefit:refit=false"

Each variant calls `run_fn` (components/trainer/task.py) with FnArgs built as TFX's Trainer builds them
(tfx fn_args_utils) from the root's latest run: its Transform outputs, its Tuner's choice and its Trainer's
own TrainerConfig (seed included), changed by the variant's NAME=VALUE pairs. Its test figures are the Evaluator's RMSE
(`serving_default` on the test split's raw examples, clipped as served) and the RankingEvaluator's NDCG@10
(`recommend` for every test user, components/ranking_evaluator/metrics.py). Wall times are the Trainer's own
phases (history.json); run it alone for figures to compare.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tfx.components.trainer import fn_args_utils  # noqa: E402
from tfx.proto import trainer_pb2  # noqa: E402
from tfx.types import artifact_utils, standard_artifacts  # noqa: E402
from tfx.utils import proto_utils  # noqa: E402

from components.ranking_evaluator import component, metrics  # noqa: E402
from components.trainer import task  # noqa: E402
from pipeline import metadata  # noqa: E402
from pipeline import pipeline as dag  # noqa: E402
from pipeline.config import DEFAULT_PIPELINE_NAME, TrainerConfig  # noqa: E402
from transform import features as f  # noqa: E402

SPLITS = ("train", "eval", "test")


def parse_variant(text: str) -> tuple[str, dict]:
    """'name:key=value,key=value' → (name, TrainerConfig changes typed as its fields)."""
    name, _, pairs = text.partition(":")
    fields = {field.name: field for field in dataclasses.fields(TrainerConfig)}
    changes = {}
    for pair in filter(None, pairs.split(",")):
        key, _, value = pair.partition("=")
        if key not in fields:
            raise SystemExit(f"Error: {key} is not a TrainerConfig field")
        default = getattr(TrainerConfig(), key)
        if value.lower() == "none":
            changes[key] = None
        elif isinstance(default, bool):
            changes[key] = value.lower() in ("1", "true", "yes")
        elif isinstance(default, int):
            changes[key] = int(value)
        else:
            changes[key] = float(value)
    return name, changes


def latest_run(root: str) -> tuple[dict[str, str], TrainerConfig]:
    """The latest run's artifact URIs ("Component.key") and its Trainer's TrainerConfig."""
    store = metadata.open_store(os.path.join(root, "metadata.sqlite"))
    run = metadata.run_ids(store, DEFAULT_PIPELINE_NAME)[-1]
    executions = metadata.run_executions(store, DEFAULT_PIPELINE_NAME, run)
    uris = {f"{e.component}.{key}": found[0].uri for e in executions for key, found in e.outputs.items() if found}
    trainer = next(e for e in executions if e.component == dag.TRAINER)
    return uris, TrainerConfig.from_dict(json.loads(trainer.property("custom_config")))


def fn_args(artifacts: dict, config: TrainerConfig, out: Path) -> fn_args_utils.FnArgs:
    """FnArgs as the Trainer component builds them from the run's Transform and Tuner outputs."""
    examples = standard_artifacts.Examples()
    examples.uri = artifacts["Transform.transformed_examples"]
    examples.split_names = artifact_utils.encode_split_names(list(SPLITS))
    graph = standard_artifacts.TransformGraph()
    graph.uri = artifacts["Transform.transform_graph"]
    properties = {
        "train_args": proto_utils.proto_to_json(trainer_pb2.TrainArgs(splits=["train"])),
        "eval_args": proto_utils.proto_to_json(trainer_pb2.EvalArgs(splits=["eval"])),
        "custom_config": json.dumps(config.to_dict()),
    }
    args = fn_args_utils.get_common_fn_args({"examples": [examples], "transform_graph": [graph]}, properties)
    args.serving_model_dir, args.model_run_dir = str(out / "model"), str(out / "model_run")
    tuned = artifacts.get("Tuner.best_hyperparameters")
    if tuned:
        args.hyperparameters = json.loads(Path(tuned, "best_hyperparameters.txt").read_text())
    return args


def test_rmse(model, examples_uri: str) -> float:
    """RMSE of `serving_default` (predictions clipped as served) on the test split's raw examples."""
    low, high = (float(x) for x in model.signatures[f.CATALOGUE_SIGNATURE]()[f.OUT_RATING_RANGE].numpy())
    files = tf.io.gfile.glob(os.path.join(examples_uri, "Split-test", "*"))
    squared, count = 0.0, 0
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(4096):
        labels = tf.io.parse_example(batch, {f.LABEL_KEY: tf.io.FixedLenFeature([], tf.float32)})[f.LABEL_KEY]
        predicted = model.signatures[f.SERVING_SIGNATURE](examples=batch)[f.PREDICTION_KEY]
        predicted = np.clip(np.reshape(predicted.numpy(), [-1]), low, high)
        squared += float(np.sum((predicted - labels.numpy()) ** 2))
        count += len(predicted)
    return (squared / count) ** 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline-root", required=True)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--variant", action="append", default=[], help="name:key=value,... (base: the defaults)")
    args = parser.parse_args()
    artifacts, run_config = latest_run(args.pipeline_root)
    users = component.read_test_users(artifacts["ExampleGen.examples"], "test")
    relevant = {user: entry["relevant"] for user, entry in users.items()}
    rows = []
    for name, changes in map(parse_variant, args.variant or ["base:"]):
        out = args.work_dir / name
        config = dataclasses.replace(run_config, **changes)
        started = time.monotonic()
        task.run_fn(fn_args(artifacts, config, out))
        seconds = time.monotonic() - started
        history = json.loads((out / "model_run" / task.HISTORY_FILE).read_text())
        model = tf.saved_model.load(str(out / "model"))
        ndcg = metrics.accuracy(component.recommend_all(model, sorted(users), 10), relevant, 10)["ndcg"]
        rmse = test_rmse(model, artifacts["ExampleGen.examples"])
        phases = history["seconds"]
        retrieval = history["retrieval_history"]
        choices = history["item_item"]
        rows.append(
            f"| {name} | {seconds:.0f} s | {phases['ranker']:.0f} | {phases['refit']:.0f} | "
            f"{phases['recommender']:.0f} ({retrieval['seconds']['fit']:.0f} fit, {len(retrieval['loss'])} epochs, "
            f"best {retrieval['best_epoch']}) | {phases['export']:.0f} | share {choices['share']:g}, "
            f"weight {choices['rating_weight']:g} | {rmse:.4f} | {ndcg:.4f} |"
        )
        print(rows[-1], file=sys.stderr, flush=True)
    print("| variant | Trainer | ranker | refit | recommender | export | eval choices | test RMSE | test NDCG@10 |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
