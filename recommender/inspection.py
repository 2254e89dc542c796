"""What a run saw and decided, read from ML Metadata and the artifacts MLMD points to.

`inspect_run` returns plain JSON-able data: `recommender inspect` prints it (or dumps it with
`--json`) and `recommender report` renders it, with plots, into one HTML file. Nothing here
guesses a path: every file read is under the URI of an artifact MLMD recorded for the run.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
from typing import Any

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2

from pipeline import metadata
from pipeline import pipeline as dag
from pipeline.config import DEFAULT_PIPELINE_NAME
from recommender import decision_view, evaluation_view, ranking_view


class InspectionError(RuntimeError):
    """No store, no run, or an unknown run id; the message says which."""


@contextlib.contextmanager
def reading(what: str, uri: str):
    """Turns a missing or damaged artifact file into an InspectionError naming the artifact."""
    import tensorflow as tf
    from google.protobuf import message

    try:
        yield
    except (OSError, tf.errors.OpError, ValueError, KeyError, message.DecodeError) as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InspectionError(
            f"cannot read the {what} at {uri} ({type(error).__name__}: {detail}); "
            "the artifact was moved, deleted or damaged after the run"
        ) from error


def _iso(milliseconds: int) -> str:
    return datetime.datetime.fromtimestamp(milliseconds / 1000, datetime.timezone.utc).isoformat(timespec="seconds")


def _status(executions: list[metadata.ComponentExecution]) -> str:
    states = {e.state for e in executions}
    if "FAILED" in states:
        return "FAILED"
    if states & {"NEW", "RUNNING", "UNKNOWN"}:
        return "INCOMPLETE"  # Still running, or killed.
    return "COMPLETE"


def list_runs(store: mlmd.MetadataStore, pipeline_name: str) -> list[dict]:
    """Every run of the pipeline, oldest first: id, start time, status."""
    runs = []
    for run_id in metadata.run_ids(store, pipeline_name):
        context = store.get_context_by_type_and_name("pipeline_run", run_id)
        executions = metadata.run_executions(store, pipeline_name, run_id)
        runs.append({"run_id": run_id, "started": _iso(context.create_time_since_epoch), "status": _status(executions)})
    return runs


def split_statistics(statistics_uri: str, split: str):
    """StatisticsGen's DatasetFeatureStatisticsList of one split."""
    import tensorflow_data_validation as tfdv

    return tfdv.load_stats_binary(os.path.join(statistics_uri, f"Split-{split}", "FeatureStats.pb"))


def split_examples(examples_uri: str, split: str):
    """ExampleGen's serialized tf.Examples of one split (a tf.data dataset over its GZIP TFRecord files)."""
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
    return tf.data.TFRecordDataset(files, compression_type="GZIP")


def split_rows(statistics: metadata_store_pb2.Artifact) -> dict[str, int]:
    """Examples per split, from StatisticsGen's output."""
    splits = json.loads(statistics.properties["split_names"].string_value)
    return {split: int(split_statistics(statistics.uri, split).datasets[0].num_examples) for split in splits}


def _anomalies(anomalies: metadata_store_pb2.Artifact) -> list[str]:
    from components import gates

    splits = json.loads(anomalies.properties["split_names"].string_value)
    blocking, accepted = gates.describe_anomalies(gates.read_anomalies(anomalies.uri, splits))
    return blocking + accepted


def ingestion(examples: metadata_store_pb2.Artifact) -> dict | None:
    """What ExampleGen read and rejected (custom properties of its Examples artifact)."""
    from components.example_gen import executor

    props = examples.custom_properties
    if executor.RAW_RECORDS_PROPERTY not in props:
        return None
    return {
        "raw_records": props[executor.RAW_RECORDS_PROPERTY].int_value,
        "rejected": props[executor.REJECTED_RECORDS_PROPERTY].int_value,
        "rejected_by_reason": json.loads(props[executor.REJECTED_BY_REASON_PROPERTY].string_value),
        "quarantine": props[executor.QUARANTINE_PROPERTY].string_value,
        "layout": props[executor.LAYOUT_PROPERTY].string_value if executor.LAYOUT_PROPERTY in props else "ml-100k",
    }


def ingestion_line(data: dict) -> str:
    """`raw records: N read (layout), M rejected (reason n, ...) → quarantine`."""
    reasons = ", ".join(f"{reason} {count:,}" for reason, count in data["rejected_by_reason"].items())
    where = f" → {data['quarantine']}" if data["rejected"] else ""
    read = f"{data['raw_records']:,} read ({data.get('layout', 'ml-100k')} layout)"
    return f"{read}, {data['rejected']:,} rejected" + (f" ({reasons})" if reasons else "") + where


def accepted_anomalies(validated_schema: metadata_store_pb2.Artifact | None) -> list[str]:
    """Anomalies the ValidationGate let through by override (recorded on its output)."""
    from components import gates

    if validated_schema is None or gates.ACCEPTED_PROPERTY not in validated_schema.custom_properties:
        return []
    return json.loads(validated_schema.custom_properties[gates.ACCEPTED_PROPERTY].string_value)


def _decision(executions: list[metadata.ComponentExecution], by_name: dict) -> dict | None:
    """The rating gate (decision_view.read) from the Evaluator's blessing and config and the RankingEvaluator's
    comparison file and baseline input."""
    blessing = metadata.find_output(executions, dag.EVALUATOR, "blessing")
    evaluator = by_name.get(dag.EVALUATOR)
    if blessing is None or evaluator is None:
        return None
    ranking_evaluator = by_name.get(dag.RANKING_EVALUATOR)
    evaluation = metadata.find_output(executions, dag.RANKING_EVALUATOR, "evaluation")
    comparison = None
    if evaluation is not None:
        with reading("rating comparison (RankingEvaluator)", evaluation.uri):
            comparison = metadata.artifact_json(evaluation.uri, ranking_view.COMPARISON_FILE)
    baseline = (ranking_evaluator.inputs.get("baseline_model") if ranking_evaluator else None) or []
    if not baseline:  # runs from before the paired comparison: TFMA compared the models
        baseline = evaluator.inputs.get("baseline_model") or []
    return decision_view.read(
        within_bound=bool(blessing.custom_properties["blessed"].int_value),
        candidate_model=blessing.custom_properties["current_model"].string_value or None,
        baseline_model=baseline[0].uri if baseline else None,
        eval_config_json=evaluator.property("eval_config"),
        comparison=comparison,
    )


def _artifact_type(store: mlmd.MetadataStore, artifact: metadata_store_pb2.Artifact) -> str:
    return store.get_artifact_types_by_id([artifact.type_id])[0].name


def lineage(store: mlmd.MetadataStore, pipeline_name: str, artifact: metadata_store_pb2.Artifact) -> dict:
    """The artifact, the component execution that produced it and, recursively, that execution's inputs."""
    node = {"type": _artifact_type(store, artifact), "id": artifact.id, "uri": artifact.uri}
    produced = [
        e
        for e in store.get_events_by_artifact_ids([artifact.id])
        if e.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
    ]
    if not produced:
        return node
    execution = store.get_executions_by_id([produced[0].execution_id])[0]
    node["produced_by"] = metadata.component_name(store, execution, pipeline_name)
    node["execution_id"] = execution.id
    inputs: dict[str, list[dict]] = {}
    events = [e for e in store.get_events_by_execution_ids([execution.id]) if e.type == metadata_store_pb2.Event.INPUT]
    for event in events:
        (upstream,) = store.get_artifacts_by_id([event.artifact_id])
        for key in metadata.event_keys(event):
            inputs.setdefault(key, []).append(lineage(store, pipeline_name, upstream))
    if inputs:
        node["inputs"] = inputs
    return node


def inspect_run(metadata_file: str, pipeline_name: str = DEFAULT_PIPELINE_NAME, run: str = "latest") -> dict:
    """Everything `inspect` shows about one run (default: the latest), as JSON-able data."""
    try:
        store = metadata.open_store(metadata_file)
    except FileNotFoundError as error:
        raise InspectionError(str(error)) from error
    runs = list_runs(store, pipeline_name)
    if not runs:
        raise InspectionError(f"no run of {pipeline_name} recorded in {metadata_file} yet")
    chosen = runs[-1] if run == "latest" else next((r for r in runs if r["run_id"] == run), None)
    if chosen is None:
        raise InspectionError(f"no run {run!r} in {metadata_file}; runs: {', '.join(r['run_id'] for r in runs)}")
    executions = metadata.run_executions(store, pipeline_name, chosen["run_id"])
    by_name = {e.component: e for e in executions}

    def output(component: str, key: str) -> metadata_store_pb2.Artifact | None:
        return metadata.find_output(executions, component, key)

    report: dict[str, Any] = {
        "pipeline": pipeline_name,
        "metadata": os.path.abspath(metadata_file),
        "runs": runs,
        "run": chosen,
        "components": [
            {"component": e.component, "state": e.state, "seconds": round(e.seconds, 1), "cached": e.state == "CACHED"}
            for e in executions
        ],
        "artifacts": {
            f"{e.component}.{key}": artifacts[0].uri for e in executions for key, artifacts in e.outputs.items()
        },
    }
    examples = output(dag.EXAMPLE_GEN, "examples")
    report["ingestion"] = ingestion(examples) if examples else None
    statistics = output(dag.STATISTICS_GEN, "statistics")
    with reading("statistics (StatisticsGen)", statistics.uri if statistics else ""):
        report["splits"] = split_rows(statistics) if statistics else {}
    anomalies = output(dag.EXAMPLE_VALIDATOR, "anomalies")
    with reading("anomalies (ExampleValidator)", anomalies.uri if anomalies else ""):
        report["anomalies"] = _anomalies(anomalies) if anomalies else None
    report["accepted_anomalies"] = accepted_anomalies(output(dag.VALIDATION_GATE, "validated_schema"))

    evaluation_artifact = output(dag.EVALUATOR, "evaluation")
    with reading("evaluation (Evaluator)", evaluation_artifact.uri if evaluation_artifact else ""):
        report["evaluation"] = evaluation_view.evaluation(evaluation_artifact.uri) if evaluation_artifact else []
    report["decision"] = _decision(executions, by_name)
    ranking = output(dag.RANKING_EVALUATOR, "evaluation")
    with reading("ranking evaluation (RankingEvaluator)", ranking.uri if ranking else ""):
        result = metadata.artifact_json(ranking.uri, ranking_view.RESULT_FILE) if ranking else None
        report["ranking"] = ranking_view.read(result, output(dag.RANKING_EVALUATOR, "blessing")) if result else None
    pushed = output(dag.PUSHER, "pushed_model")
    pusher = by_name.get(dag.PUSHER)
    if pushed is not None and pushed.custom_properties["pushed"].int_value == 1:
        report["pushed"] = {
            "version": pushed.custom_properties["pushed_version"].string_value,
            "destination": pushed.custom_properties["pushed_destination"].string_value,
        }
        (model,) = pusher.inputs["model"]
        report["lineage"] = lineage(store, pipeline_name, model)
    else:
        report["pushed"] = None
        report["lineage"] = None

    model_run = output(dag.TRAINER, "model_run")
    with reading("training history (Trainer)", model_run.uri if model_run else ""):
        history = metadata.artifact_json(model_run.uri, "history.json") if model_run else None
    tuner_results = output(dag.TUNER, "tuner_results")
    with reading("tuner results (Tuner)", tuner_results.uri if tuner_results else ""):
        trials = metadata.artifact_json(tuner_results.uri, "tuner_results.json") if tuner_results else None
    report["training"] = {
        "hyperparameters": history["hyperparameters"] if history else None,
        "history": history["history"] if history else None,
        "tuner_trials": trials,
    }
    return report


def lineage_lines(node: dict, indent: str = "    ", seen: set | None = None) -> list[str]:
    """The lineage tree as indented lines; an artifact shown once is referred to after that."""
    seen = set() if seen is None else seen
    producer = f" ← {node['produced_by']}" if "produced_by" in node else ""
    lines = [f"{indent}{node['type']} #{node['id']}{producer}  {node['uri']}"]
    if node["id"] in seen:
        return [lines[0] + "  (see above)"]
    seen.add(node["id"])
    for key, upstream in sorted(node.get("inputs", {}).items()):
        for item in upstream:
            lines += [f"{indent}  {key}:"] + lineage_lines(item, indent + "    ", seen)
    return lines


def render_text(report: dict) -> list[str]:
    """The terminal view of `inspect_run`'s data."""
    lines = [f"Runs of {report['pipeline']} ({report['metadata']}):"]
    for run in report["runs"]:
        marker = "*" if run["run_id"] == report["run"]["run_id"] else " "
        lines.append(f" {marker} {run['run_id']:<28} {run['started']}  {run['status']}")
    lines += ["", f"Run {report['run']['run_id']}: {report['run']['status']}", "  components:"]
    for c in report["components"]:
        how = "cached" if c["cached"] else ("executed" if c["state"] == "COMPLETE" else c["state"].lower())
        lines.append(f"    {c['component']:<28} {how:<9} {c['seconds']:>7.1f} s")
    if report["ingestion"]:
        lines.append("  raw records: " + ingestion_line(report["ingestion"]))
    if report["splits"]:
        lines.append("  rows per split: " + ", ".join(f"{k} {v:,}" for k, v in report["splits"].items()))
    if report["anomalies"] is not None:
        lines.append("  schema anomalies: " + ("none" if not report["anomalies"] else ""))
        lines += [f"    {a}" for a in report["anomalies"]]
    if report["accepted_anomalies"]:
        lines.append("  anomalies accepted by override (--accept-anomalies):")
        lines += [f"    {a}" for a in report["accepted_anomalies"]]
    if report["evaluation"]:
        lines.append("  evaluation (test split):")
        header = "".join(f"{label:>16}" for label in evaluation_view.METRIC_LABELS.values())
        lines.append(f"    {'slice':<34}{header}")
        for s in report["evaluation"]:
            cells = "".join(
                f"{s['metrics'][k]:>16,.0f}" if k == "example_count" else f"{s['metrics'][k]:>16.4f}"
                for k in evaluation_view.METRIC_LABELS
                if k in s["metrics"]
            )
            lines.append(f"    {s['slice']:<34}{cells}")
    decision = report["decision"]
    if decision:
        lines += [f"  {line}" for line in decision_view.text_lines(decision)]
        lines.append(f"    baseline: {decision['baseline_model'] or 'none (first)'}")
    if report.get("ranking"):
        lines += ranking_view.text_lines(report["ranking"])
    pushed = report["pushed"]
    lines.append(f"  pushed: version {pushed['version']} → {pushed['destination']}" if pushed else "  pushed: nothing")
    if report["lineage"]:
        lines.append("  lineage of the pushed model:")
        lines += lineage_lines(report["lineage"])
    return lines
