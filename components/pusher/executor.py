"""Pusher executor whose filesystem push is atomic: a version directory appears complete or not at all.

TFX's own Pusher copies the SavedModel straight into `<base>/<version>/`, so TF Serving,
which polls the base directory, can see (and try to load) a half-written version, and a
killed push leaves one behind for good. Here the model is copied to a hidden staging
directory next to the versions (`.partial-<version>-<random>`, which TF Serving ignores:
it only loads numeric names) and renamed into place once complete. On a local or POSIX
filesystem the rename is atomic; on object stores (gs://) a directory rename is a copy,
so the staging name still keeps TF Serving away until every file is there.

Called by the TFX launcher (see `component.py`).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable

from tfx.components.pusher import executor as tfx_pusher
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from components import identity

STAGING_PREFIX = ".partial-"
SAVED_MODEL_FILE = "saved_model.pb"


class PushError(RuntimeError):
    """The push could not be completed; nothing was published to the serving directory."""


def _tree(directory: str) -> tuple[list[str], list[str]]:
    """(subdirectories, files) under `directory`, relative to it; saved_model.pb last (readers test for it)."""
    directories, files = [], []
    for root, subdirectories, names in fileio.walk(directory):
        directories += [os.path.relpath(os.path.join(root, name), directory) for name in subdirectories]
        files += [os.path.relpath(os.path.join(root, name), directory) for name in names]
    return sorted(directories), sorted(files, key=lambda path: (path == SAVED_MODEL_FILE, path))


def push_atomically(
    model_path: str, base_directory: str, version: int, on_file: Callable[[str], None] | None = None
) -> tuple[str, str]:
    """Copies the SavedModel at `model_path` to `<base_directory>/<version>` atomically.

    Returns (serving path, version); the version is bumped past any existing one. `on_file` is
    called after each file is staged (progress). On any failure the staging directory is removed
    and the serving directory is left exactly as it was.
    """
    if not fileio.exists(os.path.join(model_path, SAVED_MODEL_FILE)):
        raise PushError(f"{model_path} has no {SAVED_MODEL_FILE}; refusing to push an incomplete model")
    fileio.makedirs(base_directory)
    while fileio.exists(os.path.join(base_directory, str(version))):
        version += 1
    final = os.path.join(base_directory, str(version))
    staging = os.path.join(base_directory, f"{STAGING_PREFIX}{version}-{uuid.uuid4().hex[:8]}")
    try:
        directories, files = _tree(model_path)
        for relative in ["", *directories]:  # empty ones too (assets/)
            fileio.makedirs(os.path.join(staging, relative))
        for relative in files:
            target = os.path.join(staging, relative)
            fileio.copy(os.path.join(model_path, relative), target, overwrite=True)
            if on_file is not None:
                on_file(relative)
        fileio.rename(staging, final, overwrite=False)
    except BaseException:  # Ctrl-C included: clean up, re-raise.
        if fileio.exists(staging):
            fileio.rmtree(staging)
        raise
    return final, str(version)


def check_same_data(candidate: dict, base_directory: str) -> None:
    """Raises PushError if the newest version under `base_directory` is a model of other data (identity.py)."""
    served = identity.latest_served(base_directory)
    why = identity.push_mismatch(candidate, identity.read(served)) if served else None
    if why:
        raise PushError(f"refusing to push over {base_directory}: {why}. give this data its own --serving-dir")


class Executor(tfx_pusher.Executor):
    """Pushes a blessed model to a filesystem destination atomically; a non-blessed one is not pushed."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        model_path = self.GetModelPath(input_dict)
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        if destination.WhichOneof("destination") != "filesystem":
            raise PushError(f"only filesystem push destinations are supported, got {destination}")
        base_directory = destination.filesystem.base_directory
        custom_config = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or {}
        if isinstance(custom_config, str):
            custom_config = json.loads(custom_config)
        candidate = custom_config.get("training_identity")
        if candidate:
            check_same_data(json.loads(candidate), base_directory)
        serving_path, version = push_atomically(model_path, base_directory, int(time.time()))
        io_utils.copy_dir(model_path, model_push.uri)  # archived copy in the pipeline root, as TFX does
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)
