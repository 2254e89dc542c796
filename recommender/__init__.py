"""What uses the model the DAG pushes: the `recommender` CLI, the Streamlit app, the recommend client,
monitoring, explanations, and the views of ML Metadata behind `inspect` and `report`.

The DAG side (`pipeline/`, `components/`, `transform/`, `schemas/`, `kubeflow/`) never imports this package.
"""

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before anything imports TensorFlow)
