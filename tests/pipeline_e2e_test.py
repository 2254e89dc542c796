"""The whole DAG with LocalDagRunner on a small synthetic MovieLens, asserted through MLMD.

Tests in this module share one pipeline root and run in order: first run (through the
CLI, as a user would), the pushed model, re-runs and caching, then a worse model.
"""

import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from pipeline import metadata
from pipeline import pipeline as dag
from pipeline.config import PipelineConfig, TrainerConfig, direct_runner_args
from pipeline.local_runner import PipelineRunError, run_local, summarize
from transform import features as f

pytestmark = pytest.mark.e2e

ALL_COMPONENTS = {
    dag.EXAMPLE_GEN, dag.STATISTICS_GEN, dag.SCHEMA_IMPORTER, dag.EXAMPLE_VALIDATOR, dag.VALIDATION_GATE,
    dag.TRANSFORM, dag.TUNER, dag.TRAINER, dag.MODEL_RESOLVER, dag.EVALUATOR, dag.PUSHER,
}  # fmt: skip


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, synthetic_dir) -> dict:
    """The synthetic data plus two malformed lines (0.06% of 3,202: under the 0.1% limit)."""
    root = tmp_path_factory.mktemp("e2e")
    shutil.copytree(synthetic_dir, root / "data")
    with open(root / "data" / "u.data", "a") as handle:
        handle.write("1\t2\t9\t881250949\n\n")
    return {"data": root / "data", "root": root / "pipeline", "serving": root / "serving"}


# 1,785 training examples are 7 steps an epoch: at the default learning rate the model needs about
# 6 epochs to get under the RMSE bound (measured: eval RMSE 1.58, 1.44, 1.31, 1.18, 1.07, 0.97, ...).
EPOCHS = 10


def config_for(ws: dict, **overrides) -> PipelineConfig:
    values = dict(
        pipeline_root=str(ws["root"]),
        data_dir=str(ws["data"]),
        serving_dir=str(ws["serving"]),
        trainer=TrainerConfig(epochs=EPOCHS, tuner_trials=1),
        beam_pipeline_args=direct_runner_args(),
    )
    values.update(overrides)
    return PipelineConfig(**values)


def states(config: PipelineConfig) -> dict[str, str]:
    return {e.component: e.state for e in summarize(config).executions}


def tree_snapshot(directory: Path) -> dict[str, str]:
    """Every path under `directory` with the SHA-256 of its content (directories as <dir>)."""
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
        for p in sorted(directory.rglob("*"))
    }


def pushed_versions(ws: dict) -> list[str]:
    base = ws["serving"] / "movielens_ranker"
    return sorted(os.listdir(base)) if base.exists() else []


# A user with 4 earlier ratings (sum 14), the last 2 hours ago; a movie rated 10 times before (sum 38).
HISTORY_INTS = {
    f.USER_PRIOR_COUNT: 4, f.USER_PRIOR_GENRE_COUNT: 2, f.USER_RECENT_COUNT: 4, f.USER_SECONDS_SINCE_LAST: 7200,
    f.USER_PRIOR_OFFSET_COUNT: 3,
    f.MOVIE_PRIOR_COUNT: 10,
}  # fmt: skip
HISTORY_FLOATS = {
    f.USER_PRIOR_RATING_SUM: 14.0, f.USER_PRIOR_RATING_SQ_SUM: 52.0, f.USER_PRIOR_GENRE_RATING_SUM: 8.0,
    f.USER_RECENT_RATING_SUM: 14.0, f.MOVIE_PRIOR_RATING_SUM: 38.0, f.USER_PRIOR_OFFSET_SUM: -1.5,
}  # fmt: skip


PRIOR_MOVIES = {f.USER_PRIOR_MOVIES: ["1", "2", "3", "4"], f.USER_PRIOR_MOVIE_RATINGS: [5.0, 3.0, 3.0, 3.0]}


def raw_history(batch: int, **overrides) -> dict[str, tf.Tensor]:
    """The history features as predict_raw takes them, for `batch` identical requests."""
    values = {**HISTORY_INTS, **HISTORY_FLOATS, **PRIOR_MOVIES, **overrides}
    dtypes = {**dict.fromkeys(HISTORY_INTS, tf.int64), f.USER_PRIOR_MOVIES: tf.string}
    return {k: tf.constant([v] * batch, dtypes.get(k, tf.float32)) for k, v in values.items()}


def serialized_example(
    user: str, movie: str, genres=("Drama",), occupation="writer", prior_movies=PRIOR_MOVIES[f.USER_PRIOR_MOVIES]
) -> bytes:
    feature = {
        f.USER_ID: [user.encode()], f.MOVIE_ID: [movie.encode()], f.USER_GENDER: [b"F"],
        f.USER_OCCUPATION: [occupation.encode()], f.USER_ZIP: [b"55414"], f.MOVIE_TITLE: [b"A movie"],
        f.MOVIE_GENRES: [g.encode() for g in genres],
    }  # fmt: skip
    ints = {f.TIMESTAMP: 880_000_000, f.USER_AGE: 33, f.MOVIE_RELEASE_YEAR: 1995, **HISTORY_INTS}
    example = tf.train.Example()
    for key, values in feature.items():
        example.features.feature[key].bytes_list.value.extend(values)
    for key, value in ints.items():
        example.features.feature[key].int64_list.value.append(value)
    for key, value in HISTORY_FLOATS.items():
        example.features.feature[key].float_list.value.append(value)
    example.features.feature[f.USER_PRIOR_MOVIES].bytes_list.value.extend(m.encode() for m in prior_movies)
    ratings = PRIOR_MOVIES[f.USER_PRIOR_MOVIE_RATINGS][: len(prior_movies)]
    example.features.feature[f.USER_PRIOR_MOVIE_RATINGS].float_list.value.extend(ratings)
    return example.SerializeToString()


def test_first_run_through_the_cli_executes_blesses_and_pushes(workspace):
    command = [
        sys.executable, "-m", "pipeline.cli", "run",
        "--input-dir", str(workspace["data"]),
        "--pipeline-root", str(workspace["root"]),
        "--serving-dir", str(workspace["serving"]),
        "--epochs", str(EPOCHS), "--tuner-trials", "1",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for component in ALL_COMPONENTS:
        assert f"  {component}" in out
    assert "Transform                    finished in" in out
    assert "INFO" not in out + result.stderr and "Traceback" not in result.stderr
    assert "rows per split : train" in out and "blessed        : yes" in out
    assert "raw records    : 3,202 read, 2 rejected (bad_rating 1, blank_line 1) → " in out

    config = config_for(workspace)
    summary = summarize(config)
    assert {e.component: e.state for e in summary.executions} == {c: "COMPLETE" for c in ALL_COMPONENTS}
    assert sum(summary.split_rows.values()) == 3000
    examples = next(e for e in summary.executions if e.component == dag.EXAMPLE_GEN).output("examples")
    recorded = {key: metadata.value(examples.custom_properties[key]) for key in ("raw_records", "rejected_records")}
    assert recorded == {"raw_records": 3202, "rejected_records": 2}
    assert metadata.value(examples.custom_properties["rejected_by_reason"]) == '{"bad_rating": 1, "blank_line": 1}'
    quarantine = Path(metadata.value(examples.custom_properties["quarantine_uri"]))
    rejected = [line for path in quarantine.glob("rejected-*.jsonl") for line in path.read_text().splitlines()]
    assert sorted(json.loads(line)["line_no"] for line in rejected) == [3001, 3002]
    assert summary.blessed is True and summary.test_rmse < config.rmse_upper_bound
    assert summary.pushed_path and Path(summary.pushed_path, "saved_model.pb").is_file()
    assert Path(summary.pushed_path).parent == workspace["serving"] / "movielens_ranker"
    assert f"pushed model   : {summary.pushed_path}" in out


def test_pushed_model_scores_known_and_unknown_users(workspace):
    [version] = pushed_versions(workspace)
    model = tf.saved_model.load(str(workspace["serving"] / "movielens_ranker" / version))
    assert {f.SERVING_SIGNATURE, f.TRANSFORM_SIGNATURE, f.RAW_SIGNATURE} <= set(model.signatures)
    serve = model.signatures[f.SERVING_SIGNATURE]
    examples = [
        serialized_example("1", "1"),  # known user and movie
        serialized_example("1", "2", genres=("Comedy", "Thriller")),
        serialized_example("no-such-user", "999999", genres=("Western", "NewGenre"), occupation="astronaut"),
        serialized_example("1", "1", prior_movies=["5", "6", "7", "8"]),  # other earlier movies
        serialized_example("1", "1", prior_movies=[]),  # a first rating
    ]
    ratings = serve(examples=tf.constant(examples))[f.PREDICTION_KEY].numpy().ravel()
    assert ratings.shape == (5,)
    assert np.isfinite(ratings).all() and ((ratings >= 1) & (ratings <= 5)).all()
    assert ratings[0] != ratings[1]  # the movie's features matter (ids are not embedded by default)
    assert len({ratings[0], ratings[3], ratings[4]}) == 3  # which movies the user rated before matters

    raw = model.signatures[f.RAW_SIGNATURE]
    json_like = raw(
        user_id=tf.constant(["1", "no-such-user"]), movie_id=tf.constant(["1", "999999"]),
        user_gender=tf.constant(["F", "F"]), user_occupation=tf.constant(["writer", "astronaut"]),
        user_zip=tf.constant(["55414", "55414"]), movie_title=tf.constant(["A movie", "A movie"]),
        timestamp=tf.constant([880_000_000, 880_000_000], tf.int64), user_age=tf.constant([33, 33], tf.int64),
        movie_release_year=tf.constant([1995, 1995], tf.int64),
        movie_genres=tf.constant([["Drama", ""], ["Western", "NewGenre"]]), **raw_history(2),
    )[f.PREDICTION_KEY].numpy().ravel()  # fmt: skip
    np.testing.assert_allclose(json_like, [ratings[0], ratings[2]], rtol=1e-5)


def _with(serialized: bytes, edit) -> bytes:
    example = tf.train.Example.FromString(serialized)
    edit(example.features.feature)
    return example.SerializeToString()


def _retyped_age(feature):
    feature[f.USER_AGE].Clear()
    feature[f.USER_AGE].bytes_list.value.append(b"33")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda feature: feature.__delitem__(f.USER_AGE), "Feature: user_age .* is required but could not be found"),
        (_retyped_age, "Key: user_age.*Data types don't match.*expected type: int64"),
        (lambda feature: feature[f.USER_AGE].int64_list.value.append(40), "Key: user_age.*Number of int64 values"),
        (
            lambda feature: feature[f.USER_PRIOR_MOVIE_RATINGS].float_list.value.append(4.0),
            "user_prior_movies and user_prior_movie_ratings differ in length",
        ),
    ],
)
def test_serving_rejects_malformed_examples_with_a_clear_error(workspace, edit, message):
    [version] = pushed_versions(workspace)[:1]
    serve = tf.saved_model.load(str(workspace["serving"] / "movielens_ranker" / version)).signatures[
        f.SERVING_SIGNATURE
    ]
    good = serialized_example("1", "1")
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"(?s){message}"):
        serve(examples=tf.constant([good, _with(good, edit)]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="Could not parse example input"):
        serve(examples=tf.constant([b"\x00 not a tf.Example"]))


def test_serving_batches_empty_to_ten_thousand_stay_finite_and_in_range(workspace):
    [version] = pushed_versions(workspace)[:1]
    model = tf.saved_model.load(str(workspace["serving"] / "movielens_ranker" / version))
    serve, raw = model.signatures[f.SERVING_SIGNATURE], model.signatures[f.RAW_SIGNATURE]
    assert serve(examples=tf.constant([], tf.string))[f.PREDICTION_KEY].shape == (0, 1)

    rng = np.random.default_rng(0)
    batch = [
        serialized_example(str(rng.integers(1, 10**6)), str(rng.integers(1, 10**6)), genres=("Drama", "Zzz"))
        for _ in range(10_000)
    ]  # mostly unknown users and movies: OOV buckets
    ratings = serve(examples=tf.constant(batch))[f.PREDICTION_KEY].numpy().ravel()
    assert ratings.shape == (10_000,) and np.isfinite(ratings).all()
    assert ((ratings >= 1) & (ratings <= 5)).all()

    inputs = dict(
        user_id=["1", "x"], movie_id=["1", "y"], user_gender=["F", "?"], user_occupation=["writer", ""],
        user_zip=["55414", ""], movie_title=["A movie", ""], movie_genres=[["Drama"], [""]],
    )  # fmt: skip
    ints = dict(timestamp=[880_000_000, -1], user_age=[33, 10**9], movie_release_year=[1995, 0])
    kwargs = {k: tf.constant(v) for k, v in inputs.items()} | {k: tf.constant(v, tf.int64) for k, v in ints.items()}
    kwargs |= raw_history(2, user_prior_count=10**6, user_seconds_since_last=-1, movie_prior_rating_sum=1e9)
    extreme = raw(**kwargs)[f.PREDICTION_KEY].numpy().ravel()
    assert np.isfinite(extreme).all() and ((extreme >= 1) & (extreme <= 5)).all()
    empty = raw(**{k: v[:0] for k, v in kwargs.items()})[f.PREDICTION_KEY]
    assert empty.shape == (0, 1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="inputs differ in batch size"):
        raw(**{**kwargs, "user_id": tf.constant(["1"])})
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a int64 tensor but is a float"):
        raw(**{**kwargs, "user_age": tf.constant([33.0, 40.0])})
    with pytest.raises(TypeError, match="missing a required argument: 'user_age'"):
        raw(**{k: v for k, v in kwargs.items() if k != "user_age"})


def test_rerun_with_nothing_changed_is_cached(workspace):
    """Second run: everything up to the Trainer is cached. The Evaluator and Pusher run once
    more because their baseline input changed (run 1 had no blessed model; now the resolver
    returns run 1's model): TFX's own penguin e2e test documents the same. The third run
    executes nothing.
    """
    config = config_for(workspace)
    [first_version] = pushed_versions(workspace)
    run_local(config, echo=lambda line: None)
    second = states(config)
    run_local(config, echo=lambda line: None)
    third = states(config)
    upstream = ALL_COMPONENTS - {dag.MODEL_RESOLVER, dag.EVALUATOR, dag.PUSHER}
    assert {c: second[c] for c in upstream} == {c: "CACHED" for c in upstream}
    assert second[dag.EVALUATOR] == second[dag.PUSHER] == "COMPLETE"
    executors = ALL_COMPONENTS - {dag.MODEL_RESOLVER}  # the resolver is a query, not an executor
    assert {c: third[c] for c in executors} == {c: "CACHED" for c in executors}
    # The second run re-pushed the same model (same graph) as a new version; the third pushed nothing.
    versions = pushed_versions(workspace)
    assert len(versions) == 2 and versions[0] == first_version
    base = workspace["serving"] / "movielens_ranker"
    assert (base / versions[0] / "saved_model.pb").read_bytes() == (base / versions[1] / "saved_model.pb").read_bytes()


def test_a_model_worse_than_the_blessed_one_is_not_pushed(workspace):
    versions = pushed_versions(workspace)
    before = tree_snapshot(workspace["serving"])
    config = config_for(
        workspace,
        trainer=TrainerConfig(epochs=1, tuner_trials=0, learning_rate=1e-6, layer_sizes=(8,)),
        rmse_upper_bound=10.0,  # only the comparison with the blessed model can refuse it
        rmse_max_increase=0.0,
    )
    summary = run_local(config, echo=lambda line: None)
    by_name = {e.component: e for e in summary.executions}
    assert by_name[dag.TRAINER].state == "COMPLETE" and by_name[dag.EVALUATOR].state == "COMPLETE"
    assert summary.blessed is False and summary.pushed_path is None
    assert pushed_versions(workspace) == versions
    assert tree_snapshot(workspace["serving"]) == before  # every file, byte for byte


def test_a_model_over_the_rmse_bound_is_not_pushed(workspace):
    before = tree_snapshot(workspace["serving"])
    summary = run_local(config_for(workspace, rmse_upper_bound=0.05), echo=lambda line: None)
    assert summary.blessed is False and summary.pushed_path is None
    assert tree_snapshot(workspace["serving"]) == before


def test_too_many_malformed_lines_fail_at_example_gen_and_publish_nothing(synthetic_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(synthetic_dir, data)
    with open(data / "u.data", "a") as handle:
        handle.write("".join(f"{n}\tx\t3\t881250949\n" for n in range(1, 6)))  # 5 of 3,205 lines: 0.16%
    ws = {"data": data, "root": tmp_path / "pipeline", "serving": tmp_path / "serving"}
    config = config_for(ws, trainer=TrainerConfig(epochs=1, tuner_trials=0))
    pattern = (
        r"(?s)ExampleGen failed: RejectedRecordsError: ExampleGen rejected 5 of 3,205 raw records \(0\.156%; bad_id 5\)"
        r": more than the limit of 0\.100%.*u\.data:3001: movie id 'x' is not a positive integer"
        r".*ExampleGen/rejected/1/rejected-"
    )
    with pytest.raises(PipelineRunError, match=pattern) as failure:
        run_local(config, echo=lambda line: None)
    store = metadata.open_store(config.metadata_file)
    [run_id] = metadata.run_ids(store, config.pipeline_name)
    [example_gen] = metadata.run_executions(store, config.pipeline_name, run_id)
    assert example_gen.state == "FAILED"
    assert all(a.state != a.LIVE for artifacts in example_gen.outputs.values() for a in artifacts)
    # The rejected lines are where the message says, and they are all that is left of the execution.
    [pointer] = re.findall(r"All rejected records: (\S+)/rejected-\*\.jsonl", str(failure.value))
    rejected = [json.loads(line) for path in Path(pointer).glob("rejected-*.jsonl") for line in path.open()]
    assert sorted(r["line_no"] for r in rejected) == [3001, 3002, 3003, 3004, 3005]
    assert {r["reason"] for r in rejected} == {"bad_id"} and rejected[0]["text"].endswith("\tx\t3\t881250949")
    left = sorted(str(p.relative_to(ws["root"])) for p in ws["root"].rglob("*") if p.is_file())
    assert [p for p in left if not p.startswith("metadata.sqlite")] == sorted(
        str(p.relative_to(ws["root"])) for p in Path(pointer).iterdir()
    )


def test_schema_violation_stops_the_run_at_the_gate(synthetic_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(synthetic_dir, data)
    users = (data / "u.user").read_text("latin-1").splitlines()
    users[0] = "|".join(users[0].split("|")[:3] + ["astronaut"] + users[0].split("|")[4:])
    (data / "u.user").write_text("\n".join(users) + "\n", encoding="latin-1")
    ws = {"data": data, "root": tmp_path / "pipeline", "serving": tmp_path / "serving"}
    config = config_for(ws, trainer=TrainerConfig(epochs=1, tuner_trials=0))
    lines = []
    with pytest.raises(PipelineRunError, match=r"(?s)ValidationGate failed.*user_occupation.*astronaut"):
        run_local(config, echo=lines.append)
    assert "  ValidationGate               FAILED" in "\n".join(lines)
    store = metadata.open_store(config.metadata_file)
    [run_id] = metadata.run_ids(store, config.pipeline_name)
    ran = {e.component for e in metadata.run_executions(store, config.pipeline_name, run_id)}
    assert dag.EXAMPLE_VALIDATOR in ran and dag.TRANSFORM not in ran and dag.PUSHER not in ran
    assert not ws["serving"].exists()

    # The explicit override lets the anomaly through, and says so in the summary and in MLMD.
    accepting = dataclasses.replace(config, accepted_anomalies=("user_occupation",))
    summary = run_local(accepting, echo=lambda line: None)
    by_name = {e.component: e for e in summary.executions}
    assert by_name[dag.VALIDATION_GATE].state == by_name[dag.TRANSFORM].state == "COMPLETE"
    assert by_name[dag.EXAMPLE_VALIDATOR].state == "CACHED"
    assert by_name[dag.VALIDATION_GATE].property("accepted_anomalies") == '["user_occupation"]'
    [accepted] = summary.accepted_anomalies
    assert "] user_occupation:" in accepted and "astronaut" in accepted
    assert f"  ACCEPTED anomaly (override): {accepted}" in summary.lines()
