"""Validation gate: stops the run when ExampleValidator found anomalies.

ExampleValidator only records anomalies; it never fails a run. This component reads
its output and raises with the list of anomalies, so nothing downstream runs on bad
data. It passes the schema through, and Transform consumes that copy, which makes
the ordering (gate before Transform) part of the DAG on every orchestrator.
"""

import json
import os

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx

ANOMALIES_FILE = "SchemaDiff.pb"  # Written by ExampleValidator in each Split-<name>/ dir.
SCHEMA_FILE = "schema.pbtxt"


class DataValidationError(RuntimeError):
    """ExampleValidator found anomalies; the message lists them."""


def read_anomalies(anomalies_uri: str, split_names: list[str]) -> dict[str, anomalies_pb2.Anomalies]:
    """Reads ExampleValidator's anomalies proto for each split."""
    result = {}
    for split in split_names:
        path = os.path.join(anomalies_uri, f"Split-{split}", ANOMALIES_FILE)
        proto = anomalies_pb2.Anomalies()
        proto.ParseFromString(tf.io.gfile.GFile(path, "rb").read())
        result[split] = proto
    return result


def describe_anomalies(anomalies: dict[str, anomalies_pb2.Anomalies]) -> list[str]:
    """One line per anomaly: split, feature, short and long description."""
    lines = []
    for split, proto in anomalies.items():
        for feature, info in sorted(proto.anomaly_info.items()):
            lines.append(f"[{split}] {feature}: {info.short_description} ({info.description})")
        if proto.HasField("dataset_anomaly_info"):
            info = proto.dataset_anomaly_info
            lines.append(f"[{split}] <dataset>: {info.short_description} ({info.description})")
    return lines


@tfx.dsl.components.component
def ValidationGate(
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    validated_schema: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Schema],
    code_fingerprint: tfx.dsl.components.Parameter[str] = "",
) -> None:
    """Fails the run if any split has anomalies; otherwise passes the schema on.

    Called by the TFX launcher. `code_fingerprint` is there only so that a change
    to this module invalidates the cached execution.
    """
    del code_fingerprint
    split_names = json.loads(anomalies.split_names)
    problems = describe_anomalies(read_anomalies(anomalies.uri, split_names))
    if problems:
        raise DataValidationError(
            f"ExampleValidator found {len(problems)} anomalies; the run stops before Transform:\n  "
            + "\n  ".join(problems)
        )
    tf.io.gfile.makedirs(validated_schema.uri)
    tf.io.gfile.copy(
        os.path.join(schema.uri, SCHEMA_FILE), os.path.join(validated_schema.uri, SCHEMA_FILE), overwrite=True
    )
