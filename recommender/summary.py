"""What a run produced, read back from ML Metadata: the lines `recommender run` prints when it ends."""

from __future__ import annotations

import dataclasses

from pipeline import metadata
from pipeline import pipeline as dag
from pipeline.config import PipelineConfig
from recommender import evaluation_view, inspection


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """What a run produced, read from MLMD."""

    run_id: str
    executions: list[metadata.ComponentExecution]
    split_rows: dict[str, int]
    ingestion: dict | None
    accepted_anomalies: list[str]
    test_rmse: float | None
    blessed: bool | None  # the final blessing (RMSE and ranking gates)
    pushed_path: str | None
    ranking: dict[str, float] | None = None  # RankingEvaluator's headline figures (ndcg, precision, ...)

    def lines(self) -> list[str]:
        rows = ", ".join(f"{name} {count:,}" for name, count in self.split_rows.items())
        rmse = "n/a" if self.test_rmse is None else f"{self.test_rmse:.4f}"
        blessed = {None: "n/a", True: "yes", False: "no"}[self.blessed]
        return [
            f"run {self.run_id}",
            *([f"  raw records    : {inspection.ingestion_line(self.ingestion)}"] if self.ingestion else []),
            *[f"  ACCEPTED anomaly (override): {line}" for line in self.accepted_anomalies],
            f"  rows per split : {rows}",
            f"  test RMSE      : {rmse}",
            *(
                [
                    f"  test top-{self.ranking['k']:.0f}    : "
                    + ", ".join(f"{name} {self.ranking[name]:.4f}" for name in ("ndcg", "precision", "recall", "map"))
                ]
                if self.ranking
                else []
            ),
            f"  blessed        : {blessed}",
            f"  pushed model   : {self.pushed_path or 'nothing pushed'}",
        ]


def _overall_rmse(evaluation_uri: str) -> float | None:
    from components.evaluator.eval_config import GATE_METRIC

    overall = next((s for s in evaluation_view.evaluation(evaluation_uri) if s["feature"] is None), None)
    return overall["metrics"].get(GATE_METRIC) if overall else None


def summarize(config: PipelineConfig, run_id: str | None = None) -> RunSummary:
    """Reads the outcome of `run_id` (default: the latest run) from MLMD."""
    store = metadata.open_store(config.metadata_file)
    runs = metadata.run_ids(store, config.pipeline_name)
    if not runs:
        raise inspection.InspectionError(f"no run of {config.pipeline_name} in {config.metadata_file}")
    run_id = run_id or runs[-1]
    executions = metadata.run_executions(store, config.pipeline_name, run_id)
    examples = metadata.find_output(executions, dag.EXAMPLE_GEN, "examples")
    statistics = metadata.find_output(executions, dag.STATISTICS_GEN, "statistics")
    evaluation = metadata.find_output(executions, dag.EVALUATOR, "evaluation")
    blessing = metadata.find_output(executions, dag.RANKING_EVALUATOR, "blessing") or metadata.find_output(
        executions, dag.EVALUATOR, "blessing"
    )
    ranking = metadata.find_output(executions, dag.RANKING_EVALUATOR, "evaluation")
    pushed = metadata.find_output(executions, dag.PUSHER, "pushed_model")
    pushed_path = None
    if pushed is not None and pushed.custom_properties["pushed"].int_value == 1:
        pushed_path = pushed.custom_properties["pushed_destination"].string_value
    return RunSummary(
        run_id=run_id,
        executions=executions,
        split_rows=inspection.split_rows(statistics) if statistics else {},
        ingestion=inspection.ingestion(examples) if examples else None,
        accepted_anomalies=inspection.accepted_anomalies(
            metadata.find_output(executions, dag.VALIDATION_GATE, "validated_schema")
        ),
        test_rmse=_overall_rmse(evaluation.uri) if evaluation else None,
        blessed=bool(blessing.custom_properties["blessed"].int_value) if blessing else None,
        pushed_path=pushed_path,
        ranking={key: metadata.value(value) for key, value in ranking.custom_properties.items()} if ranking else None,
    )
