"""What must be equal between two runs of the same DAG on the same data on different Beam runners.

The runners may order and shard records differently, nothing else: so ExampleGen's examples are compared as
sorted sets of deterministic serializations, quarantine counts and reasons exactly, Transform's vocabularies
byte for byte, TFDV's statistics to float tolerance (sums in another order), and the models' test figures are
reported side by side (training reads the examples in file order, so they differ within seed noise).
Used by tests/flink_e2e_test.py and benchmarks/runner_equivalence.py.
"""

from __future__ import annotations

import dataclasses
import os

from google.protobuf import descriptor

from pipeline import metadata
from pipeline import pipeline as dag
from recommender import inspection

STATISTICS_RELATIVE_TOLERANCE = 1e-6
# TFDV's median and histograms come from quantile sketches (KLL), approximate by design and merged in the order
# the runner's bundles arrive: measured on ML-100k, they alone differ between runners (bucket counts by < 1%).
APPROXIMATE_FIELDS = (".median[", ".histograms[")
APPROXIMATE_TOLERANCE = 0.01  # of the split's examples (bucket counts), of the feature's range (values)


@dataclasses.dataclass(frozen=True)
class RunOutputs:
    """The artifacts of a run that the comparison reads."""

    examples: str
    statistics: str
    transform_graph: str
    ingestion: dict | None
    split_names: tuple[str, ...]


def run_outputs(metadata_file: str, pipeline_name: str, run_id: str | None = None) -> RunOutputs:
    """The outputs of `run_id` (default: the latest run) as MLMD records them (cached outputs included)."""
    store = metadata.open_store(metadata_file)
    run_id = run_id or metadata.run_ids(store, pipeline_name)[-1]
    executions = metadata.run_executions(store, pipeline_name, run_id)

    def output(component: str, key: str):
        artifact = metadata.find_output(executions, component, key)
        if artifact is None:
            raise ValueError(f"run {run_id} in {metadata_file} has no {component} output {key!r}")
        return artifact

    examples = output(dag.EXAMPLE_GEN, "examples")
    statistics = output(dag.STATISTICS_GEN, "statistics")
    return RunOutputs(
        examples=examples.uri,
        statistics=statistics.uri,
        transform_graph=output(dag.TRANSFORM, "transform_graph").uri,
        ingestion=inspection.ingestion(examples),
        split_names=tuple(sorted(inspection.split_rows(statistics))),
    )


def sorted_examples(examples_uri: str, split: str) -> list[bytes]:
    """The split's examples, each serialized deterministically, sorted: equal for equal sets of examples."""
    import tensorflow as tf

    rows = []
    for record in inspection.split_examples(examples_uri, split).as_numpy_iterator():
        example = tf.train.Example.FromString(record)
        rows.append(example.SerializeToString(deterministic=True))
    return sorted(rows)


def vocabularies(transform_graph_uri: str) -> dict[str, bytes]:
    """Transform's vocabulary files (its assets), by name."""
    import tensorflow as tf

    assets = os.path.join(transform_graph_uri, "transform_fn", "assets")
    return {name: tf.io.gfile.GFile(os.path.join(assets, name), "rb").read() for name in tf.io.gfile.listdir(assets)}


def _numbers(message, prefix: str = ""):
    """(path, value) of every number in a statistics proto, lists of messages indexed by position."""
    field_type = descriptor.FieldDescriptor
    numeric = (field_type.TYPE_DOUBLE, field_type.TYPE_FLOAT, field_type.TYPE_INT64, field_type.TYPE_UINT64,
               field_type.TYPE_INT32)  # fmt: skip
    for field, value in message.ListFields():
        path = f"{prefix}.{field.name}"
        for index, item in enumerate(value if field.label == field.LABEL_REPEATED else [value]):
            if field.type == field.TYPE_MESSAGE:
                yield from _numbers(item, f"{path}[{index}]")
            else:
                yield f"{path}[{index}]", float(item) if field.type in numeric else item


def statistics_differences(uri_a: str, uri_b: str, split: str, tolerance: float = STATISTICS_RELATIVE_TOLERANCE):
    """Where the split's TFDV statistics differ beyond `tolerance` (relative), features matched by name."""
    a, b = (inspection.split_statistics(uri, split).datasets[0] for uri in (uri_a, uri_b))
    differences = []
    if a.num_examples != b.num_examples:
        differences.append(f"{split}: {a.num_examples} vs {b.num_examples} examples")
    features_a = {feature.path.step[0]: feature for feature in a.features}
    features_b = {feature.path.step[0]: feature for feature in b.features}
    if set(features_a) != set(features_b):
        differences.append(f"{split}: features differ: {sorted(set(features_a) ^ set(features_b))}")
    for name in sorted(set(features_a) & set(features_b)):
        numbers_a, numbers_b = dict(_numbers(features_a[name])), dict(_numbers(features_b[name]))
        if set(numbers_a) != set(numbers_b):
            differences.append(f"{split}/{name}: different statistics fields")
            continue
        spread = max((v for p, v in numbers_a.items() if p.endswith(".max[0]")), default=0.0) - min(
            (v for p, v in numbers_a.items() if p.endswith(".min[0]")), default=0.0
        )
        for path, value in numbers_a.items():
            other = numbers_b[path]
            if isinstance(value, float) and isinstance(other, float):
                if any(field in path for field in APPROXIMATE_FIELDS):
                    scale = a.num_examples if "sample_count" in path else abs(spread)
                    allowed = APPROXIMATE_TOLERANCE * max(scale, 1.0)
                else:
                    allowed = tolerance * max(1.0, abs(value), abs(other))
                if abs(value - other) > allowed:
                    differences.append(f"{split}/{name}{path}: {value} vs {other}")
            elif value != other:
                differences.append(f"{split}/{name}{path}: {value!r} vs {other!r}")
    return differences


def compare(a: RunOutputs, b: RunOutputs) -> tuple[dict, list[str]]:
    """(figures of both runs, the differences found); no differences: the runs agree."""
    differences, figures = [], {"rows": {}}
    if a.split_names != b.split_names:
        differences.append(f"splits {a.split_names} vs {b.split_names}")
    for split in a.split_names:
        rows_a, rows_b = sorted_examples(a.examples, split), sorted_examples(b.examples, split)
        figures["rows"][split] = (len(rows_a), len(rows_b))
        if rows_a != rows_b:
            only = len(set(rows_a) ^ set(rows_b))
            differences.append(f"{split}: examples differ ({len(rows_a)} vs {len(rows_b)} rows, {only} in one only)")
        differences += statistics_differences(a.statistics, b.statistics, split)
    quarantine = ("raw_records", "rejected", "rejected_by_reason")
    figures["quarantine"] = tuple({key: run.ingestion[key] for key in quarantine} for run in (a, b))
    if figures["quarantine"][0] != figures["quarantine"][1]:
        differences.append(f"quarantine {figures['quarantine'][0]} vs {figures['quarantine'][1]}")
    vocab_a, vocab_b = vocabularies(a.transform_graph), vocabularies(b.transform_graph)
    figures["vocabularies"] = len(vocab_a)
    for name in sorted(set(vocab_a) | set(vocab_b)):
        if vocab_a.get(name) != vocab_b.get(name):
            differences.append(f"vocabulary {name} differs")
    return figures, differences
