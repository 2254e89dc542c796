"""The rating model's data on the shared first run's real Transform output (e2e_run.py): the Trainer's batch size
and scaled learning rate in its history, and the Tuner's seeded, cached sample of users (components/tuner/tuner.py
tuning_data, components/trainer/data.py parsed_once / epochs_of)."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer import fn_args_utils
from tfx.proto import trainer_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import proto_utils

from components.trainer import data, task
from components.tuner import tuner
from pipeline import pipeline as dag
from pipeline.config import TrainerConfig
from transform import features as f

pytestmark = pytest.mark.e2e

SAMPLE_RATINGS = 600  # of the shared run's 1,785 training ratings: the Tuner's sampled path


@pytest.fixture(scope="module")
def executions(first_run) -> dict:
    return {e.component: e for e in first_run["summary"].executions}


@pytest.fixture(scope="module")
def fn_args(executions) -> fn_args_utils.FnArgs:
    """FnArgs as TFX's Trainer and Tuner build them from the run's Transform outputs."""
    examples = standard_artifacts.Examples()
    examples.uri = executions[dag.TRANSFORM].output("transformed_examples").uri
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    graph = standard_artifacts.TransformGraph()
    graph.uri = executions[dag.TRANSFORM].output("transform_graph").uri
    properties = {
        "train_args": proto_utils.proto_to_json(trainer_pb2.TrainArgs(splits=["train"])),
        "eval_args": proto_utils.proto_to_json(trainer_pb2.EvalArgs(splits=["eval"])),
    }
    return fn_args_utils.get_common_fn_args({"examples": [examples], "transform_graph": [graph]}, properties)


def rows(dataset: tf.data.Dataset) -> list[tuple[bytes, int, int]]:
    """(user, movie, timestamp) of every row, in order."""
    return [
        (user, movie, time)
        for features, _ in dataset.as_numpy_iterator()
        for user, movie, time in zip(
            features[f.USER_ID].reshape(-1),
            features[f.MOVIE_ID_XF].reshape(-1),
            features[f.TIMESTAMP].reshape(-1),
            strict=True,
        )
    ]


def test_the_trainer_records_the_batch_its_step_budget_gives_and_the_scaled_learning_rate(executions, fn_args):
    history = json.loads(Path(executions[dag.TRAINER].output("model_run").uri, task.HISTORY_FILE).read_text())
    config = TrainerConfig()
    tft_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    train = data.make_dataset(fn_args.train_files, fn_args.data_accessor, tft_output, data.READ_BATCH, False, 1)
    batch = data.batch_size_for(data.count_rows(train), config.batch_size, config.ranker_epoch_steps)
    assert history["batch_size"] == batch
    tuned = json.loads(
        Path(executions[dag.TUNER].output("best_hyperparameters").uri, "best_hyperparameters.txt").read_text()
    )
    chosen = task.hyperparameters(config, tuned).learning_rate
    assert history["hyperparameters"]["learning_rate"] == pytest.approx(chosen * np.sqrt(batch / config.batch_size))


def test_the_tuners_sample_is_whole_users_of_train_the_same_users_in_eval_and_the_same_for_a_seed(fn_args, tmp_path):
    tft_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    config = TrainerConfig(tuner_sample_ratings=SAMPLE_RATINGS)
    everything = data.make_dataset(fn_args.train_files, fn_args.data_accessor, tft_output, 4096, False, 1)
    all_train = rows(everything)
    all_eval = rows(data.make_dataset(fn_args.eval_files, fn_args.data_accessor, tft_output, 4096, False, 1))

    for name in "abc":
        (tmp_path / name).mkdir()
    train, val = tuner.tuning_data(fn_args, tft_output, config, str(tmp_path / "a"))
    first = rows(train)  # the first pass writes the cache
    assert 0.4 * SAMPLE_RATINGS < len(first) < 1.6 * SAMPLE_RATINGS < len(all_train)
    assert set(first) <= set(all_train) and not set(first) & set(all_eval)  # no eval row in the train sample
    users = {user for user, _, _ in first}
    assert sorted(first) == sorted(row for row in all_train if row[0] in users)  # whole users
    sampled_eval = rows(val)
    eval_users = {user for user, _, _ in sampled_eval}
    train_users = {user for user, _, _ in all_train}
    # The same users: each sampled train user's eval rows, and whole eval users (also some without train rows).
    assert eval_users & train_users == users & {user for user, _, _ in all_eval}
    assert sorted(sampled_eval) == sorted(row for row in all_eval if row[0] in eval_users)

    epochs = data.epochs_of(train, 32, True, config.seed)
    one, two = rows(epochs), rows(epochs)
    assert sorted(one) == sorted(two) == sorted(first) and one != two  # every sampled row, reordered per epoch
    again, _ = tuner.tuning_data(fn_args, tft_output, config, str(tmp_path / "b"))
    assert rows(again) == first  # deterministic for a seed
    other, _ = tuner.tuning_data(fn_args, tft_output, TrainerConfig(tuner_sample_ratings=SAMPLE_RATINGS, seed=7),
                                 str(tmp_path / "c"))  # fmt: skip
    assert {user for user, _, _ in rows(other)} != users
