"""Project components: MovieLens ExampleGen, validation gate, trainer, tuner, evaluator config."""

import os

# TensorFlow Recommenders needs Keras 2 (tf-keras); this must precede any TensorFlow import,
# also in Beam workers that import this package first.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
