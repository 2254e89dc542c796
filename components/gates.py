"""Validation gate: stops the run when ExampleValidator found anomalies.

ExampleValidator only records anomalies; it never fails a run. This component reads
its output and raises with the list of anomalies, so nothing downstream runs on bad
data. It passes the schema through, and Transform consumes that copy, which makes
the ordering (gate before Transform) part of the DAG on every orchestrator. It also writes
the part of it the Evaluator reads (`evaluation_schema`, see eval_config.evaluation_schema).

Override: anomalies of the features named in `accepted_anomalies` (`*` for all) are
let through. The list is an execution property (in MLMD) and the anomalies accepted
are recorded on the output schema artifact (`accepted_anomalies` custom property).
"""

import json
import logging
import os

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.utils import io_utils

from components.evaluator import eval_config

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


DATASET = "<dataset>"  # name of dataset-level anomalies (e.g. row count), for `accepted_anomalies`
ACCEPT_ALL = "*"
ACCEPTED_PROPERTY = "accepted_anomalies"


def describe_anomalies(
    anomalies: dict[str, anomalies_pb2.Anomalies], accepted: tuple[str, ...] = ()
) -> tuple[list[str], list[str]]:
    """(blocking, accepted): one line per anomaly (split, feature, short and long description).

    An anomaly is accepted when its feature (or DATASET) is in `accepted`, or `accepted` has ACCEPT_ALL.
    """
    blocking, let_through = [], []
    for split, proto in anomalies.items():
        found = [(feature, info) for feature, info in sorted(proto.anomaly_info.items())]
        if proto.HasField("dataset_anomaly_info"):
            found.append((DATASET, proto.dataset_anomaly_info))
        for feature, info in found:
            line = f"[{split}] {feature}: {info.short_description} ({info.description})"
            (let_through if feature in accepted or ACCEPT_ALL in accepted else blocking).append(line)
    return blocking, let_through


@tfx.dsl.components.component
def ValidationGate(
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    validated_schema: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Schema],
    evaluation_schema: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Schema],
    code_fingerprint: tfx.dsl.components.Parameter[str] = "",
    accepted_anomalies: tfx.dsl.components.Parameter[str] = "[]",
) -> None:
    """Fails the run if any split has anomalies not accepted; otherwise passes the schema on, and the Evaluator's
    part of it as `evaluation_schema`.

    Called by the TFX launcher. `accepted_anomalies` is a JSON list of feature names
    (or "*"). `code_fingerprint` is there only so that a change to this module
    invalidates the cached execution.
    """
    del code_fingerprint
    split_names = json.loads(anomalies.split_names)
    accepted = tuple(json.loads(accepted_anomalies))
    problems, let_through = describe_anomalies(read_anomalies(anomalies.uri, split_names), accepted)
    if problems:
        hint = "; to accept them, rerun with --accept-anomalies FEATURE (recorded in ML Metadata)"
        raise DataValidationError(
            f"ExampleValidator found {len(problems)} anomalies; the run stops before Transform{hint}:\n  "
            + "\n  ".join(problems)
        )
    if let_through:
        logging.warning("ValidationGate: %d anomalies accepted by override: %s", len(let_through), let_through)
    validated_schema.set_string_custom_property(ACCEPTED_PROPERTY, json.dumps(let_through))
    tf.io.gfile.makedirs(validated_schema.uri)
    source = os.path.join(schema.uri, SCHEMA_FILE)
    tf.io.gfile.copy(source, os.path.join(validated_schema.uri, SCHEMA_FILE), overwrite=True)
    io_utils.write_pbtxt_file(
        os.path.join(evaluation_schema.uri, SCHEMA_FILE),
        eval_config.evaluation_schema(io_utils.SchemaReader().read(source)),
    )
