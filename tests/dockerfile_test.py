"""kubeflow/Dockerfile, checked without a Docker engine: what it copies is enough to install the package.

The build context is reproduced from the Dockerfile's COPY lines (minus .dockerignore), and the package
is built into a wheel from exactly that: every package of setup.py and the curated schema must be in it.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kubeflow.runner import IMAGE_SCHEMA_FILE, IMAGE_SOURCE_DIR, IMAGE_WHEEL_DIR, image_wheel

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "kubeflow" / "Dockerfile"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.egg-info")
PACKAGES = ("pipeline", "recommender", "components", "transform", "schemas", "kubeflow")  # the console script too


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _copies() -> list[tuple[list[str], str]]:
    return [
        (args.split()[:-1], args.split()[-1])
        for instruction, args in _instructions()
        if instruction == "COPY" and not args.startswith("--from")
    ]


def _ignored(path: str) -> bool:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    patterns = [p.strip() for p in lines if p.strip() and not p.startswith("#")]
    return any(fnmatch.fnmatch(path, p) or path.startswith(f"{p}/") for p in patterns)


def test_image_env_user_and_workdir():
    instructions = _instructions()
    assert ("ENV", "TF_USE_LEGACY_KERAS=1") in instructions
    user = [args for instruction, args in instructions if instruction == "USER"]
    assert user and user[-1] not in ("0", "root")
    assert ("WORKDIR", IMAGE_SOURCE_DIR) in instructions
    base = [args for instruction, args in instructions if instruction == "ARG" and args.startswith("PYTHON_IMAGE=")]
    assert base == ["PYTHON_IMAGE=python:3.10-slim-bookworm"]


def test_everything_copied_exists_and_is_not_dockerignored():
    for sources, _ in _copies():
        for source in sources:
            assert (REPO / source).exists(), source
            assert not _ignored(source.rstrip("/")), source


@pytest.mark.slow
def test_the_copied_files_build_a_wheel_with_every_package_and_the_schema(tmp_path):
    context = tmp_path / "image"  # The image's WORKDIR after the COPY lines, with Docker's semantics.
    for sources, destination in _copies():
        for source in sources:
            origin = REPO / source
            if origin.is_dir():  # A directory's contents go into the destination directory.
                shutil.copytree(origin, context / destination, dirs_exist_ok=True, ignore=_IGNORE)
            else:
                into_dir = destination.endswith("/") or len(sources) > 1
                target = context / destination / origin.name if into_dir else context / destination
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)
    schema = context / Path(IMAGE_SCHEMA_FILE).relative_to(IMAGE_SOURCE_DIR)
    assert schema.read_text() == (REPO / "schemas" / "schema.pbtxt").read_text()
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "wheel"), "."],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for package in PACKAGES:
        assert f"{package}/__init__.py" in names, package
    assert "schemas/schema.pbtxt" in names
    assert "components/example_gen/executor.py" in names and "components/trainer/task.py" in names
    assert "kubeflow/runner.py" in names
    # What `compile --beam-runner flink` names as the Beam steps' package: the image builds this very wheel there.
    assert Path(image_wheel()) == Path(IMAGE_WHEEL_DIR) / wheel.name
    (run,) = [args for instruction, args in _instructions() if instruction == "RUN" and " wheel " in args]
    assert "pip wheel --no-deps --no-build-isolation -w dist ." in run
    workdir = [args for instruction, args in _instructions() if instruction == "WORKDIR"][-1]
    assert str(Path(workdir) / "dist") == IMAGE_WHEEL_DIR
