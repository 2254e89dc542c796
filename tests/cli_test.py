"""The `recommender` command: data fetch and clear errors (no tracebacks)."""

import subprocess
import sys

from click.testing import CliRunner

from components.example_gen import dataset
from pipeline.cli import main


def test_data_fetch_from_mirror(mirror, tmp_path):
    result = CliRunner().invoke(main, ["data", "fetch", "--mirror", str(mirror), "--data-root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "verified 23 files" in result.output
    assert result.output.strip().endswith(str(tmp_path / "ml-100k"))
    dataset.verify_directory(tmp_path / "ml-100k")


def test_data_fetch_reads_the_mirror_from_the_environment(mirror, tmp_path):
    result = CliRunner().invoke(
        main, ["data", "fetch", "--data-root", str(tmp_path)], env={"MOVIELENS_MIRROR": str(mirror)}
    )
    assert result.exit_code == 0, result.output


def test_bad_mirror_is_a_clear_error_without_traceback(tmp_path):
    bad = tmp_path / "ml-100k.zip"
    bad.write_bytes(b"garbage")
    command = [
        sys.executable,
        "-m",
        "pipeline.cli",
        "data",
        "fetch",
        "--mirror",
        str(bad),
        "--data-root",
        str(tmp_path),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "Error: " in result.stderr and "not a readable zip file" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_rejects_bad_split_free_options(tmp_path):
    result = CliRunner().invoke(main, ["run", "--input-dir", str(tmp_path), "--epochs", "0"])
    assert result.exit_code == 2 and "--epochs" in result.output
