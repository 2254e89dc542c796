"""Model quality on MovieLens-100k: every model under every protocol, one table (mean ± std over seeds).

    python benchmarks/benchmark.py --data-dir artifacts/data/ml-100k [--seeds 3] [--work-dir artifacts/benchmark]
        [--first-seed 43] [--protocols time,time-frozen,stratified,folds] [--models mean,biases,biases-online,seed,ours]
    python benchmarks/benchmark.py --ranking [--seeds 3] [--protocols time,stratified,folds]   # the top-10 table
        [--ranking-models popular,sar,knn,ease,ours]

Protocols (components/example_gen/splits.py): the seed notebook's time split (test histories online: every
earlier event, test-period ones included) and the same split frozen (`time-frozen`: test histories know only
train and eval events), the per-user
stratified random 75/25 split (Microsoft Recommenders' benchmark protocol; 10 of the 75 points
are the pipeline's eval split), and the five u1..u5 folds of the zip. Seeds 43, 44, ... draw
the stratified split and initialise the models; a fold's split is fixed, so each fold runs once. Seed 42
was used for the choices (features, the Tuner's id-embedding trial; see the README), so it reports nothing.

Models: the train mean; user + movie biases; user + movie biases online (time split only: running sums over
every rating strictly before the one predicted, shrinkage chosen on eval); the seed notebook's TFRS model re-implemented
(benchmarks/seed_model.py); ours = the whole pipeline (`recommender run --split P --seed S`,
its Trainer and Evaluator). The reference models fit on every non-test rating; ours trains on
train and stops early on eval. Test predictions are clipped to [1, 5] for every model.

Columns: RMSE, MAE, RMSE on test ratings of users unseen vs seen in training, training time.
With --ranking: top-10 NDCG, precision, recall, MAP and catalogue coverage (Microsoft Recommenders' protocol,
components/ranking_evaluator/metrics.py) of the references (benchmarks/ranking_baselines.py: most popular,
SAR-like item-item, item-kNN, EASE with its λ chosen on the protocol's eval split and refitted on train + eval)
and ours (its RankingEvaluator), with published ML-100k figures; `--ranking-models` picks rows.
Ours runs in one pipeline root per protocol under --work-dir (so seeds of the time split reuse
ExampleGen and Transform), and each run leaves seed<S>.json there; reference models leave theirs
under reference/. An interrupted benchmark resumes where it stopped, and a finished run is never
recomputed (delete the work dir to start over).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

import numpy as np  # noqa: E402

from benchmarks import baselines, ranking_baselines, seed_model  # noqa: E402
from components.example_gen import splits  # noqa: E402
from components.ranking_evaluator import metrics  # noqa: E402

PUBLISHED = {splits.STRATIFIED: "SVD 0.9387 (MS Recommenders)", "folds": "GC-MC 0.905 (u1)"}
MODELS = ("mean", "biases", "biases-online", "seed", "ours")
MODEL_NAMES = {"mean": "train mean", "biases": "user+movie biases", "biases-online": "user+movie biases, online",
               "seed": "seed's TFRS model", "ours": "ours"}  # fmt: skip
PROTOCOLS = ("time", "time-frozen", "stratified", "folds")
# What a test rating's prediction may know (README "Results"): online = every event strictly before it;
# frozen = what was known at the end of the eval period. References fitted once on the non-test ratings are
# frozen; under the random protocols test ratings are hidden from everything.
REGIMES = {("time", "ours"): "online", ("time", "biases-online"): "online", ("time-frozen", "ours"): "frozen"}


def applies(protocol: str, model: str) -> bool:
    """The online reference exists for the time split only; under time-frozen only ours differs from time's rows."""
    if model == "biases-online":
        return protocol == splits.TIME
    return protocol != splits.TIME_FROZEN or model == "ours"


def regime(protocol: str, model: str) -> str:
    if protocol in (splits.TIME, splits.TIME_FROZEN):
        return REGIMES.get((protocol, model), "frozen")
    return "test hidden"


COLUMNS = ("RMSE", "MAE", "RMSE unseen", "RMSE seen", "train s")
RANKING_MODELS = ("popular", "sar", "knn", "ease", "ours")
RANKING_NAMES = {
    "popular": "most popular",
    "sar": "SAR-like item-item (Jaccard)",
    "knn": "item-kNN (cosine)",
    "ease": "EASE (λ chosen on eval)",
    "ours": "ours (two-tower + EASE item-item, blended on eval, + ranker)",
}
REFERENCE_RECOMMENDERS = {
    "popular": ranking_baselines.most_popular,
    "sar": ranking_baselines.sar,
    "knn": ranking_baselines.item_knn,
}
RANKING_COLUMNS = ("NDCG@10", "P@10", "R@10", "MAP", "coverage")
# Microsoft Recommenders' ML-100k benchmark (top-10, stratified 75/25): NDCG, precision, recall, MAP.
PUBLISHED_RANKING = {
    "SAR": (0.382, 0.331, 0.176, 0.111),
    "BPR": (0.442, 0.388, 0.212, 0.132),
    "BiVAE": (0.475, 0.412, 0.219, 0.146),
}


def runs(protocol: str, seeds: int, first_seed: int = 43) -> list[tuple[str, int]]:
    """(split protocol, seed) pairs of one table row."""
    if protocol == "folds":
        return [(fold, first_seed) for fold in splits.FOLDS]
    return [(protocol, first_seed + i) for i in range(seeds)]


def scores(predictions: np.ndarray, test: np.ndarray, seen: np.ndarray, seconds: float) -> dict[str, float]:
    """The table's columns for clipped predictions of `test` ([n, 4]: user, movie, rating, time)."""
    errors = np.clip(predictions, 1, 5) - test[:, 2]

    def rmse(mask):
        return float(np.sqrt(np.mean(errors[mask] ** 2))) if mask.any() else float("nan")

    return {
        "RMSE": rmse(np.ones(len(test), bool)),
        "MAE": float(np.mean(np.abs(errors))),
        "RMSE unseen": rmse(~seen),
        "RMSE seen": rmse(seen),
        "train s": seconds,
    }


def reference_split(data_dir: Path, protocol: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(every non-test rating, test ratings) of one run, with ExampleGen's own split rules."""
    ratings = baselines.load(data_dir)
    if splits.by_time(protocol):
        return baselines.time_split(ratings)
    if protocol == splits.STRATIFIED:
        return baselines.stratified_split(ratings, seed)
    return baselines.load(data_dir, f"{protocol}.base"), baselines.load(data_dir, f"{protocol}.test")


def reference_model(model: str, data_dir: Path) -> Callable:
    """(train, test, seed) → (predictions, seconds) for the models fitted in this process."""
    titles = seed_model.titles(data_dir)

    def fit(train: np.ndarray, test: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
        started = time.perf_counter()
        if model == "mean":
            predictions = np.full(len(test), train[:, 2].mean())
        elif model == "biases":
            mu, b_user, b_movie = baselines.fit_biases(train)
            predictions = np.array([mu + b_user.get(u, 0.0) + b_movie.get(m, 0.0) for u, m in test[:, :2]])
        else:
            predictions = seed_model.fit_predict(train, test, titles, seed)
        return predictions, time.perf_counter() - started

    return fit


def reference(data_dir: Path, work_dir: Path, model: str, protocol: str, seed: int) -> dict[str, float]:
    """One reference model on one split (kept in work_dir/<protocol>-seed<S>-<model>.json, like ours)."""
    result_file = work_dir / f"{protocol}-seed{seed}-{model}.json"
    if result_file.is_file():
        return json.loads(result_file.read_text())
    train, test = reference_split(data_dir, protocol, seed)
    if model == "biases-online":  # needs every rating in time order, not a fitted (train, test) pair
        started = time.perf_counter()
        predictions, shrinkage = baselines.online_biases_time_split(baselines.load(data_dir))
        print(f"  online biases: shrinkage (user, movie) {shrinkage} chosen on eval", file=sys.stderr)
        seconds = time.perf_counter() - started
    else:
        predictions, seconds = reference_model(model, data_dir)(train, test, seed)
    result = scores(predictions, test, np.isin(test[:, 0], train[:, 0]), seconds)
    work_dir.mkdir(parents=True, exist_ok=True)
    result_file.write_text(json.dumps(result))
    return result


def ours(data_dir: Path, work_dir: Path, protocol: str, seed: int, extra: list[str]) -> dict[str, float]:
    """One whole pipeline run (resumed if its result.json exists); its Evaluator's test metrics."""
    run_dir = work_dir / protocol
    result_file = run_dir / f"seed{seed}.json"
    if result_file.is_file():
        return json.loads(result_file.read_text())
    run_dir.mkdir(parents=True, exist_ok=True)
    root = str(run_dir / "pipeline")
    command = [
        sys.executable, "-m", "recommender.cli", "run", "--input-dir", str(data_dir), "--pipeline-root", root,
        "--serving-dir", str(run_dir / "serving"), "--split", protocol, "--seed", str(seed), *extra,
    ]  # fmt: skip
    print(f"  ours {protocol} seed {seed}: {' '.join(command[2:])}", file=sys.stderr, flush=True)
    log = run_dir / f"seed{seed}.log"
    with log.open("w") as out:
        process = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if process.returncode != 0:
        raise RuntimeError(f"recommender run failed (exit {process.returncode}); see {log}")
    seconds = sum(
        float(s) for s in re.findall(r"^\s+(?:Tuner|Trainer)\s+finished in ([\d.]+) s", log.read_text(), re.M)
    )
    report = subprocess.run(
        [sys.executable, "-m", "recommender.cli", "inspect", "--pipeline-root", root, "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    inspected = json.loads(report.stdout)
    slices = {e["slice"]: e["metrics"] for e in inspected["evaluation"]}
    overall = slices["Overall"]
    ranking = (inspected.get("ranking") or {}).get("overall", {})
    result = {
        "RMSE": overall["root_mean_squared_error"],
        "MAE": overall["mean_absolute_error"],
        "RMSE unseen": slices.get("user_seen_in_train_xf=unseen", {}).get("root_mean_squared_error", float("nan")),
        "RMSE seen": slices.get("user_seen_in_train_xf=seen", {}).get("root_mean_squared_error", float("nan")),
        "train s": seconds,
        **ranking_columns(ranking),
    }
    result_file.write_text(json.dumps(result))
    return result


def ranking_columns(figures: dict) -> dict[str, float]:
    """metrics.accuracy / beyond_accuracy figures under the ranking table's column names."""
    names = {"ndcg": "NDCG@10", "precision": "P@10", "recall": "R@10", "map": "MAP", "coverage": "coverage"}
    return {column: figures.get(name, float("nan")) for name, column in names.items()}


def _ndcg_at_10(lists: dict[int, list[int]], relevant: dict[int, set[int]]) -> float:
    """metrics.accuracy's NDCG@10 of integer-id lists (its ids are strings)."""
    ranked = {str(u): [str(m) for m in movies] for u, movies in lists.items()}
    return metrics.accuracy(ranked, {str(u): {str(m) for m in ms} for u, ms in relevant.items()}, 10)["ndcg"]


def reference_ranking(data_dir: Path, work_dir: Path, model: str, protocol: str, seed: int) -> dict[str, float]:
    """A reference recommender's top-10 figures on one split (kept in work_dir like the rating models')."""
    result_file = work_dir / f"{protocol}-seed{seed}-{model}.json"
    if result_file.is_file():
        return json.loads(result_file.read_text())
    train, test = reference_split(data_dir, protocol, seed)
    relevant: dict[str, set[str]] = {}
    for user, movie in test[:, :2]:
        relevant.setdefault(str(user), set()).add(str(movie))
    chosen = {}
    if model == "ease":  # λ chosen on eval (fitted on train), then refitted on train + eval for test
        inner, held_out, _ = baselines.three_way_split(data_dir, protocol, seed)
        regularization, on_eval = ranking_baselines.choose_ease_regularization(inner, held_out, _ndcg_at_10)
        print(f"  EASE {protocol} seed {seed}: λ {regularization:g} chosen on eval ({on_eval})", file=sys.stderr)
        chosen = {"lambda": regularization}
        recommend = functools.partial(ranking_baselines.ease, regularization=regularization)
    else:
        recommend = REFERENCE_RECOMMENDERS[model]
    lists = recommend(train, [int(u) for u in relevant], 10)
    ranked = {str(u): [str(m) for m in movies] for u, movies in lists.items()}
    counts = {str(m): int(c) for m, c in zip(*np.unique(train[:, 1], return_counts=True), strict=True)}
    figures = {**metrics.accuracy(ranked, relevant, 10), **metrics.beyond_accuracy(ranked, {}, counts, 1)}
    result = {**ranking_columns(figures), **chosen}
    work_dir.mkdir(parents=True, exist_ok=True)
    result_file.write_text(json.dumps(result))
    return result


def model_results(args, protocol: str, model: str, fit_reference: Callable, reference_dir: str, headline: str):
    """One table row's runs: ours (a pipeline run per split and seed) or a reference model, each figure dict."""
    results = []
    for split, seed in runs(protocol, args.seeds, args.first_seed):
        if model == "ours":
            results.append(ours(args.data_dir, args.work_dir / "ours", split, seed, args.ours_args.split()))
        else:
            results.append(fit_reference(args.data_dir, args.work_dir / reference_dir, model, split, seed))
        print(f"  {protocol} {split} seed {seed} {model}: {headline} {results[-1][headline]:.4f}", file=sys.stderr)
    return results


def ranking_table(args) -> None:
    """The top-10 table: reference recommenders and ours, time split and stratified (3 seeds)."""
    rows = []
    for protocol in args.protocols.split(","):
        for model in args.ranking_models.split(","):
            results = model_results(args, protocol, model, reference_ranking, "ranking", "NDCG@10")
            cells = [cell([r[column] for r in results]) for column in RANKING_COLUMNS]
            rows.append(f"| {protocol} | {RANKING_NAMES[model]} | {' | '.join(cells)} |")
        if protocol == splits.STRATIFIED:
            for name, figures in PUBLISHED_RANKING.items():
                published = " | ".join(f"{x:.3f}" for x in figures)
                rows.append(f"| {protocol} | {name} (published, MS Recommenders) | {published} | — |")
    print(f"| protocol | model | {' | '.join(RANKING_COLUMNS)} |")
    print("|---" * (len(RANKING_COLUMNS) + 2) + "|")
    print("\n".join(rows))


def cell(values: list[float], digits: int = 3) -> str:
    values = [v for v in values if not np.isnan(v)]
    if not values:
        return "—"  # e.g. no unseen test users: random splits keep every user in train
    spread = f" ± {np.std(values):.{digits}f}" if len(values) > 1 else ""
    return f"{np.mean(values):.{digits}f}{spread}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("artifacts/data/ml-100k"))
    parser.add_argument("--work-dir", type=Path, default=Path("artifacts/benchmark"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=43, help="Seeds first-seed, +1, ...: 42 made choices.")
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--ours-args", default="", help="Extra `recommender run` arguments, e.g. '--tuner-trials 0'.")
    parser.add_argument("--results", type=Path, help="Also write every run's figures to this JSON file.")
    parser.add_argument("--ranking", action="store_true", help="Print the top-10 table (protocols time,stratified).")
    parser.add_argument(
        "--ranking-models", default=",".join(RANKING_MODELS), help=f"With --ranking: some of {RANKING_MODELS}."
    )
    args = parser.parse_args()
    if args.ranking and args.protocols == ",".join(PROTOCOLS):
        args.protocols = "time,stratified"
    protocols, models = args.protocols.split(","), args.models.split(",")
    unknown = sorted(set(protocols) - set(PROTOCOLS)) + sorted(set(models) - set(MODELS))
    unknown += sorted(set(args.ranking_models.split(",")) - set(RANKING_MODELS))
    if unknown or args.seeds < 1:
        parser.error(f"unknown protocol/model {unknown}, or --seeds < 1")
    if not (args.data_dir / "u.data").is_file():
        parser.error(f"{args.data_dir} is not a MovieLens-100k directory (run `recommender data fetch`)")
    if args.ranking:
        ranking_table(args)
        return

    rows, figures = [], {}
    for protocol in protocols:
        for model in (m for m in models if applies(protocol, m)):
            results = model_results(args, protocol, model, reference, "reference", "RMSE")
            figures[f"{protocol}/{model}"] = results
            cells = [cell([r[column] for r in results], 1 if column == "train s" else 3) for column in COLUMNS]
            name, published = MODEL_NAMES[model], PUBLISHED.get(protocol, "")
            rows.append(f"| {protocol} | {regime(protocol, model)} | {name} | {' | '.join(cells)} | {published} |")
    print(f"| protocol | regime | model | {' | '.join(COLUMNS)} | published |")
    print("|---" * (len(COLUMNS) + 4) + "|")
    print("\n".join(rows))
    if args.results:
        args.results.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
