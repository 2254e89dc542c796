"""One `recommender monitor` check: a request log (and later ratings) against a run, as data and as HTML."""

from __future__ import annotations

import html
import os

import numpy as np

from pipeline import pipeline as dag
from recommender import inspection
from recommender.monitoring import drift, requests
from transform import features as f


def _training(report: dict):
    """The run's training-split statistics and its schema."""
    import tensorflow_data_validation as tfdv

    uris = report["artifacts"]
    statistics_uri = uris.get(f"{dag.STATISTICS_GEN}.statistics")
    schema_uri = uris.get(f"{dag.SCHEMA_IMPORTER}.schema")
    if not statistics_uri or not schema_uri:
        raise inspection.InspectionError("the run has no training statistics or schema to compare traffic with")
    with inspection.reading("statistics (StatisticsGen)", statistics_uri):
        train = inspection.split_statistics(statistics_uri, "train")
    return train, tfdv.load_schema_text(os.path.join(schema_uri, "schema.pbtxt"))


def _overall(report: dict, metric: str) -> float | None:
    overall = next((s for s in report["evaluation"] if s["feature"] is None), None)
    return overall["metrics"].get(metric) if overall else None


def run_check(
    log: requests.Log,
    report: dict,
    ratings: dict | None = None,
    drift_threshold: float = drift.DRIFT_THRESHOLD,
    prediction_shift: float = drift.PREDICTION_SHIFT,
    rmse_margin: float = drift.RMSE_MARGIN,
) -> dict:
    """Drift of inputs and predictions, and live quality when `ratings` are given; "alerts" lists what fired."""
    if not log.records:
        raise ValueError(f"no readable request in the log ({log.bad_count} malformed lines)")
    train, schema = _training(report)
    rows, predicted = drift.traffic_rows(log.records)
    inputs = drift.served_drift(rows, train, schema, drift_threshold)
    labels = drift.served_drift([{f.LABEL_KEY: p} for p in predicted], train, schema, drift_threshold)
    outputs = [{**row, "feature": "predicted rating vs training labels", "alerts": False} for row in labels]
    mean, trained = float(np.mean(predicted)), drift.label_mean(train)
    alerts = [
        f"input drift: {r['feature']} {r['measure']} {r['distance']:.3f} > {r['threshold']:g}"
        for r in inputs
        if r["alerts"]
    ]
    if abs(mean - trained) > prediction_shift:
        alerts.append(
            f"prediction drift: mean predicted rating {mean:.2f} vs the training labels' {trained:.2f} "
            f"(more than {prediction_shift:g} apart)"
        )
    result = {
        "run": report["run"]["run_id"],
        "requests": len(log.records),
        "bad_lines": dict(log.bad),
        "bad_examples": log.examples,
        "model_versions": sorted({str(r.get("model_version")) for r in log.records}),
        "input_drift": inputs,
        "prediction_drift": outputs,
        "predictions": {"count": len(predicted), "mean": mean, "std": float(np.std(predicted)), "label_mean": trained,
                        "shift": mean - trained, "max_shift": prediction_shift},
        "evaluator": {"rmse": _overall(report, "root_mean_squared_error"),
                      "ndcg": (report.get("ranking") or {}).get("overall", {}).get("ndcg")},
        "live": None,
    }  # fmt: skip
    if ratings is not None:
        live = drift.live_quality(log.records, ratings)
        result["live"] = live
        bound = result["evaluator"]["rmse"]
        if live["rmse"] is not None and bound is not None and live["rmse"] > bound + rmse_margin:
            alerts.append(f"live RMSE {live['rmse']:.3f} > the Evaluator's {bound:.3f} + {rmse_margin:g}")
    result["alerts"] = alerts
    return result


def _drift_line(flag: str, name: str, what: str) -> str:
    return f"  {flag:5}  {name:<28} {what}"


def text_lines(result: dict) -> list[str]:
    """What `recommender monitor` prints."""
    versions = ", ".join(result["model_versions"])
    lines = [f"{result['requests']:,} requests read (run {result['run']}; model versions {versions})"]
    if result["bad_lines"]:
        reasons = "; ".join(f"{n} {why}" for why, n in result["bad_lines"].items())
        lines.append(f"  {sum(result['bad_lines'].values())} malformed lines skipped: {reasons}")
    for row in result["input_drift"][:10]:
        flag = "DRIFT" if row["alerts"] else "grows" if row["drifted"] else "ok"
        what = f"{row['measure']:<15} {row['distance']:.3f} (threshold {row['threshold']:g})"
        lines.append(_drift_line(flag, row["feature"], what))
    p = result["predictions"]
    divergence = "".join(f"; {r['measure']} {r['distance']:.3f}" for r in result["prediction_drift"])
    what = f"mean {p['mean']:.2f} vs the labels' {p['label_mean']:.2f} (max shift {p['max_shift']:g}){divergence}"
    lines.append(_drift_line("DRIFT" if abs(p["shift"]) > p["max_shift"] else "ok", "predicted rating", what))
    live, evaluator = result["live"], result["evaluator"]
    if live:
        for name, value, count, unit, reference in (
            ("RMSE", live["rmse"], live["rated_predictions"], "rated predictions", evaluator["rmse"]),
            ("NDCG@10", live["ndcg"], live["scored_lists"], "recommendation lists", evaluator["ndcg"]),
        ):
            shown = "-" if value is None else f"{value:.3f}"
            known = "-" if reference is None else f"{reference:.3f}"
            lines.append(f"  live {name} {shown} over {count:,} {unit} (Evaluator: {known})")
    lines.append("Alerts: " + ("; ".join(result["alerts"]) if result["alerts"] else "none"))
    return lines


def render_html(result: dict) -> str:
    """A self-contained page (no script, no network), styled like the report."""
    from recommender import report as page

    alerts = "".join(f"<li class='bad'>{html.escape(a)}</li>" for a in result["alerts"]) or "<li class='ok'>none</li>"
    live, evaluator = result["live"], result["evaluator"]
    quality = (
        page.table(
            [
                {
                    "measure": "RMSE",
                    "live": live["rmse"],
                    "evaluator": evaluator["rmse"],
                    "n": live["rated_predictions"],
                },
                {"measure": "NDCG@10", "live": live["ndcg"], "evaluator": evaluator["ndcg"], "n": live["scored_lists"]},
            ]
        )
        if live
        else "<p class='muted'>No later ratings given (--ratings).</p>"
    )
    bad = [{"problem": k, "lines": v} for k, v in result["bad_lines"].items()]
    return "".join(
        [
            "<!doctype html><html><head><meta charset='utf-8'><title>Monitoring</title>",
            f"<style>{page.CSS}</style></head><body>",
            f"<h1>Monitoring: {result['requests']:,} requests against run {html.escape(result['run'])}</h1>",
            f"<h2>Alerts</h2><ul>{alerts}</ul>",
            f"<h2>Input drift (served vs training split)</h2>{page.table(result['input_drift'])}",
            "<h2>Prediction drift (predicted ratings vs training labels)</h2>",
            page.table(result["prediction_drift"]) + page.table([result["predictions"]]),
            f"<h2>Live quality</h2>{quality}",
            f"<h2>Malformed log lines</h2>{page.table(bad)}</body></html>",
        ]
    )
