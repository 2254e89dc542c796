"""The house has two sides: the DAG (pipeline/, components/, transform/, schemas/, kubeflow/) and what uses the
model it pushes (recommender/). The user side imports the DAG side; the DAG side never imports the user side, so
the DAG's image, its Beam workers and its Kubeflow steps never load the CLI, the app or their dependencies."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAG_SIDE = ("pipeline", "components", "transform", "schemas", "kubeflow")
USER_SIDE = "recommender"


def imported_modules(source: str) -> set[str]:
    """Every module an import statement names, at any depth (function-level imports included)."""
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def _is_user_side(module: str) -> bool:
    return module == USER_SIDE or module.startswith(f"{USER_SIDE}.")


def test_the_dag_side_never_imports_the_user_side():
    offenders = {}
    files = [path for package in DAG_SIDE for path in sorted((ROOT / package).rglob("*.py"))]
    assert len(files) > 40  # the walk sees the DAG side, not an empty directory
    for path in files:
        found = sorted(m for m in imported_modules(path.read_text()) if _is_user_side(m))
        if found:
            offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}


def test_the_user_side_lives_in_its_own_package():
    for module in ("cli", "app", "monitoring", "inspection", "report", "recommendations", "explanations", "summary"):
        assert not (ROOT / "pipeline" / module).exists() and not (ROOT / "pipeline" / f"{module}.py").exists()
        assert (ROOT / USER_SIDE / module).exists() or (ROOT / USER_SIDE / f"{module}.py").exists()


def test_the_import_walk_finds_imports_inside_functions():
    source = "import os\n\ndef f():\n    from recommender import inspection\n    import recommender.cli\n"
    found = imported_modules(source)
    assert {"os", "recommender", "recommender.inspection", "recommender.cli"} <= found
    user_side = [m for m in sorted(found) if _is_user_side(m)]
    assert user_side == ["recommender", "recommender.cli", "recommender.inspection"]
    assert not _is_user_side("recommenders.other") and not _is_user_side("tensorflow_recommenders")
