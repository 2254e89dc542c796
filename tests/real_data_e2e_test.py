"""`recommender run` with every default on MovieLens-100k from the mirror: what `make run` gives a new user, and
what the README's headline says it gives (the figures between the README's default-headline markers)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[1] / "README.md"
# Seeded, but multithreaded CPU training is not bit-reproducible: what two runs of the same code differ by.
RMSE_NOISE, NDCG_NOISE = 0.003, 0.006


def _headline() -> dict[str, float]:
    text = re.search(r"<!-- default-headline -->(.*?)<!-- /default-headline -->", README.read_text(), re.S).group(1)
    return {
        "rmse": float(re.search(r"test RMSE \*\*([\d.]+)\*\*", text).group(1)),
        "ndcg": float(re.search(r"NDCG@10 \*\*([\d.]+)\*\*", text).group(1)),
    }


def test_the_default_run_scores_the_readmes_headline(ml100k_dir, tmp_path):
    command = [sys.executable, "-m", "recommender.cli", "run", "--input-dir", str(ml100k_dir),
               "--pipeline-root", str(tmp_path / "pipeline"), "--serving-dir", str(tmp_path / "serving")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=1500)
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "rows per split : train 65,336, eval 15,778, test 18,886" in out
    assert "blessed        : yes" in out and "pushed model   : " in out
    rmse = float(re.search(r"test RMSE      : ([\d.]+)", out).group(1))
    ndcg = float(re.search(r"test top-10    : ndcg ([\d.]+)", out).group(1))
    headline = _headline()
    assert rmse == pytest.approx(headline["rmse"], abs=RMSE_NOISE)
    assert ndcg == pytest.approx(headline["ndcg"], abs=NDCG_NOISE)
    # The README's sample output (the same run) says the same.
    sample = float(re.search(r"test RMSE      : ([\d.]+)", README.read_text()).group(1))
    assert sample == headline["rmse"]
