"""Code fingerprints: the hash follows the code (what it makes the cache do: tests/cache_e2e_test.py)."""

import dataclasses
import sys

from pipeline import pipeline as dag
from pipeline.config import PipelineConfig, TrainerConfig
from pipeline.fingerprint import code_fingerprint


def test_fingerprint_changes_with_the_code(tmp_path, monkeypatch):
    package = tmp_path / "fp_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text("def f():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = code_fingerprint("fp_pkg")
    assert code_fingerprint("fp_pkg") == before
    (package / "mod.py").write_text("def f():\n    return 2\n")
    assert code_fingerprint("fp_pkg") != before
    sys.modules.pop("fp_pkg", None)


def test_the_tuner_is_wired_only_when_it_has_trials(tmp_path):
    """(Whether a code edit re-runs its component is tested by behaviour in tests/cache_e2e_test.py.)"""
    config = PipelineConfig(pipeline_root=str(tmp_path), data_dir=str(tmp_path), serving_dir=str(tmp_path))
    assert dag.TUNER in {node.id for node in dag.create_pipeline(config).components}  # tuner_trials defaults to 2
    no_tuner = dataclasses.replace(config, trainer=TrainerConfig(tuner_trials=0))
    assert dag.TUNER not in {node.id for node in dag.create_pipeline(no_tuner).components}
