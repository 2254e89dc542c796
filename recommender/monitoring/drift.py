"""`recommender monitor`'s checks: served traffic against what the model was trained on, and, when true ratings
arrive, live quality against the Evaluator's.

- Input drift: the logged requests' features against the training split's statistics (the run's StatisticsGen
  output), on every feature both have, each with a threshold. Strings: TFDV's L-infinity comparator over TFDV
  statistics of the requests (`compare`, shared with the report). Numbers: Jensen-Shannon divergence of the
  requests' values over the training split's deciles (`decile_divergence`), not TFDV's comparator: that one
  rebins equal-width histograms over each side's [min, max], so one outlier moves every bucket — measured on
  ML-100k, the training split without its 9 ratings of a movie of unknown year (the sentinel year 0) is at
  divergence 0.61 from the training split on `movie_release_year`, and with them any traffic is at 0.0.
- Output drift: the predicted ratings' distribution against the training labels' (Jensen-Shannon divergence
  through the same comparator, `rating` against `rating`, shown) and their means (alerting).
- Live quality: RMSE of logged predictions against later true ratings, and NDCG@K of logged recommendation lists
  against the users' later ratings, beside the Evaluator's test RMSE and the RankingEvaluator's NDCG@K.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from transform import features as f

# Reported, never alerting: features that grow with time by construction (a timestamp, counts and sums of
# earlier ratings: any later traffic moves away from the training data, measured 0.76 on every month of ML-100k's
# eval and test periods) and identities (new users and movies arriving is the normal life of a recommender, and
# a few heavy users in a small window dominate the ids' L-infinity distance: 0.30 in a month of 1,658 ratings).
GROWING = (f.TIMESTAMP, *f.HISTORY_INT_FEATURES, *f.HISTORY_FLOAT_FEATURES)
IDENTITIES = (f.USER_ID, f.MOVIE_ID, f.MOVIE_TITLE, f.USER_ZIP)
NOT_ALERTING = GROWING + IDENTITIES
DRIFT_THRESHOLD = 0.1  # L-infinity (strings) / Jensen-Shannon (numbers) distance, served vs trained on
# Predictions are smoother than 1..5-star labels, so even an unshifted model is far from them by Jensen-Shannon
# divergence (measured on generated data's eval period: 0.43 unshifted, 0.50 with every prediction +1 star):
# the divergence is shown, and the alert is on the mean predicted rating moving away from the labels' mean.
PREDICTION_SHIFT = 0.25  # stars
RMSE_MARGIN = 0.1  # live RMSE above the Evaluator's by more than this fires
_DRIFT_NAMES = {1: "L-infinity", 2: "Jensen-Shannon"}


def with_comparators(schema, names, threshold: float = DRIFT_THRESHOLD):
    """A copy of `schema` holding only `names`, each with a drift comparator (strings L-inf, numbers JSD)."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    copy = schema_pb2.Schema()
    copy.CopyFrom(schema)
    kept = [feature for feature in copy.feature if feature.name in names]
    del copy.feature[:]
    for feature in kept:
        feature.ClearField("presence")
        feature.ClearField("value_count")
        if feature.type == schema_pb2.BYTES:
            feature.drift_comparator.infinity_norm.threshold = threshold
        else:
            feature.drift_comparator.jensen_shannon_divergence.threshold = threshold
        copy.feature.append(feature)
    copy.ClearField("default_environment")
    for feature in copy.feature:
        feature.ClearField("not_in_environment")
        feature.ClearField("in_environment")
    return copy


def compare(current, baseline, schema) -> list[dict]:
    """TFDV's drift measurements of `current` against `baseline` statistics (comparators from `schema`),
    largest first: [{"feature", "measure", "distance", "threshold", "drifted"}]."""
    import tensorflow_data_validation as tfdv

    anomalies = tfdv.validate_statistics(current, schema, previous_statistics=baseline)
    rows = [
        _row(".".join(info.path.step), _DRIFT_NAMES.get(m.type, str(m.type)), m.value, m.threshold)
        for info in anomalies.drift_skew_info
        for m in info.drift_measurements
    ]
    return sorted(rows, key=lambda r: -r["distance"])


def _numeric_stats(statistics, name: str):
    for feature in statistics.datasets[0].features:
        if ".".join(feature.path.step) == name and feature.HasField("num_stats"):
            return feature.num_stats
    return None


def decile_divergence(values, num_stats) -> float | None:
    """Jensen-Shannon divergence (base 2, 0..1) of `values` against a split's distribution, over the split's
    quantile buckets (TFDV's QUANTILES histogram); tied quantiles merge into one bin. None: no such histogram."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    quantiles = next(
        (h for h in num_stats.histograms if h.type == statistics_pb2.Histogram.QUANTILES and h.buckets), None
    )
    values = np.asarray(values, np.float64)
    if quantiles is None or not len(values):
        return None
    edges = np.unique([b.high_value for b in quantiles.buckets[:-1]])
    expected = np.zeros(len(edges) + 1)
    for bucket in quantiles.buckets:
        point = (
            bucket.low_value if bucket.low_value == bucket.high_value else (bucket.low_value + bucket.high_value) / 2
        )
        expected[np.searchsorted(edges, point, side="right")] += bucket.sample_count
    observed = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1).astype(np.float64)
    p, q = observed / observed.sum(), expected / expected.sum()
    middle = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / middle[mask])))

    return (kl(p) + kl(q)) / 2


def served_drift(rows: list[dict], train, schema, threshold: float = DRIFT_THRESHOLD) -> list[dict]:
    """Every feature of the served `rows` against the training statistics, largest distance first."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    present = {name for row in rows for name in row}
    kinds = {feature.name: feature.type for feature in schema.feature if feature.name in present}
    strings = {name for name, kind in kinds.items() if kind == schema_pb2.BYTES}
    result = compare(statistics([{k: v for k, v in row.items() if k in strings} for row in rows]), train,
                     with_comparators(schema, strings, threshold)) if strings else []  # fmt: skip
    for name in sorted(set(kinds) - strings):
        reference = _numeric_stats(train, name)
        values = [x for row in rows for x in (row.get(name) if isinstance(row.get(name), list) else [row.get(name)])
                  if x is not None]  # fmt: skip
        distance = decile_divergence(values, reference) if reference is not None else None
        if distance is not None:
            result.append(_row(name, "Jensen-Shannon (deciles)", distance, threshold))
    return sorted(result, key=lambda r: -r["distance"])


def _row(feature: str, measure: str, distance: float, threshold: float) -> dict:
    return {
        "feature": feature,
        "measure": measure,
        "distance": distance,
        "threshold": threshold,
        "drifted": distance > threshold,
        "alerts": distance > threshold and feature not in NOT_ALERTING,
    }


def _column(values: list):
    import pyarrow as pa

    lists = [v if isinstance(v, list) else [v] for v in values]
    flat = [x for v in lists for x in v]
    if any(isinstance(x, str) for x in flat):
        return pa.array([[str(x).encode() for x in v] for v in lists], type=pa.list_(pa.binary()))
    if all(isinstance(x, int) and not isinstance(x, bool) for x in flat):
        return pa.array(lists, type=pa.list_(pa.int64()))
    return pa.array([[float(x) for x in v] for v in lists], type=pa.list_(pa.float32()))


def statistics(rows: list[dict]):
    """TFDV statistics (DatasetFeatureStatisticsList) of feature dicts (values: scalars or lists)."""
    import pyarrow as pa
    from tensorflow_data_validation.statistics import stats_impl, stats_options

    names = sorted({name for row in rows for name in row})
    batch = pa.RecordBatch.from_arrays([_column([row.get(n, []) for row in rows]) for n in names], names)
    return stats_impl.generate_statistics_in_memory(batch, stats_options.StatsOptions())


def traffic_rows(records: list[dict]) -> tuple[list[dict], list[float]]:
    """Feature rows of the logged traffic and its predicted ratings.

    A `predict` line is one row (its raw features); a `recommend` line one row per returned movie (user and movie
    ids: the rest of the pair's features are not logged)."""
    rows, predicted = [], []
    for record in records:
        if record["kind"] == "predict":
            rows.append({k: v for k, v in record["features"].items() if k != f.LABEL_KEY})
            predicted.append(float(record["predicted_rating"]))
        else:
            for movie in record["returned"]:
                rows.append({f.USER_ID: str(record["user_id"]), f.MOVIE_ID: str(movie["movie_id"])})
                predicted.append(float(movie["predicted_rating"]))
    return rows, predicted


def read_ratings(path: str) -> dict[tuple[str, str], float]:
    """Later true ratings: a CSV with a header naming user/movie/rating columns (user_id or userId, ...), or
    MovieLens-100k's `u.data` lines (user, movie, rating, timestamp separated by tabs)."""
    with open(path, encoding="utf-8-sig") as handle:
        lines = [line.rstrip("\r\n") for line in handle if line.strip()]
    if not lines:
        return {}
    first = lines[0].replace(",", " ").replace("\t", " ").lower().split()
    names = {"user_id": "user", "userid": "user", "movie_id": "movie", "movieid": "movie", "rating": "rating"}
    if any(name in names for name in first):
        positions = {names[name]: i for i, name in enumerate(first) if name in names}
        body, split = lines[1:], (lambda line: line.split(","))
    else:
        positions, body, split = {"user": 0, "movie": 1, "rating": 2}, lines, (lambda line: line.split())
    if set(positions) != {"user", "movie", "rating"}:
        raise ValueError(f"{path}: the header must name user, movie and rating columns (e.g. userId,movieId,rating)")
    ratings = {}
    for number, line in enumerate(body, 2 if body is not lines else 1):
        fields = split(line)
        try:
            ratings[(fields[positions["user"]].strip(), fields[positions["movie"]].strip())] = float(
                fields[positions["rating"]]
            )
        except (IndexError, ValueError):
            raise ValueError(f"{path}:{number}: expected user, movie and rating, got {line!r}") from None
    return ratings


def live_quality(records: list[dict], ratings: dict[tuple[str, str], float], k: int = 10) -> dict:
    """RMSE of logged predictions that have a true rating, NDCG@k of logged lists against later ratings."""
    from components.ranking_evaluator import metrics

    errors = [
        float(record["predicted_rating"]) - ratings[key]
        for record in records
        if record["kind"] == "predict"
        and (key := (str(record["features"][f.USER_ID]), str(record["features"][f.MOVIE_ID]))) in ratings
    ]
    later = defaultdict(set)
    for user, movie in ratings:
        later[user].add(movie)
    lists = [
        metrics.user_metrics([m["movie_id"] for m in record["returned"]], later[str(record["user_id"])], k)["ndcg"]
        for record in records
        if record["kind"] == "recommend" and later.get(str(record["user_id"]))
    ]
    return {
        "rated_predictions": len(errors),
        "rmse": math.sqrt(float(np.mean(np.square(errors)))) if errors else None,
        "scored_lists": len(lists),
        "ndcg": float(np.mean(lists)) if lists else None,
    }


def label_mean(statistics) -> float:
    """The mean rating of a split's statistics."""
    labels = _numeric_stats(statistics, f.LABEL_KEY)
    if labels is None:
        raise ValueError(f"the statistics have no {f.LABEL_KEY} feature")
    return float(labels.mean)
