"""Package for the MovieLens TFX recommender. Install with the pinned constraints:

pip install -c constraints.txt -e .
"""

from setuptools import find_packages, setup

setup(
    name="movielens-recommender",
    version="0.1.0",
    description="Production TFX pipeline for a MovieLens rating model (TFRS), local and Kubeflow",
    python_requires=">=3.9,<3.11",
    packages=find_packages(
        include=[
            "pipeline",
            "pipeline.*",
            "recommender",
            "recommender.*",
            "components",
            "components.*",
            "transform",
            "transform.*",
            "schemas",
            "kubeflow",
            "kubeflow.*",
        ]
    ),
    package_data={"schemas": ["*.pbtxt"], "pipeline.flink": ["*.sha256"]},
    install_requires=[
        "tfx[kfp]==1.16.0",
        "tensorflow==2.16.2",
        "tf-keras==2.16.0",
        "tensorflow-recommenders==0.7.3",
        "tensorflow-transform==1.16.0",
        "tensorflow-data-validation==1.16.1",
        "tensorflow-model-analysis==0.47.1",
        "apache-beam[gcp]==2.59.0",
        "kfp==2.5.0",
        "keras-tuner==1.3.5",
        "click>=8",
        "matplotlib>=3.8",  # report plots
        "streamlit==1.60.0",  # recommender app
        "shap==0.49.1",  # recommender explain
        "prometheus-client==0.26.0",  # /metrics of the app and the recommend path
        # Beam's stager builds the --setup_file sdist for Flink runs with it (else: "No module named build").
        "build==1.2.2.post1",
    ],
    # websocket-client: the headless-browser report test; hypothesis: parser property tests
    extras_require={
        "dev": ["pytest", "pytest-xdist", "ruff", "websocket-client", "hypothesis"],
        "scann": ["scann==1.3.2"],  # benchmarks/scann_benchmark.py only: its ops are not in stock TF Serving
    },
    entry_points={"console_scripts": ["recommender=recommender.cli:main"]},
)
