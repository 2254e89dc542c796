"""The whole DAG on MovieLens-100k from the mirror, with short training (a sanity bound, not the benchmark)."""

import pytest

from pipeline.config import PipelineConfig, TrainerConfig, direct_runner_args
from pipeline.local_runner import run_local

pytestmark = pytest.mark.e2e


def test_ml100k_split_counts_and_rmse_below_the_bound(ml100k_dir, tmp_path):
    config = PipelineConfig(
        pipeline_root=str(tmp_path / "pipeline"),
        data_dir=str(ml100k_dir),
        serving_dir=str(tmp_path / "serving"),
        trainer=TrainerConfig(epochs=2, tuner_trials=0, retrieval_epochs=1),
        beam_pipeline_args=direct_runner_args(),
    )
    lines = []
    summary = run_local(config, echo=lines.append)
    print("\n".join(lines + summary.lines()))
    assert summary.split_rows == {"train": 65_336, "eval": 15_778, "test": 18_886}
    # Below user+movie biases (1.031, benchmarks/baselines.py) even with 2 epochs: the history features work.
    assert summary.test_rmse < 1.0
    assert summary.blessed is True and summary.pushed_path is not None
