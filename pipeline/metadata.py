"""Reading what a run did from ML Metadata (never by guessing paths)."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

_STATES = metadata_store_pb2.Execution.State


@dataclasses.dataclass(frozen=True)
class ComponentExecution:
    """One component's execution in a run."""

    component: str
    state: str  # COMPLETE, CACHED, FAILED, RUNNING, ...
    seconds: float
    outputs: dict[str, list[metadata_store_pb2.Artifact]]
    inputs: dict[str, list[metadata_store_pb2.Artifact]] = dataclasses.field(default_factory=dict)
    execution: metadata_store_pb2.Execution | None = None

    def output(self, key: str) -> metadata_store_pb2.Artifact | None:
        """The first artifact under an output key, if any."""
        artifacts = self.outputs.get(key)
        return artifacts[0] if artifacts else None

    def property(self, name: str):
        """An execution property (TFX stores exec properties as custom properties)."""
        if self.execution is None:
            return None
        for properties in (self.execution.custom_properties, self.execution.properties):
            if name in properties:
                return value(properties[name])
        return None


def find_output(executions: list[ComponentExecution], component: str, key: str) -> metadata_store_pb2.Artifact | None:
    """The first `key` output of `component` among a run's executions, if it ran and produced one."""
    execution = next((e for e in executions if e.component == component), None)
    return execution.output(key) if execution else None


def value(proto: metadata_store_pb2.Value):
    """The Python value of an MLMD property."""
    kind = proto.WhichOneof("value")
    return getattr(proto, kind) if kind and kind != "struct_value" else None


def event_keys(event: metadata_store_pb2.Event) -> list[str]:
    """The input/output keys of an event: one artifact used under several keys (e.g. the same model as
    `model` and `baseline_model`) is recorded as one event whose path holds every (key, index) pair."""
    return [step.key for step in event.path.steps if step.HasField("key")] or [""]


def component_name(store: mlmd.MetadataStore, execution: metadata_store_pb2.Execution, pipeline_name: str) -> str:
    """The component id of an execution (from its node context; else the execution type)."""
    prefix = f"{pipeline_name}."
    nodes = [c.name for c in store.get_contexts_by_execution(execution.id) if c.type == "node"]
    return nodes[0][len(prefix) :] if nodes and nodes[0].startswith(prefix) else execution.type


def open_store(metadata_file: str) -> mlmd.MetadataStore:
    """A read/write store on an existing SQLite MLMD file."""
    if not os.path.isfile(metadata_file):
        raise FileNotFoundError(f"no ML Metadata store at {metadata_file} (has the pipeline run yet?)")
    config = tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_file)
    return mlmd.MetadataStore(config)


def run_ids(store: mlmd.MetadataStore, pipeline_name: str) -> list[str]:
    """Run ids of a pipeline, oldest first."""
    pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline is None:
        return []
    runs = [c for c in store.get_children_contexts_by_context(pipeline.id) if c.type == "pipeline_run"]
    return [c.name for c in sorted(runs, key=lambda c: (c.create_time_since_epoch, c.id))]


def run_executions(store: mlmd.MetadataStore, pipeline_name: str, run_id: str) -> list[ComponentExecution]:
    """Each component execution of one run, in execution order."""
    run = store.get_context_by_type_and_name("pipeline_run", run_id)
    if run is None:
        raise KeyError(f"no run {run_id!r} in the metadata store")
    result = []
    for execution in sorted(store.get_executions_by_context(run.id), key=lambda e: e.id):
        component = component_name(store, execution, pipeline_name)
        events = store.get_events_by_execution_ids([execution.id])
        artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
        outputs: dict[str, list[metadata_store_pb2.Artifact]] = {}
        inputs: dict[str, list[metadata_store_pb2.Artifact]] = {}
        for event in events:
            for key in event_keys(event):
                if event.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.PENDING_OUTPUT):
                    outputs.setdefault(key, []).append(artifacts[event.artifact_id])
                elif event.type == metadata_store_pb2.Event.INPUT:
                    inputs.setdefault(key, []).append(artifacts[event.artifact_id])
        seconds = (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000
        state = _STATES.Name(execution.last_known_state)
        result.append(ComponentExecution(component, state, seconds, outputs, inputs, execution))
    return result


def artifact_json(uri: str, name: str) -> Any:
    """The JSON file `name` inside an artifact's directory (local or remote), or None when there is none."""
    import tensorflow as tf

    path = os.path.join(uri, name)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        return json.load(handle)
