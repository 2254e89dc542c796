"""RankingEvaluator: top-K quality of the trained model's `recommend` on the test split, and the final blessing.

Runs after the Evaluator (TFMA: RMSE/MAE by slice, and the RMSE upper bound). It compares the candidate's
test RMSE with the last blessed model's, paired and bootstrapped over users (components/evaluator/paired.py:
non-inferiority within `rmse_margin`). It asks the exported SavedModel for each test user's top K, from the
user id alone (the snapshot as of the end of the training data: test-period events never reach it), scores
the lists with metrics.py, slices them by gender, age band and seen/unseen user, sweeps the diversity knob,
and blesses the model iff the Evaluator blessed it, the RMSE comparison passes, NDCG@K is at least
`ndcg_lower_bound`, and NDCG@K has not fallen more than `ndcg_max_decrease` below the last blessed model's
(recomputed on the same test split). The Pusher pushes on this blessing; the baseline resolver reads only
this component's blessings.
"""

import json
import logging
import os
from collections import defaultdict

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx

from components import identity
from components.evaluator import paired
from components.ranking_evaluator import metrics
from transform import features as f

RESULT_FILE = "ranking.json"
COMPARISON_FILE = "rating_comparison.json"  # paired.compare's figures and decision
DIVERSITY_SWEEP = (0.0, 0.25, 0.5, 0.75, 1.0)
BATCH = 256


# What read_test_users parses of each test example; releases without a users file have no gender and age.
_NO_AGE = -1
_TEST_USER_SPEC = {
    f.USER_ID: tf.io.FixedLenFeature([], tf.string),
    f.MOVIE_ID: tf.io.FixedLenFeature([], tf.string),
    f.USER_GENDER: tf.io.FixedLenFeature([], tf.string, default_value=""),
    f.USER_AGE: tf.io.FixedLenFeature([], tf.int64, default_value=_NO_AGE),
}


def read_test_users(examples_uri: str, split: str) -> dict[str, dict]:
    """user id → {"relevant": set of movie ids, "gender", "age"} from ExampleGen's examples of `split`
    (gender and age None in releases without a users file).

    Parses only these four features, a batch at a time: parsing each whole example in Python took 51 s of the
    RankingEvaluator's 81 s at 1M generated ratings (201,634 test examples).
    """
    users: dict[bytes, dict] = {}
    for batch in paired.records(examples_uri, split):
        parsed = tf.io.parse_example(batch, _TEST_USER_SPEC)
        columns = (parsed[name].numpy().tolist() for name in _TEST_USER_SPEC)
        for user, movie, gender, age in zip(*columns, strict=True):
            entry = users.get(user)
            if entry is None:
                gender, age = (gender.decode() or None), (None if age == _NO_AGE else age)
                entry = users[user] = {"relevant": set(), "gender": gender, "age": age}
            entry["relevant"].add(movie)
    return {
        user.decode(): {**entry, "relevant": {movie.decode() for movie in entry["relevant"]}}
        for user, entry in users.items()
    }


def recommend_all(model, users: list[str], k: int, diversity: float = 0.0) -> dict[str, list[str]]:
    """Each user's top k from the model's `recommend` signature (no recent ratings)."""
    recommend = model.signatures[f.RECOMMEND_SIGNATURE]
    ranked = {}
    for start in range(0, len(users), BATCH):
        batch = users[start : start + BATCH]
        out = recommend(
            user_id=tf.constant(batch),
            recent_movies=tf.zeros([len(batch), 0], tf.string),
            recent_ratings=tf.zeros([len(batch), 0], tf.float32),
            k=tf.constant(k, tf.int32),
            diversity=tf.constant(diversity, tf.float32),
        )
        for user, movies in zip(batch, out[f.OUT_MOVIE_IDS].numpy(), strict=True):
            ranked[user] = [m.decode() for m in movies]
    return ranked


def age_band(age: int) -> str:
    """The features.AGE_BUCKET_NAMES band of an age (as transform/preprocessing.age_bucket)."""
    return f.AGE_BUCKET_NAMES[int(np.searchsorted(f.AGE_BUCKET_BOUNDARIES, age, side="right"))]


def evaluate(model, users: dict[str, dict], k: int, train_users: set[str] | None = None) -> dict:
    """Every figure of the RankingEvaluation of `model` on the test users; `train_users` (the train vocabulary's
    user ids) slices them into seen and unseen (features.USER_SEEN_IN_TRAIN, as the Evaluator's slices)."""
    catalogue = {name: value.numpy() for name, value in model.signatures[f.CATALOGUE_SIGNATURE]().items()}
    ids = [m.decode() for m in catalogue[f.OUT_MOVIE_IDS]]
    genres = {m: set(g.decode().split("|")) - {""} for m, g in zip(ids, catalogue[f.OUT_GENRES], strict=True)}
    counts = dict(zip(ids, (int(c) for c in catalogue[f.OUT_RATING_COUNTS]), strict=True))
    snapshot_users = int(catalogue[f.OUT_USER_COUNT])
    names = sorted(users)
    relevant = {user: users[user]["relevant"] for user in names}
    sweep = []
    for diversity in DIVERSITY_SWEEP:
        ranked = recommend_all(model, names, k, diversity)
        sweep.append({"diversity": diversity, **metrics.accuracy(ranked, relevant, k),
                      **metrics.beyond_accuracy(ranked, genres, counts, snapshot_users)})  # fmt: skip
        if diversity == 0.0:
            plain = ranked
    groups = defaultdict(list)
    for user in names:
        if users[user]["gender"] is not None:
            groups[f"gender={users[user]['gender']}"].append(user)
        if users[user]["age"] is not None:
            groups[f"age={age_band(users[user]['age'])}"].append(user)
        if train_users is not None:
            seen, unseen = f.USER_SEEN_VALUES
            groups[f"{f.USER_SEEN_IN_TRAIN}={seen if user in train_users else unseen}"].append(user)
    slices = {
        name: {
            **metrics.accuracy({u: plain[u] for u in members}, {u: relevant[u] for u in members}, k),
            **metrics.beyond_accuracy({u: plain[u] for u in members}, genres, counts, snapshot_users),
        }
        for name, members in sorted(groups.items())
    }
    return {"k": k, "overall": sweep[0], "diversity_sweep": sweep, "slices": slices, "catalogue": len(ids)}


def blessing_decision(
    ndcg: float,
    rating_blessed: bool,
    lower_bound: float,
    baseline_ndcg: float | None,
    max_decrease: float,
    rating_comparison: dict | None = None,
) -> tuple[bool, list[str]]:
    """(blessed, reasons it is not)."""
    reasons = []
    if not rating_blessed:
        reasons.append("the Evaluator did not bless the model (test RMSE above the bound)")
    if rating_comparison is not None and not rating_comparison["noninferior"]:
        reasons.append(rating_comparison["reason"])
    if not ndcg >= lower_bound:
        reasons.append(f"NDCG@K {ndcg:.4f} is below the bound {lower_bound:.4f}")
    if baseline_ndcg is not None and not ndcg >= baseline_ndcg - max_decrease:
        reasons.append(
            f"NDCG@K {ndcg:.4f} fell more than {max_decrease:g} below the last blessed model's {baseline_ndcg:.4f}"
        )
    return not reasons, reasons


# The comparison's figures recorded in MLMD: custom property of the evaluation artifact ← paired.compare's key.
COMPARISON_PROPERTIES = {
    "test_rmse": "rmse",
    "test_rmse_low": "rmse_low",
    "test_rmse_high": "rmse_high",
    "baseline_test_rmse": "baseline_rmse",
    "rmse_difference": "difference",
    "rmse_difference_low": "difference_low",
    "rmse_difference_high": "difference_high",
    "rmse_margin": "margin",
    "confidence": "confidence",
}


def _serving_dir(model_artifact) -> str:
    return os.path.join(model_artifact.uri, "Format-Serving")


def _load(model_artifact) -> tf.Module:
    return tf.saved_model.load(_serving_dir(model_artifact))


@tfx.dsl.components.component
def RankingEvaluator(
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    rating_blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    # A standard type: the Kubeflow v2 executor can only rebuild custom types from a one-dot module path.
    evaluation: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelEvaluation],
    blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    baseline_model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model] = None,  # noqa: RUF013
    transform_graph: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.TransformGraph] = None,  # noqa: RUF013
    test_split: tfx.dsl.components.Parameter[str] = "test",
    k: tfx.dsl.components.Parameter[int] = 10,
    ndcg_lower_bound: tfx.dsl.components.Parameter[float] = 0.0,
    ndcg_max_decrease: tfx.dsl.components.Parameter[float] = 0.02,
    rmse_margin: tfx.dsl.components.Parameter[float] = 0.005,
    bootstrap_draws: tfx.dsl.components.Parameter[int] = paired.DRAWS,
    training_identity: tfx.dsl.components.Parameter[str] = "",
    code_fingerprint: tfx.dsl.components.Parameter[str] = "",
) -> None:
    """Called by the TFX launcher: writes RESULT_FILE and the blessing (see the module docstring)."""
    del code_fingerprint  # only keys the cache
    users = read_test_users(examples.uri, test_split)
    candidate = _load(model)
    train_users = None
    if transform_graph is not None:
        vocabulary = tft.TFTransformOutput(transform_graph.uri).vocabulary_by_name(f.VOCAB_FEATURES[f.USER_ID_XF])
        train_users = {user.decode() for user in vocabulary}
    result = evaluate(candidate, users, k, train_users)
    baseline_ndcg, baseline, ignored = None, None, None
    if baseline_model is not None and training_identity:
        # The resolver returns the latest blessed model of the pipeline, whatever it trained on.
        served = identity.read(_serving_dir(baseline_model))
        ignored = identity.baseline_mismatch(json.loads(training_identity), served)
        if ignored:
            logging.warning("RankingEvaluator: no baseline: %s (a first run for this data and split)", ignored)
            baseline_model = None
    if baseline_model is not None:
        baseline = _load(baseline_model)
        if f.RECOMMEND_SIGNATURE in baseline.signatures and f.CATALOGUE_SIGNATURE in baseline.signatures:
            ranked = recommend_all(baseline, sorted(users), k)
            relevant = {user: entry["relevant"] for user, entry in users.items()}
            baseline_ndcg = metrics.accuracy(ranked, relevant, k)["ndcg"]
        else:
            logging.warning(
                "RankingEvaluator: the baseline model has no %s signature; no comparison", f.RECOMMEND_SIGNATURE
            )
    comparison = paired.compare(examples.uri, test_split, candidate, baseline, rmse_margin, bootstrap_draws)
    rating_blessed = rating_blessing.get_int_custom_property("blessed") == 1
    blessed, reasons = blessing_decision(
        result["overall"]["ndcg"], rating_blessed, ndcg_lower_bound, baseline_ndcg, ndcg_max_decrease, comparison
    )
    result |= {"baseline_ndcg": baseline_ndcg, "baseline_ignored_because": ignored, "blessed": blessed,
               "not_blessed_because": reasons}  # fmt: skip
    tf.io.gfile.makedirs(evaluation.uri)
    for name, content in ((RESULT_FILE, result), (COMPARISON_FILE, comparison)):
        with tf.io.gfile.GFile(os.path.join(evaluation.uri, name), "w") as out:
            json.dump(content, out, indent=1)
    for name in (*metrics.ACCURACY, "coverage", "novelty", "intra_list_diversity"):
        evaluation.set_float_custom_property(name, float(result["overall"][name]))
    for name, key in COMPARISON_PROPERTIES.items():
        if key in comparison:
            evaluation.set_float_custom_property(name, float(comparison[key]))
    evaluation.set_int_custom_property("rmse_noninferior", int(comparison["noninferior"]))
    evaluation.set_int_custom_property("k", k)
    tf.io.gfile.makedirs(blessing.uri)
    with tf.io.gfile.GFile(os.path.join(blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"), "w") as out:
        out.write("\n".join(reasons))
    # The custom properties TFX's LatestBlessedModelStrategy and Pusher read from an Evaluator blessing.
    blessing.set_int_custom_property("blessed", int(blessed))
    blessing.set_int_custom_property("current_model_id", model.id)
    blessing.set_string_custom_property("current_model", model.uri)
    if ignored:
        blessing.set_string_custom_property("baseline_ignored_because", ignored)
    if baseline_model is not None:
        blessing.set_int_custom_property("baseline_model_id", baseline_model.id)
        blessing.set_string_custom_property("baseline_model", baseline_model.uri)
