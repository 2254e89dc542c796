"""The MovieLens ExampleGen: a standard TFX FileBasedExampleGen with our executor."""

from __future__ import annotations

# FileBasedExampleGen and executor specs are not exported by tfx.v1; a custom
# ExampleGen executor needs both (this is TFX's documented way to write one).
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from components.example_gen import executor, layouts, quarantine, splits


def movielens_example_gen(
    input_base: str,
    split_names: list[str],
    split_fractions: list[float],
    code_fingerprint: str,
    max_rejected_fraction: float = quarantine.DEFAULT_MAX_REJECTED_FRACTION,
    split_protocol: str = splits.TIME,
    split_seed: int = 0,
    layout: str = layouts.ML_100K,
) -> FileBasedExampleGen:
    """ExampleGen over a MovieLens directory in `layout` (layouts.py) that joins users/movies and splits them by
    `split_protocol` (components/example_gen/splits.py; `split_fractions` apply to the time split).

    Malformed lines are quarantined; more than `max_rejected_fraction` of them fails the run.
    """
    # Every split "reads" every input file of the protocol: the driver fingerprints the pattern's matches,
    # so an edited u.data or uK.test re-runs ExampleGen instead of reusing a cached split.
    pattern = layouts.input_pattern(layouts.LAYOUTS[layout], split_protocol)
    input_config = example_gen_pb2.Input(
        splits=[example_gen_pb2.Input.Split(name=name, pattern=pattern) for name in split_names]
    )
    return FileBasedExampleGen(
        input_base=input_base,
        input_config=input_config,
        custom_config=executor.make_custom_config(
            split_fractions, code_fingerprint, max_rejected_fraction, split_protocol, split_seed, layout
        ),
        custom_executor_spec=executor_spec.BeamExecutorSpec(executor.Executor),
    )
