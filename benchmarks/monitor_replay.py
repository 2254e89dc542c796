"""Replay a run's eval and test periods month by month as served traffic and plot what `recommender monitor` sees.

    python benchmarks/monitor_replay.py [--pipeline-root artifacts/pipeline] [--serving-dir artifacts/serving]
                                        [--plot docs/monitor_replay.png] [--write-logs artifacts/replay]

Each rating of the run's eval and test splits becomes a `predict` request (its raw serving features) scored by
the newest pushed model; the month's true ratings arrive "later". Per month: the largest input drift among the
features that alert (and the largest among those that grow with time by construction), the predicted ratings'
mean shift from the training labels, live RMSE beside the Evaluator's, and the alerts. Prints the table and
draws the curves.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from recommender.inspection import inspect_run  # noqa: E402
from recommender.monitoring import check, replay, requests  # noqa: E402
from recommender.recommendations import newest_version  # noqa: E402
from transform import features as f  # noqa: E402


def month(timestamp: int) -> str:
    return datetime.datetime.fromtimestamp(int(timestamp), datetime.timezone.utc).strftime("%Y-%m")


def write_month(directory: str, name: str, records: list[dict], rows: list[dict]) -> None:
    """`<name>.jsonl` (the request log) and `<name>-ratings.csv` (the true ratings) for `recommender monitor`."""
    os.makedirs(directory, exist_ok=True)
    for record in records:
        requests.append(os.path.join(directory, f"{name}.jsonl"), record)
    with open(os.path.join(directory, f"{name}-ratings.csv"), "w", encoding="utf-8") as handle:
        handle.write("userId,movieId,rating\n")
        handle.writelines(f"{r[f.USER_ID]},{r[f.MOVIE_ID]},{r[f.LABEL_KEY]:g}\n" for r in rows)


def replay_months(
    pipeline_root: str, serving_dir: str, model_name: str = "movielens_ranker", logs: str | None = None
) -> list[dict]:
    """One row per calendar month of the eval and test splits (each month's log written under `logs`)."""
    report = inspect_run(os.path.join(pipeline_root, "metadata.sqlite"))
    model_path = newest_version(os.path.join(serving_dir, model_name))
    version = os.path.basename(model_path)
    examples = report["artifacts"]["ExampleGen.examples"]
    by_month = collections.defaultdict(list)
    for split in ("eval", "test"):
        for row in replay.read_examples(examples, split):
            by_month[(month(row[f.TIMESTAMP]), split)].append(row)
    table = []
    for (name, split), rows in sorted(by_month.items()):
        predictions = replay.predict(model_path, rows)
        log = requests.Log(replay.records(rows, predictions, version), collections.Counter(), [])
        if logs:
            write_month(logs, f"{name}-{split}", log.records, rows)
        result = check.run_check(log, report, replay.true_ratings(rows))
        alerting = [r for r in result["input_drift"] if r["feature"] not in check.drift.NOT_ALERTING]
        growing = [r for r in result["input_drift"] if r["feature"] in check.drift.GROWING]
        top = max(alerting, key=lambda r: r["distance"])
        table.append(
            {
                "month": name,
                "split": split,
                "ratings": len(rows),
                "top_feature": top["feature"],
                "top_drift": top["distance"],
                "growing_drift": max(r["distance"] for r in growing),
                "prediction_shift": result["predictions"]["shift"],
                "live_rmse": result["live"]["rmse"],
                "evaluator_rmse": result["evaluator"]["rmse"],
                "alerts": len(result["alerts"]),
            }
        )
    return table


def plot(table: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['month']}\n{r['split']}" for r in table]
    fig, (drift_axis, rmse_axis) = plt.subplots(1, 2, figsize=(11, 3.6))
    drift_axis.plot(labels, [r["top_drift"] for r in table], "o-", label="largest alerting-feature drift")
    drift_axis.plot(labels, [r["growing_drift"] for r in table], "s--", label="largest growing-feature drift")
    drift_axis.plot(labels, [abs(r["prediction_shift"]) for r in table], "^-", label="|prediction mean shift| (stars)")
    drift_axis.axhline(check.drift.DRIFT_THRESHOLD, color="grey", lw=0.8, ls=":", label="drift threshold 0.1")
    drift_axis.set_title("Drift against the training split, by month")
    drift_axis.legend(fontsize=7)
    rmse_axis.plot(labels, [r["live_rmse"] for r in table], "o-", label="live RMSE")
    rmse_axis.axhline(table[0]["evaluator_rmse"], color="grey", ls="--", label="Evaluator test RMSE")
    rmse_axis.set_title("Live RMSE as true ratings arrive, by month")
    rmse_axis.legend(fontsize=7)
    for axis in (drift_axis, rmse_axis):
        axis.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline-root", default="artifacts/pipeline")
    parser.add_argument("--serving-dir", default="artifacts/serving")
    parser.add_argument("--plot", default="docs/monitor_replay.png")
    parser.add_argument("--write-logs", default=None, help="Write each month's request log and ratings here.")
    args = parser.parse_args()
    table = replay_months(args.pipeline_root, args.serving_dir, logs=args.write_logs)
    print("| month | split | ratings | largest alerting drift | largest growing drift | prediction shift "
          "| live RMSE | Evaluator RMSE | alerts |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for r in table:
        print(
            f"| {r['month']} | {r['split']} | {r['ratings']:,} | {r['top_feature']} {r['top_drift']:.3f} "
            f"| {r['growing_drift']:.3f} | {r['prediction_shift']:+.3f} | {r['live_rmse']:.3f} "
            f"| {r['evaluator_rmse']:.3f} | {r['alerts']} |"
        )
    plot(table, args.plot)
    print(f"Wrote {args.plot}")


if __name__ == "__main__":
    main()
