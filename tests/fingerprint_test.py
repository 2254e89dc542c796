"""Code fingerprints: editing a module's code changes the config of the components that run it."""

import dataclasses
import json
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


def test_components_running_project_code_carry_its_fingerprint(tmp_path):
    config = PipelineConfig(pipeline_root=str(tmp_path), data_dir=str(tmp_path), serving_dir=str(tmp_path))
    nodes = {node.id: node for node in dag.create_pipeline(config).components}
    transform_config = json.loads(nodes[dag.TRANSFORM].exec_properties["custom_config"])
    assert transform_config["code_fingerprint"] == code_fingerprint("transform")
    trainer_config = json.loads(nodes[dag.TRAINER].exec_properties["custom_config"])
    assert trainer_config["code_fingerprint"] == code_fingerprint(
        "components.trainer", "components.tuner", "transform", "pipeline.config"
    )
    assert nodes[dag.VALIDATION_GATE].exec_properties["code_fingerprint"] == code_fingerprint("components.gates")
    assert dag.TUNER in nodes  # tuner_trials defaults to 2
    no_tuner = dataclasses.replace(config, trainer=TrainerConfig(tuner_trials=0))
    assert dag.TUNER not in {node.id for node in dag.create_pipeline(no_tuner).components}
