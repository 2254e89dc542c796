"""Shared fixtures. TF_USE_LEGACY_KERAS must be set before anything imports TensorFlow."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MIRROR = REPO.parent / "shared" / "data" / "ml-100k.zip"


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The MovieLens-100k mirror: $MOVIELENS_MIRROR, else ../shared/data/ml-100k.zip.

    A mirror named in the environment must exist; without one, tests that need
    the real data are skipped (they cannot run offline without it).
    """
    named = os.environ.get("MOVIELENS_MIRROR")
    path = Path(named) if named else DEFAULT_MIRROR
    if not path.is_absolute():
        path = (REPO / path).resolve()
    if not path.exists():
        if named:
            pytest.fail(f"MOVIELENS_MIRROR={named} does not exist")
        pytest.skip(f"no MovieLens mirror at {path} (set MOVIELENS_MIRROR)")
    return path


@pytest.fixture(scope="session")
def ml100k_dir(mirror: Path, tmp_path_factory) -> Path:
    """A verified, extracted MovieLens-100k directory (fetched once per session)."""
    from components.example_gen import dataset

    return dataset.fetch(tmp_path_factory.mktemp("movielens"), mirror=mirror)


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    """A small synthetic MovieLens-shaped directory (3,000 ratings)."""
    from components.example_gen.synthetic import write_synthetic_movielens

    return write_synthetic_movielens(tmp_path_factory.mktemp("synthetic"))
