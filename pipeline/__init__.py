"""The DAG: its configuration, `create_pipeline` (wiring), the local runner, the Flink job server, ML Metadata access.

What uses the model it pushes (the CLI, the app, monitoring, inspection) is in `recommender/`.
"""

import os
import warnings

# TensorFlow Recommenders needs Keras 2 (tf-keras); this must precede any TensorFlow import.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# google-api-core warns on every import that Python 3.10 is old; TFX 1.16 needs 3.9-3.10.
os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning")
warnings.filterwarnings("ignore", category=FutureWarning)
