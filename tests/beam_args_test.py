"""Local Beam args: real TFX Beam executors run on them without repackaging TFX into the temp directory."""

import os
import tempfile

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from tfx.components.statistics_gen.executor import Executor as StatisticsGenExecutor
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor

from pipeline.config import PROJECT_SETUP_FILE, direct_runner_args
from pipeline.local_runner import _scratch_temp_dir


@pytest.fixture
def temp_dir(tmp_path, monkeypatch):
    """An empty directory as Python's temp directory (where TFX would build its sdist)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("mode", ["in_memory", "multi_processing"])
def test_beam_executors_build_no_tfx_package_and_run(temp_dir, mode):
    args = direct_runner_args(mode, workers=2)
    assert f"--setup_file={PROJECT_SETUP_FILE}" in args
    executor = StatisticsGenExecutor(BaseBeamExecutor.Context(beam_pipeline_args=list(args)))
    assert os.listdir(temp_dir) == []  # TFX's sdist would be temp/tmpXXXX/build/tfx/dist/*.tar.gz
    with executor._make_beam_pipeline() as pipeline:  # The pipeline the executor runs: DirectRunner.
        counted = pipeline | beam.Create(range(5)) | beam.combiners.Count.Globally()
        assert_that(counted, equal_to([5]))


def test_args_that_name_no_dependencies_make_tfx_build_one(temp_dir):
    """The behaviour the setup file avoids; if TFX stops doing this, the argument can go."""
    executor = StatisticsGenExecutor(BaseBeamExecutor.Context(beam_pipeline_args=["--runner=DirectRunner"]))
    (built,) = [arg for arg in executor._beam_pipeline_args if arg.startswith("--extra_package=")]
    assert built.split("=", 1)[1].startswith(str(temp_dir))


def test_what_tfx_builds_in_the_temp_directory_during_a_local_run_is_removed_after_it(temp_dir):
    """Beam args without a setup file (the project installed without its source tree): the sdist is cleaned."""
    with _scratch_temp_dir():
        executor = StatisticsGenExecutor(BaseBeamExecutor.Context(beam_pipeline_args=["--runner=DirectRunner"]))
        (built,) = [arg.split("=", 1)[1] for arg in executor._beam_pipeline_args if arg.startswith("--extra_package=")]
        assert os.path.isfile(built) and os.environ["TMPDIR"] in built
    assert not os.path.exists(built)
    assert tempfile.gettempdir() == str(temp_dir) and os.listdir(temp_dir) == []
