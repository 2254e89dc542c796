"""Reading what a run did from ML Metadata (never by guessing paths)."""

from __future__ import annotations

import dataclasses
import os

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
    prefix = f"{pipeline_name}."
    result = []
    for execution in sorted(store.get_executions_by_context(run.id), key=lambda e: e.id):
        nodes = [c.name for c in store.get_contexts_by_execution(execution.id) if c.type == "node"]
        component = nodes[0][len(prefix) :] if nodes and nodes[0].startswith(prefix) else execution.type
        outputs: dict[str, list[metadata_store_pb2.Artifact]] = {}
        events = [
            e
            for e in store.get_events_by_execution_ids([execution.id])
            if e.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.PENDING_OUTPUT)
        ]
        artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
        for event in events:
            key = event.path.steps[0].key if event.path.steps else ""
            outputs.setdefault(key, []).append(artifacts[event.artifact_id])
        seconds = (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000
        result.append(ComponentExecution(component, _STATES.Name(execution.last_known_state), seconds, outputs))
    return result
