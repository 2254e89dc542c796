"""Feature definitions and the Transform preprocessing_fn."""

import os

# TensorFlow Recommenders needs Keras 2 (tf-keras); this must precede any TensorFlow import,
# also in Beam workers that import this package first.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
