"""Training traces the models without AutoGraph converting tf_keras or TFRS (~20 s a process when it did).

TensorFlow's AutoGraph skips the `keras` package but not `tf_keras`, which this stack uses: a model whose
train_step it converts has every Keras layer method it calls rewritten from source once per process.
A fresh interpreter (AutoGraph caches what it converted per process) fits and evaluates the ranking model and
the retrieval model one step each, then lists the source files of every function AutoGraph converted.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

KERAS_CONVERTS_ITSELF = tuple(
    os.path.join("tf_keras", "src", *name.split("/"))
    for name in ("engine/training.py", "backend.py", "metrics/base_metric.py", "metrics/regression_metrics.py")
)
SCRIPT = """
import json
import numpy as np
import tensorflow as tf
from tensorflow.python.autograph.impl import api

from model_test import HP, VOCAB, batch
from components.trainer.model import build_model
from components.trainer.retrieval import RetrievalHyperparameters, build_retrieval
from transform import features as f

features, labels = batch()
rng = np.random.default_rng(0)
features[f.MOVIE_TITLE_TOKENS_XF] = tf.constant(rng.integers(-1, 50, (64, f.MAX_TITLE_TOKENS)))
features[f.PROFILE_MOVIES] = features[f.USER_PRIOR_MOVIES_XF]
features[f.PROFILE_DEVIATIONS] = features[f.USER_PRIOR_DEVIATIONS_XF]
ranker = build_model(HP, VOCAB)
data = tf.data.Dataset.from_tensors((features, labels))
ranker.fit(data, validation_data=data, verbose=0)
retrieval = build_retrieval(RetrievalHyperparameters(dim=4), VOCAB, np.full(11, 1 / 11))
retrieval.fit(tf.data.Dataset.from_tensors(features), verbose=0)
retrieval.evaluate(tf.data.Dataset.from_tensors(features), verbose=0)
from plain_control_flow import clip_positive  # the positive control: AutoGraph must convert this one
tf.function(clip_positive)(tf.constant(-1.0))
print(json.dumps(sorted({code.co_filename for code in api._TRANSPILER._cache._cache})))
"""
# A plain function with Python control flow on a tensor: AutoGraph converts it, so it must show up in the cache
# the test inspects (else the cache is no longer where TensorFlow records conversions, and the test proves nothing).
CONTROL = """
def clip_positive(x):
    if x > 0:
        return x
    return x * 0
"""


def test_fitting_both_models_converts_none_of_the_keras_layers_or_tfrs(tmp_path):
    tests = Path(__file__).parent
    (tmp_path / "plain_control_flow.py").write_text(CONTROL)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests), str(tests.parent), str(tmp_path)])}
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    converted = json.loads(done.stdout.strip().splitlines()[-1])
    assert str(tmp_path / "plain_control_flow.py") in converted  # The positive control was seen.
    library = [path for path in converted if f"{os.sep}tf_keras{os.sep}" in path or "tensorflow_recommenders" in path]
    # Keras converts its fit loop and its metrics' update_state itself; before the fix the list held 34 files:
    # every layer, the optimizer, the losses and TFRS's tasks.
    assert [path for path in library if not path.endswith(KERAS_CONVERTS_ITSELF)] == []
