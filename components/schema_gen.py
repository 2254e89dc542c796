"""ImportSchemaGen keyed by the schema's content, not only its path.

TFX's cache key for ImportSchemaGen hashes its exec properties, and its only one is the schema file's
*path*: editing `schemas/schema.pbtxt` in place re-ran nothing, and ExampleValidator and the
ValidationGate kept validating against the old schema. This component is the stock one (same
executor, same output) with one more exec property, the SHA-256 of the file's content, so an edited
schema re-runs the import and everything downstream of it.

The spec and base component are not exported by `tfx.v1`; extending a standard component's spec is
TFX's documented way to add a parameter.
"""

from __future__ import annotations

import hashlib

from tfx import types
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.dsl.components.base import base_component
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter

CONTENT_KEY = "schema_sha256"


class ContentKeyedImportSchemaGenSpec(standard_component_specs.ImportSchemaGenSpec):
    """ImportSchemaGen's spec plus the schema content's SHA-256 (a cache key only; the executor ignores it)."""

    PARAMETERS = {**standard_component_specs.ImportSchemaGenSpec.PARAMETERS, CONTENT_KEY: ExecutionParameter(type=str)}


class ContentKeyedImportSchemaGen(ImportSchemaGen):
    """ImportSchemaGen whose cache key includes the schema file's content."""

    SPEC_CLASS = ContentKeyedImportSchemaGenSpec

    def __init__(self, schema_file: str, schema_sha256: str):
        spec = ContentKeyedImportSchemaGenSpec(
            schema_file=schema_file,
            schema_sha256=schema_sha256,
            schema=types.Channel(type=standard_artifacts.Schema),
        )
        base_component.BaseComponent.__init__(self, spec=spec)


def file_sha256(path: str) -> str:
    """SHA-256 of a file's bytes (tf.io.gfile: local or gs://)."""
    import tensorflow as tf

    with tf.io.gfile.GFile(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()
