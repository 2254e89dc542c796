"""Shared fixtures. TF_USE_LEGACY_KERAS must be set before anything imports TensorFlow."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MIRROR = REPO.parent / "shared" / "data" / "ml-100k.zip"


from e2e_run import first_run, workspace  # noqa: E402, F401  (session fixtures: the shared DAG run)

REAL_DATA_FIXTURES = {"mirror", "ml100k_dir"}


# The longest modules (seconds on 2 cores, CI 2026-11-29), started first: `make test` spreads whole files
# over 2 pytest-xdist workers (--dist loadfile), and a long file started last would leave one worker idle.
LONGEST_FIRST = (
    "flink_e2e_test",  # 430 s alone here (2026-12-05): 2 Flink DAG runs, one partial, + the shared first run
    "real_data_e2e_test", "kubeflow_contract_test", "cache_e2e_test", "inspection_e2e_test",  # 300, 240, 350, 250
    "faults_e2e_test", "release_e2e_test", "pipeline_e2e_test", "app_e2e_test",  # 200, 145, 230, 200
)  # fmt: skip


def pytest_collection_modifyitems(items) -> None:
    """Marks every test that needs the real MovieLens-100k `real_data` (deselect: -m "not real_data"),
    and puts the longest modules first (a stable sort: tests keep their order within a module)."""
    for item in items:
        if REAL_DATA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.real_data)

    def rank(item) -> int:
        module = item.path.stem
        return LONGEST_FIRST.index(module) if module in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The MovieLens-100k mirror: $MOVIELENS_MIRROR, else ../shared/data/ml-100k.zip.

    Only the tests marked `real_data` use it. Without a mirror they fail, loudly: a skipped test
    is a silent promise broken. Run without them explicitly with `-m "not real_data"`.
    """
    named = os.environ.get("MOVIELENS_MIRROR")
    path = Path(named) if named else DEFAULT_MIRROR
    if not path.is_absolute():
        path = (REPO / path).resolve()
    if not path.exists():
        pytest.fail(
            f"no MovieLens-100k mirror at {path}{f' (MOVIELENS_MIRROR={named})' if named else ''}: set "
            "MOVIELENS_MIRROR to a verified ml-100k.zip, or deselect the real-data tests with -m 'not real_data'"
        )
    return path


@pytest.fixture(scope="session")
def ml100k_dir(mirror: Path, tmp_path_factory) -> Path:
    """A verified, extracted MovieLens-100k directory (fetched once per session)."""
    from components.example_gen import dataset

    return dataset.fetch(tmp_path_factory.mktemp("movielens"), mirror=mirror)


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    """A small synthetic MovieLens-shaped directory (3,000 ratings)."""
    from components.example_gen.tiny_ml100k import write_synthetic_movielens

    return write_synthetic_movielens(tmp_path_factory.mktemp("synthetic"))
