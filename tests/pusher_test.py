"""The atomic push: TF Serving never sees a half-written version, and a failed push changes nothing."""

import hashlib
import os
from pathlib import Path

import pytest
import tensorflow as tf

from components.pusher.executor import STAGING_PREFIX, PushError, push_atomically


def snapshot(directory: Path) -> dict[str, str]:
    """Every file and directory under `directory` with the SHA-256 of its content."""
    result = {}
    for path in sorted(directory.rglob("*")):
        relative = str(path.relative_to(directory))
        result[relative] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "<dir>"
    return result


def numeric_versions(base: Path) -> list[str]:
    """What TF Serving's file-system source would load: numeric child directories."""
    return sorted(name for name in os.listdir(base) if name.isdigit()) if base.exists() else []


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> Path:
    """A real (small) SavedModel: a tf.Module with variables and a serving signature."""

    class Scale(tf.Module):
        def __init__(self):
            self.weight = tf.Variable(tf.random.normal([64, 64]))

        @tf.function(input_signature=[tf.TensorSpec([None, 64], tf.float32)])
        def __call__(self, x):
            return {"y": tf.matmul(x, self.weight)}

    path = tmp_path_factory.mktemp("model") / "saved"
    module = Scale()
    tf.saved_model.save(module, str(path), signatures=module.__call__)
    return path


def test_version_appears_only_when_complete(saved_model, tmp_path):
    base = tmp_path / "serving" / "ranker"
    seen_during_push = []

    def inspect(relative):  # runs after each staged file: what would TF Serving see now?
        seen_during_push.append((relative, numeric_versions(base), sorted(os.listdir(base))))

    path, version = push_atomically(str(saved_model), str(base), 1_700_000_000, on_file=inspect)
    assert len(seen_during_push) == sum(1 for p in saved_model.rglob("*") if p.is_file()) >= 3
    assert all(versions == [] for _, versions, _ in seen_during_push)  # no version visible mid-push
    assert all(len(entries) == 1 and entries[0].startswith(STAGING_PREFIX) for _, _, entries in seen_during_push)
    assert seen_during_push[-1][0] == "saved_model.pb"  # copied last
    assert (path, version) == (str(base / "1700000000"), "1700000000")
    assert os.listdir(base) == ["1700000000"]
    assert snapshot(base / version) == snapshot(saved_model)
    loaded = tf.saved_model.load(path)
    assert loaded.signatures["serving_default"](tf.ones([2, 64]))["y"].shape == (2, 64)


def test_interrupted_push_leaves_the_serving_directory_exactly_as_it_was(saved_model, tmp_path):
    base = tmp_path / "serving" / "ranker"
    push_atomically(str(saved_model), str(base), 1_700_000_000)
    before = snapshot(base.parent)
    staged = []

    def interrupt(relative):
        staged.append(relative)
        if len(staged) == 2:
            raise KeyboardInterrupt  # Ctrl-C (or any failure) in the middle of the copy

    with pytest.raises(KeyboardInterrupt):
        push_atomically(str(saved_model), str(base), 1_700_000_100, on_file=interrupt)
    assert snapshot(base.parent) == before
    assert numeric_versions(base) == ["1700000000"]


def test_existing_version_is_never_overwritten_and_incomplete_models_are_refused(saved_model, tmp_path):
    base = tmp_path / "ranker"
    push_atomically(str(saved_model), str(base), 5)
    _, version = push_atomically(str(saved_model), str(base), 5)  # same second: next version number
    assert version == "6" and numeric_versions(base) == ["5", "6"]

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "variables").mkdir()
    before = snapshot(base)
    with pytest.raises(PushError, match="no saved_model.pb"):
        push_atomically(str(broken), str(base), 7)
    assert snapshot(base) == before
