"""`recommender report`: one self-contained HTML file about a run (no network, images inline, no script).

Numbers come from `inspection.inspect_run` (MLMD + TFMA) and from the artifacts MLMD recorded for the
run: StatisticsGen's statistics, the curated schema, ExampleGen's examples (rating distribution),
the Trainer's history, the Tuner's trials and TFMA's calibration plot.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from collections import Counter
from typing import Any

from recommender import decision_view, evaluation_view, inspection, ranking_view
from recommender.monitoring import drift as monitoring_drift

DRIFT_THRESHOLD = monitoring_drift.DRIFT_THRESHOLD  # L-infinity (strings) / Jensen-Shannon (numbers), train vs test


def feature_table(statistics_uri: str, split: str) -> list[dict]:
    """Per-feature statistics of one split (TFDV FeatureStats)."""
    rows = []
    for feature in inspection.split_statistics(statistics_uri, split).datasets[0].features:
        kind = feature.WhichOneof("stats")
        stats = getattr(feature, kind)
        common = stats.common_stats
        total = common.num_non_missing + common.num_missing
        row = {
            "feature": ".".join(feature.path.step),
            "present": int(common.num_non_missing),
            "missing %": 100.0 * common.num_missing / total if total else 0.0,
        }
        if kind == "num_stats":
            row.update(mean=stats.mean, std=stats.std_dev, min=stats.min, max=stats.max)
        elif kind == "string_stats":
            top = ", ".join(f"{v.value} ({v.frequency:,.0f})" for v in stats.top_values[:3])
            row.update(unique=int(stats.unique), top=top)
        rows.append(row)
    return rows


def drift(statistics_uri: str, schema_uri: str, baseline: str, current: str) -> list[dict]:
    """TFDV drift comparators between two splits, per feature (distance and whether it passes)."""
    import tensorflow_data_validation as tfdv

    schema = tfdv.load_schema_text(os.path.join(schema_uri, "schema.pbtxt"))
    comparators = monitoring_drift.with_comparators(schema, {feature.name for feature in schema.feature})
    current_stats = inspection.split_statistics(statistics_uri, current)
    baseline_stats = inspection.split_statistics(statistics_uri, baseline)
    return monitoring_drift.compare(current_stats, baseline_stats, comparators)


def rating_counts(examples_uri: str, splits: list[str]) -> dict[str, dict[int, int]]:
    """How many ratings of each value (1..5) each split has, read from ExampleGen's examples."""
    import tensorflow as tf

    from transform import features as f

    result = {}
    spec = {f.LABEL_KEY: tf.io.FixedLenFeature([], tf.float32)}
    for split in splits:
        counts: Counter = Counter()
        for batch in inspection.split_examples(examples_uri, split).batch(4096):
            counts.update(int(r) for r in tf.io.parse_example(batch, spec)[f.LABEL_KEY].numpy())
        result[split] = {int(k): int(v) for k, v in sorted(counts.items())}
    return result


# ---- plots -------------------------------------------------------------------------------------
def _png(figure) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _figure(width: float = 6.0, height: float = 3.2, columns: int = 1):
    """A figure and its axes (one row of `columns`), drawn off-screen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, columns, figsize=(width, height))


def plot_rating_distribution(counts: dict[str, dict[int, int]]) -> str:
    figure, axis = _figure()
    width = 0.8 / max(len(counts), 1)
    for i, (split, values) in enumerate(counts.items()):
        total = sum(values.values()) or 1
        ratings = sorted(values)
        offsets = [r + (i - (len(counts) - 1) / 2) * width for r in ratings]
        axis.bar(offsets, [values[r] / total for r in ratings], width, label=f"{split} ({total:,})")
    axis.set(xlabel="rating", ylabel="share of ratings", title="Ratings per split")
    axis.legend()
    return _png(figure)


HISTORY_TITLES = {
    "loss": "loss: MSE, epoch mean (L2 regularization not included)",
    "root_mean_squared_error": "RMSE over the epoch's examples",
}


def plot_history(history: dict[str, list[float]]) -> str:
    """Loss and RMSE per epoch, train and eval; both are epoch means, so loss = RMSE² (model.py)."""
    figure, axes = _figure(10.0, 3.2, columns=2)
    for axis, (metric, title) in zip(axes, HISTORY_TITLES.items(), strict=True):
        for prefix, label in (("", "train"), ("val_", "eval")):
            values = history.get(prefix + metric)
            if values:
                axis.plot(range(1, len(values) + 1), values, marker="o", label=label)
        axis.set(xlabel="epoch")
        axis.set_title(title, fontsize=10)
        axis.legend()
    return _png(figure)


def plot_slices(slices: list[dict], feature: str) -> str:
    rows = [s for s in slices if s["feature"] == feature and "root_mean_squared_error" in s["metrics"]]
    overall = next((s for s in slices if s["feature"] is None), None)
    figure, axis = _figure(7.0, max(2.0, 0.3 * len(rows) + 1.0))
    names = [s["value"] for s in rows]
    values = [s["metrics"]["root_mean_squared_error"] for s in rows]
    bars = axis.barh(names, values, color="#4c72b0")
    for bar, s in zip(bars, rows, strict=True):
        count = s["metrics"].get("example_count", 0)
        axis.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" n={count:,.0f}", va="center", fontsize=8)
    if overall and "root_mean_squared_error" in overall["metrics"]:
        axis.axvline(overall["metrics"]["root_mean_squared_error"], color="#c44e52", linestyle="--", label="overall")
        axis.legend(loc="lower right")
    axis.set(xlabel="test RMSE", title=f"RMSE by {feature}")
    axis.invert_yaxis()
    return _png(figure)


def plot_predictions(buckets: list[dict], test_counts: dict[int, int]) -> str:
    """Left: share of test examples per predicted-rating bucket, actual ratings overlaid (integers, so
    each as one bar of the bucket width, its height scaled to be comparable). Right: calibration."""
    figure, (left, right) = _figure(9.0, 3.4, columns=2)
    total = sum(b["count"] for b in buckets) or 1
    width = buckets[0]["high"] - buckets[0]["low"] if buckets else 0.1
    centers = [(b["low"] + b["high"]) / 2 for b in buckets]
    left.bar(centers, [b["count"] / total for b in buckets], width=width, alpha=0.6, label="predicted")
    actual_total = sum(test_counts.values()) or 1
    ratings = sorted(test_counts)
    shares = [test_counts[r] / actual_total * width for r in ratings]
    left.bar(ratings, shares, width=width, color="#c44e52", alpha=0.8, label="actual (share × bucket width)")
    left.set(xlabel="rating", ylabel="share of test examples", title="Predicted vs actual ratings")
    left.legend(fontsize=8)
    sizes = [max(4.0, 400 * b["count"] / total) for b in buckets]
    right.plot([1, 5], [1, 5], color="grey", linestyle=":", label="perfect calibration")
    predicted, actual = [b["mean_prediction"] for b in buckets], [b["mean_label"] for b in buckets]
    right.scatter(predicted, actual, s=sizes, alpha=0.7, label="bucket (size = count)")
    right.set(xlabel="mean prediction", ylabel="mean actual rating", title="Calibration", xlim=(1, 5), ylim=(1, 5))
    right.legend(fontsize=8, loc="upper left")
    return _png(figure)


# ---- HTML --------------------------------------------------------------------------------------
def plot_diversity(sweep: list[dict]) -> str:
    """NDCG@K and intra-list diversity against the diversity knob."""
    figure, axis = _figure()
    knob = [row["diversity"] for row in sweep]
    axis.plot(knob, [row["ndcg"] for row in sweep], marker="o", label="NDCG")
    axis.plot(knob, [row["intra_list_diversity"] for row in sweep], marker="s", label="intra-list diversity")
    axis.set_xlabel("diversity knob (0 = pure relevance)")
    axis.legend()
    return _png(figure)


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value and abs(value) < 1e-3:
            return f"{value:.3g}"  # learning rates, L2 weights: 1e-05, not 0.0000
        return f"{value:,.4f}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape("" if value is None else str(value))


def table(rows: list[dict], columns: list[str] | None = None) -> str:
    if not rows:
        return "<p><em>none</em></p>"
    columns = columns or list(dict.fromkeys(key for row in rows for key in row))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(row.get(c))}</td>" for c in columns) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(png: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{png}">'


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{font-size:1.6rem}h2{border-bottom:2px solid #4c72b0;padding-bottom:.2rem;margin-top:2.2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.85rem}th,td{border:1px solid #ccc;padding:.25rem .5rem}
th{background:#eef2f8;text-align:left}td{text-align:right}td:first-child{text-align:left}
.ok{color:#2a7d2a;font-weight:bold}.bad{color:#b22;font-weight:bold}img{max-width:100%;display:block;margin:.5rem 0}
code{background:#f4f4f4;padding:0 .2rem}.muted{color:#666;font-size:.85rem}
"""


NO_DATA = "<p class='muted'>No {what} data: {why}.</p>"


def render_html(data: dict) -> str:
    """The report page from `inspect_run` data plus the `extras` collected by `collect`."""
    run, extras = data["run"], data["extras"]
    parts = [
        f"<h1>{html.escape(data['pipeline'])} — run {html.escape(run['run_id'])}</h1>",
        f"<p>Status <b>{html.escape(run['status'])}</b>, started {html.escape(run['started'])}. "
        f"Read from ML Metadata at <code>{html.escape(data['metadata'])}</code>.</p>",
        "<h2>Components</h2>",
        table(
            [{**c, "seconds": f"{c['seconds']:.1f}"} for c in data["components"]],
            ["component", "state", "cached", "seconds"],
        ),
        "<h2>Data</h2>",
        table([{"split": k, "examples": v} for k, v in data["splits"].items()]),
    ]
    if data.get("ingestion"):
        parts.append(f"<p>Raw records: {html.escape(inspection.ingestion_line(data['ingestion']))}</p>")
    if extras.get("rating_counts"):
        parts.append(_img(plot_rating_distribution(extras["rating_counts"]), "rating distribution per split"))
    anomalies = data["anomalies"]
    parts.append("<h3>Schema anomalies</h3>")
    parts.append(
        "<p class='ok'>none</p>"
        if anomalies == []
        else "<ul>" + "".join(f"<li>{html.escape(a)}</li>" for a in anomalies or ["not validated"]) + "</ul>"
    )
    if data.get("accepted_anomalies"):
        parts.append("<h3>Anomalies accepted by override (--accept-anomalies)</h3>")
        parts.append("<ul>" + "".join(f"<li>{html.escape(a)}</li>" for a in data["accepted_anomalies"]) + "</ul>")
    if extras.get("drift"):
        parts.append(f"<h3>Drift, train → test (TFDV comparators, threshold {DRIFT_THRESHOLD})</h3>")
        parts.append(table(extras["drift"]))
    for split, rows in extras.get("feature_stats", {}).items():
        parts.append(f"<h3>Feature statistics: {html.escape(split)}</h3>")
        parts.append(table(rows, ["feature", "present", "missing %", "mean", "std", "min", "max", "unique", "top"]))

    training = data["training"]
    parts.append("<h2>Training</h2>")
    if training["hyperparameters"]:
        parts.append("<h3>Hyperparameters used</h3>")
        parts.append(table([{"name": k, "value": json.dumps(v)} for k, v in training["hyperparameters"].items()]))
    if training["history"]:
        parts.append(_img(plot_history(training["history"]), "loss and RMSE per epoch"))
        parts.append(
            "<p class='muted'>Both are epoch means over the epoch's examples: loss is the MSE without the L2 "
            "regularization (regularization_loss; total_loss adds it), so loss = RMSE².</p>"
        )
        epochs = len(next(iter(training["history"].values())))
        parts.append(
            table([{"epoch": i + 1, **{k: v[i] for k, v in training["history"].items()}} for i in range(epochs)])
        )
    if not training["history"]:
        parts.append(NO_DATA.format(what="training history", why="the Trainer did not complete in this run"))
    parts.append("<h3>Tuner trials</h3>")
    if training["tuner_trials"]:
        score = f"score ({extras.get('tuner_objective', 'objective')}, lower is better)"
        trials = [{(score if k == "score" else k): v for k, v in trial.items()} for trial in training["tuner_trials"]]
        parts.append(table(trials))
    else:
        parts.append("<p>Tuner skipped.</p>")

    parts.append("<h2>Evaluation (test split)</h2>")
    slices = data["evaluation"]
    labels = evaluation_view.METRIC_LABELS
    parts.append(
        table(
            [{"slice": s["slice"], **{labels[k]: v for k, v in s["metrics"].items()}} for s in slices],
            ["slice", *labels.values()],
        )
    )
    if not slices:
        parts.append(NO_DATA.format(what="evaluation", why="the Evaluator did not complete in this run"))
    for feature in dict.fromkeys(s["feature"] for s in slices if s["feature"]):
        parts.append(_img(plot_slices(slices, feature), f"RMSE by {feature}"))
    parts.append("<h3>Predicted vs actual ratings, calibration</h3>")
    if extras.get("calibration"):
        test_counts = extras.get("rating_counts", {}).get(extras.get("test_split"), {})
        parts.append(_img(plot_predictions(extras["calibration"], test_counts), "predicted vs actual, calibration"))
    else:
        parts.append(NO_DATA.format(what="calibration plot", why="the Evaluator wrote no calibration buckets"))

    parts.append(ranking_view.html(data.get("ranking"), table, _img, plot_diversity))
    parts.append("<h2>Decision</h2>")
    decision, pushed = data["decision"], data["pushed"]
    if decision:
        verdict = "<span class='ok'>passed</span>" if decision["blessed"] else "<span class='bad'>refused</span>"
        first, *rest = decision_view.text_lines(decision)
        parts.append(
            f"<p>Rating gate {verdict} ({html.escape(first[first.index('(') + 1 : -1])}).</p><ul>"
            + "".join(f"<li>{html.escape(line)}</li>" for line in rest)
            + "</ul><p>Baseline: "
            f"<code>{html.escape(decision['baseline_model'] or 'none (first blessed model)')}</code>; candidate: "
            f"<code>{html.escape(decision['candidate_model'] or '?')}</code>. The final blessing (rating and "
            "ranking gates) is under Recommendations.</p>"
        )
    else:
        parts.append("<p>The Evaluator did not run in this run.</p>")
    if pushed:
        version, destination = html.escape(pushed["version"]), html.escape(pushed["destination"])
        parts.append(f"<p>Pushed version <b>{version}</b> to <code>{destination}</code>.</p>")
    else:
        parts.append("<p>Nothing was pushed.</p>")
    if data["lineage"]:
        lines = inspection.lineage_lines(data["lineage"], indent="")
        parts.append("<h3>Lineage of the pushed model</h3><pre>" + html.escape("\n".join(lines)) + "</pre>")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(data['pipeline'])} run {html.escape(run['run_id'])}</title><style>{CSS}</style>"
        "</head><body>" + "\n".join(parts) + "</body></html>\n"
    )


def collect(data: dict, splits: tuple[str, str, str]) -> dict:
    """Reads the report's extra figures from the run's artifacts (URIs recorded in MLMD)."""
    from pipeline import pipeline as dag

    artifacts = data["artifacts"]
    train, _, test = splits
    extras: dict[str, Any] = {"test_split": test}
    statistics = artifacts.get(f"{dag.STATISTICS_GEN}.statistics")
    if statistics:
        with inspection.reading("statistics (StatisticsGen)", statistics):
            extras["feature_stats"] = {split: feature_table(statistics, split) for split in data["splits"]}
        schema = artifacts.get(f"{dag.SCHEMA_IMPORTER}.schema")
        if schema and train in data["splits"] and test in data["splits"]:
            with inspection.reading("statistics and schema (drift)", statistics):
                extras["drift"] = drift(statistics, schema, train, test)
    examples = artifacts.get(f"{dag.EXAMPLE_GEN}.examples")
    if examples and data["splits"]:
        with inspection.reading("examples (ExampleGen)", examples):
            extras["rating_counts"] = rating_counts(examples, list(data["splits"]))
    evaluation = artifacts.get(f"{dag.EVALUATOR}.evaluation")
    if evaluation:
        with inspection.reading("evaluation plots (Evaluator)", evaluation):
            extras["calibration"] = evaluation_view.calibration(evaluation)
    if data["training"]["tuner_trials"]:
        from components.tuner.tuner import OBJECTIVE

        extras["tuner_objective"] = OBJECTIVE.name
    return extras


def write_report(data: dict, output: str, splits: tuple[str, str, str] = ("train", "eval", "test")) -> str:
    """Collects the extras, renders the page and writes it atomically; returns the path."""
    data = {**data, "extras": collect(data, splits)}
    page = render_html(data)
    directory = os.path.dirname(os.path.abspath(output))
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".{os.path.basename(output)}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(page)
    os.replace(temporary, output)
    return output
