"""MovieLens may not be redistributed: no MovieLens file may ever be tracked by git."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

MOVIELENS_FILE = re.compile(
    r"(^|/)(u\.(data|item|user|genre|occupation|info)|u[1-5a-b]\.(base|test)|ml-[0-9a-z-]+\.zip)$"
)


def test_no_movielens_file_is_tracked():
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    offending = [path for path in tracked.splitlines() if MOVIELENS_FILE.search(path)]
    assert offending == []
