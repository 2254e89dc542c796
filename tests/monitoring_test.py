"""The request log and the later-ratings file `recommender monitor` reads (no model needed)."""

import json

import numpy as np
import pytest

from recommender.monitoring import drift, requests


def _record(**changes) -> dict:
    result = {"known_user": True, "movies": [{"movie_id": "7", "title": "T", "genres": "Drama", "score": 1.5,
                                              "predicted_rating": 4.2}]}  # fmt: skip
    return {**requests.recommend_record("3", "42", [("50", 5.0)], 10, 0.0, result), **changes}


def test_the_log_keeps_good_lines_and_counts_bad_ones_by_reason(tmp_path):
    path = tmp_path / "requests.jsonl"
    requests.append(str(path), _record())
    requests.append(str(path), {"kind": "predict", "features": {"user_id": "1"}, "predicted_rating": 3.0})
    with open(path, "a") as handle:
        handle.write(json.dumps(_record(extra=1)) + "\n")  # an unknown field
        handle.write(json.dumps({"kind": "recommend"}) + "\n")  # fields missing
        handle.write("[1, 2]\n\n")  # not an object; a blank line is not counted
        handle.write(json.dumps({"kind": "rate"}) + "\n")  # an unknown kind
        handle.write(json.dumps(_record())[:40])  # cut mid-line by a crash
    log = requests.read([str(path)])
    assert [r["kind"] for r in log.records] == ["recommend", "predict"]
    assert dict(log.bad) == {
        "unknown fields (extra)": 1,
        "missing fields (returned, user_id)": 1,
        "not a JSON object": 1,
        "unknown kind 'rate'": 1,
        "truncated or not JSON": 1,
    }
    assert log.bad_count == 5 and log.examples[0] == f"{path}:3: unknown fields (extra)"


def test_traffic_rows_from_both_kinds_of_line():
    predict = {"kind": "predict", "features": {"user_id": "1", "movie_id": "2", "rating": 4.0}, "predicted_rating": 3.5}
    rows, predicted = drift.traffic_rows([_record(), predict])
    assert rows == [{"user_id": "42", "movie_id": "7"}, {"user_id": "1", "movie_id": "2"}]  # no label from a log
    assert predicted == [4.2, 3.5]


@pytest.mark.parametrize(
    "text",
    [
        "userId,movieId,rating,timestamp\r\n1,10,4.5,99\r\n2,20,3,98\r\n",  # ml-20m+ ratings.csv, CRLF
        "\ufeffuser_id,rating,movie_id\n1,4.5,10\n2,3,20\n",  # BOM, reordered columns
        "1\t10\t4.5\t99\n2\t20\t3\t98\n",  # u.data
    ],
)
def test_later_ratings_in_each_layout(tmp_path, text):
    path = tmp_path / "ratings"
    path.write_text(text, encoding="utf-8")
    assert drift.read_ratings(str(path)) == {("1", "10"): 4.5, ("2", "20"): 3.0}


def test_later_ratings_with_a_bad_line_name_it(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("userId,movieId,rating\n1,10,4\n2,20,lots\n")
    with pytest.raises(ValueError, match=r"ratings.csv:3: expected user, movie and rating"):
        drift.read_ratings(str(path))


def test_live_quality_is_rmse_over_rated_predictions_and_ndcg_over_lists():
    predicts = [
        {"kind": "predict", "features": {"user_id": "1", "movie_id": m}, "predicted_rating": p}
        for m, p in (("10", 4.0), ("11", 2.0), ("12", 3.0))
    ]
    listed = _record(user_id="1", returned=[{"movie_id": m, "score": 0, "predicted_rating": 3} for m in ("11", "99")])
    live = drift.live_quality([*predicts, listed], {("1", "10"): 5.0, ("1", "11"): 2.0})  # movie 12: not rated yet
    assert live["rated_predictions"] == 2 and live["rmse"] == pytest.approx((1.0 / 2) ** 0.5)
    # The list hits "11" at rank 1 of the user's two later movies: DCG 1, ideal 1 + 1/log2(3).
    assert live["scored_lists"] == 1 and live["ndcg"] == pytest.approx(1 / (1 + 1 / 1.584962500721156))


def _num_stats(values):
    (feature,) = drift.statistics([{"x": v} for v in values]).datasets[0].features
    return feature.num_stats


def test_decile_divergence_is_zero_on_the_same_data_large_on_shifted_data_and_ignores_a_sentinel():
    rng = np.random.default_rng(0)
    years = [int(y) for y in rng.integers(1930, 1998, size=5000)]
    training = _num_stats([*years, *[0] * 9])  # nine ratings of a movie of unknown year (the sentinel 0)
    assert drift.decile_divergence(years, training) < 0.01  # the same data without the sentinel
    assert drift.decile_divergence([int(y) for y in rng.integers(1930, 1998, size=2000)], training) < 0.02
    assert drift.decile_divergence([y + 40 for y in years[:2000]], training) > 0.3
    # Ties (most counts are 0) merge into one bin: the same data still scores ~0.
    counts = [0] * 3000 + list(range(1, 1001))
    assert drift.decile_divergence(counts, _num_stats(counts)) < 0.01
    assert drift.decile_divergence([0] * 4000, _num_stats(counts)) > 0.1
