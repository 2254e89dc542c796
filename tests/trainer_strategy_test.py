"""The Trainer's multi-GPU path, on CPUs: the model trains under a 2-replica MirroredStrategy.

No GPU here, so two logical CPU devices stand in for two GPUs (a subprocess: logical devices must be set
before TensorFlow initializes). `run_fn` builds the model inside `distribution_strategy().scope()`,
which is a MirroredStrategy whenever GPUs are visible; this runs that code path with two replicas.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, sys.argv[1])
from model_test import HP, VOCAB, batch
from components.trainer.model import build_model

tf.keras.utils.set_random_seed(0)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = build_model(HP, VOCAB)
features, labels = batch(256)
data = tf.data.Dataset.from_tensor_slices((features, labels)).batch(64)
history = model.fit(data, epochs=5, verbose=0)
predictions = model(features).numpy()
print(json.dumps({
    "replicas": strategy.num_replicas_in_sync,
    "loss": history.history["loss"],
    "finite": bool(tf.reduce_all(tf.math.is_finite(predictions))),
}))
"""


@pytest.mark.slow
def test_model_trains_under_a_two_replica_mirrored_strategy():
    tests = Path(__file__).resolve().parent
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tests)], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["finite"]
    assert report["loss"][-1] < report["loss"][0]
