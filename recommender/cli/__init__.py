"""The `recommender` command: fetch MovieLens, run the pipeline locally, inspect runs, compile and submit it
to Kubeflow. One module per command (or pair of commands); `common` holds what they share.

recommender data fetch --mirror ../shared/data/ml-100k.zip
recommender run --mirror ../shared/data/ml-100k.zip --epochs 5 --tuner-trials 2
recommender recommend --user-id 196 -k 10 [--rated 50:5 ...] [--diversity 0.3] [--json]
recommender inspect / recommender report --output report.html
recommender compile --image REGISTRY/recommender:TAG --pipeline-root gs://b/root --data-root gs://b/data ...
recommender submit --host https://KFP_HOST movielens-recommender.yaml
"""

from recommender.cli import app, cluster, data, recommend, run, views  # noqa: F401  (each registers its commands on `main`)
from recommender.cli.common import main

__all__ = ["main"]
