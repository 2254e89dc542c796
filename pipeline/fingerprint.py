"""Fingerprints of the project's own code, so that TFX's cache notices code changes.

Module functions referenced by dotted path (`transform.preprocessing.preprocessing_fn`)
are not fingerprinted by TFX, so a changed `preprocessing_fn` would silently reuse a
cached Transform. Each component gets the hash of the packages it runs in its config.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path


def _package_files(module: str) -> list[Path]:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ImportError(f"cannot locate module {module}")
    origin = Path(spec.origin)
    if origin.name == "__init__.py":
        return sorted(path for path in origin.parent.rglob("*.py") if "__pycache__" not in path.parts)
    return [origin]


def code_fingerprint(*modules: str) -> str:
    """SHA-256 over the source of the given modules/packages (recursively), order-independent of cwd."""
    digest = hashlib.sha256()
    for module in sorted(modules):
        spec = importlib.util.find_spec(module)
        base = Path(spec.origin).parent if spec and spec.origin else Path()
        for path in _package_files(module):
            digest.update(f"{module}:{path.relative_to(base).as_posix()}\n".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
