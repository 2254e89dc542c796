"""The `recommender` command: data fetch and clear errors (no tracebacks)."""

import os
import subprocess
import sys

from click.testing import CliRunner

from components.example_gen import dataset
from recommender.cli import main


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
        "recommender.cli",
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


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`recommender ARGS` in a fresh process, as a user runs it (no MOVIELENS_MIRROR unless given)."""
    environment = {k: v for k, v in os.environ.items() if k != "MOVIELENS_MIRROR"} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "recommender.cli", *args], capture_output=True, text=True, timeout=300, env=environment
    )


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The single `Error:` line a failed command prints (and nothing like a traceback)."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith("Error: "), result.stderr
    return line


def test_run_on_a_directory_in_no_known_layout_names_what_each_layout_needs(tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "u.data").write_text("1\t2\t3\t881250949\n")
    root = tmp_path / "pipeline"
    line = one_error_line(cli("run", "--input-dir", str(partial), "--pipeline-root", str(root)))
    assert f"{partial} holds no MovieLens layout I know" in line
    for needs in ("ml-100k (ml-100k): u.user, u.item, u.data", "ml-1m (ml-1m): users.dat", "ml-25m"):
        assert needs in line
    assert not root.exists()  # nothing started


def test_folds_on_a_release_without_them_is_one_error_line(tmp_path):
    data = tmp_path / "ml-20m"
    data.mkdir()
    (data / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    (data / "movies.csv").write_text("movieId,title,genres\n")
    line = one_error_line(cli("run", "--input-dir", str(data), "--split", "u2", "--pipeline-root", str(tmp_path / "r")))
    assert "--split u2 uses the u2.test fold shipped with ml-100k only; the csv layout has no folds" in line


def test_run_with_a_fold_split_needs_the_fold_file(synthetic_dir, tmp_path):
    args = ("run", "--input-dir", str(synthetic_dir), "--split", "u3", "--pipeline-root", str(tmp_path))
    line = one_error_line(cli(*args))
    assert "lacks u3.test (needed by --split u3" in line
    assert not (tmp_path / "metadata.sqlite").exists()


def test_input_dir_and_mirror_together_are_a_conflict(synthetic_dir, tmp_path):
    zip_path = tmp_path / "ml-100k.zip"
    zip_path.write_bytes(b"unused")
    line = one_error_line(cli("run", "--input-dir", str(synthetic_dir), "--mirror", str(zip_path)))
    assert "--input-dir names the data already" in line
    line = one_error_line(cli("run", "--input-dir", str(synthetic_dir), "--dataset", "ml-1m"))
    assert "--input-dir names the data already" in line


def test_an_unusable_pipeline_root_is_one_error_line_and_debug_shows_the_stack(synthetic_dir, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    args = ("run", "--input-dir", str(synthetic_dir), "--pipeline-root", str(blocker / "root"))
    line = one_error_line(cli(*args))
    assert f"cannot create the pipeline root {blocker / 'root'}" in line and "Not a directory" in line
    debug = cli("--debug", *args)
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and "NotADirectoryError" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1].startswith("Error: cannot create the pipeline root")


def test_run_and_compile_defaults_are_the_configs():
    """The options' defaults come from TrainerConfig/PipelineConfig (one definition): a default typed again in
    the CLI could drift from the config the library and Kubeflow use."""
    import dataclasses

    from pipeline.config import PipelineConfig, TrainerConfig
    from recommender.cli import main

    fields = {
        **{f.name: f.default for f in dataclasses.fields(PipelineConfig) if f.default is not dataclasses.MISSING},
        **{f.name: f.default for f in dataclasses.fields(TrainerConfig) if f.default is not dataclasses.MISSING},
    }
    for command in ("run", "compile"):
        params = {p.name: p for p in main.commands[command].params}
        checked = [name for name, p in params.items() if name in fields and not getattr(p, "multiple", False)]
        assert len(checked) >= 13, checked
        for name in checked:
            assert params[name].default == fields[name], (command, name)
