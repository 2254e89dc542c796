"""The command of a Kubeflow step compiled for Flink (`recommender compile --beam-runner flink`): TFX's own v2
executor entry point, run with tfx_bsl's TFRecord reads spread over the Flink job's partitions (record_reads.py),
as a local Flink run does. KFP starts it as `python -m pipeline.flink.kubeflow_executor ARGS`, with the arguments
TFX's entry point takes."""

from __future__ import annotations

import runpy

from pipeline.flink import record_reads

TFX_ENTRYPOINT = "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"


def main() -> None:
    """Runs TFX's entry point as `__main__` (it parses sys.argv and exits) while the spread reads are installed."""
    with record_reads.spread_over_partitions():
        runpy.run_module(TFX_ENTRYPOINT, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
