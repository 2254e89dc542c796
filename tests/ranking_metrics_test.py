"""Top-K metrics (Microsoft Recommenders' definitions) on hand-computed cases, MMR, and the ranking gate."""

import math

import numpy as np
import pytest
import tensorflow as tf

from components.ranking_evaluator import metrics
from components.ranking_evaluator.component import age_band, blessing_decision
from components.trainer.scoring import mmr_order


def test_one_user_by_hand():
    # Hits at ranks 1 and 3 of 4; 3 relevant movies.
    m = metrics.user_metrics(["a", "x", "b", "y"], {"a", "b", "c"}, k=4)
    assert m["precision"] == 2 / 4 and m["recall"] == 2 / 3
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg"] == pytest.approx((1 + 1 / math.log2(4)) / ideal)
    assert m["map"] == pytest.approx((1 / 1 + 2 / 3) / 3) == m["map_min_k"]  # 3 relevant <= k


def test_the_two_map_denominators_differ_past_k_relevant_movies():
    # A perfect top 2 of 4 relevant movies: MAP over |relevant| = 2/4, over min(k, |relevant|) = 1.
    m = metrics.user_metrics(["a", "b"], {"a", "b", "c", "d"}, k=2)
    assert m["map"] == pytest.approx(2 / 4) and m["map_min_k"] == pytest.approx(1.0)


def test_k_larger_than_the_list_and_empty_slots():
    # A 2-movie list at k=5 ("" = no movie left): precision still divides by k; NDCG's ideal has min(k, 1) hits.
    m = metrics.user_metrics(["x", "a", ""], {"a"}, k=5)
    assert m["precision"] == 1 / 5 and m["recall"] == 1.0
    assert m["ndcg"] == pytest.approx(1 / math.log2(3)) and m["map"] == pytest.approx(1 / 2)


def test_only_the_first_k_count():
    assert metrics.user_metrics(["x", "y", "a"], {"a"}, k=2) == {
        "precision": 0,
        "recall": 0,
        "ndcg": 0,
        "map": 0,
        "map_min_k": 0,
    }


def test_users_without_relevant_movies_are_not_scored_and_missing_lists_score_zero():
    ranked = {"u1": ["a", "b"], "u2": ["c", "d"]}
    result = metrics.accuracy(ranked, {"u1": {"a"}, "u2": set(), "u3": {"z"}}, k=2)
    assert result["users"] == 2  # u2 has nothing relevant; u3 has no list
    assert result["precision"] == pytest.approx((1 / 2 + 0) / 2) and result["ndcg"] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        metrics.user_metrics(["a"], set(), k=1)


def test_ties_in_relevance_keep_the_lists_order():
    # Two lists with the same movies, two relevant: the metrics depend on positions only.
    first = metrics.user_metrics(["a", "b", "x"], {"a", "b"}, k=3)
    second = metrics.user_metrics(["b", "a", "x"], {"a", "b"}, k=3)
    assert first == second and first["ndcg"] == pytest.approx(1.0)


def test_beyond_accuracy_by_hand():
    genres = {"a": {"Drama"}, "b": {"Drama"}, "c": {"Comedy"}, "d": {"Drama", "Comedy"}}
    counts = {"a": 8, "b": 4, "c": 2, "d": 1, "e": 1, "f": 1, "g": 1, "h": 1, "i": 1, "j": 1}
    result = metrics.beyond_accuracy({"u1": ["a", "b"], "u2": ["a", "c"]}, genres, counts, users=8)
    assert result["coverage"] == 3 / 10
    assert result["novelty"] == pytest.approx(np.mean([0, 1, 0, 2]))  # -log2(8/8), -log2(4/8), ...
    assert result["intra_list_diversity"] == pytest.approx(np.mean([0.0, 1.0]))  # Drama/Drama, Drama/Comedy
    assert result["popularity"] == pytest.approx(np.mean([8, 4, 8, 2])) and result["head_share"] == 0.5
    assert metrics.intra_list_diversity(["a", "d"], genres) == pytest.approx(1 - 1 / math.sqrt(2))


def test_mmr_without_diversity_is_the_relevance_order_and_with_it_avoids_similar_movies():
    relevance = tf.constant([[0.9, 0.8, 0.7, float("-inf")]])
    # Movies 0 and 1 are identical in genre; 2 differs.
    similarity = tf.constant([[[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0] * 4]])
    order = lambda d, k: mmr_order(relevance, similarity, tf.constant(d), tf.constant(k)).numpy().tolist()  # noqa: E731
    assert order(0.0, 4) == [[0, 1, 2, 3]]  # the invalid candidate comes last
    assert order(0.6, 3) == [[0, 2, 1]]  # after movie 0, movie 1 scores 0.4 × 0.5 - 0.6 < 0.4 × 0 - 0
    assert order(0.0, 0) == [[]]


def test_the_gate():
    assert blessing_decision(0.30, True, 0.2, 0.31, 0.02) == (True, [])
    blessed, reasons = blessing_decision(0.30, True, 0.2, 0.33, 0.02)
    assert not blessed and "fell more than 0.02 below the last blessed model's 0.3300" in reasons[0]
    assert blessing_decision(0.30, True, 0.35, None, 0.02)[0] is False
    assert blessing_decision(0.30, False, 0.0, None, 0.02)[1] == [
        "the Evaluator did not bless the model (test RMSE above the bound)"
    ]
    refused = {"noninferior": False, "reason": "test RMSE 0.9600 vs ... above the margin +0.005"}
    assert blessing_decision(0.30, True, 0.0, None, 0.02, refused) == (False, [refused["reason"]])
    assert blessing_decision(0.30, True, 0.0, None, 0.02, {"noninferior": True, "reason": None}) == (True, [])
    assert blessing_decision(float("nan"), True, 0.0, None, 0.02)[0] is False


def test_age_bands_match_the_transform():
    assert [age_band(a) for a in (7, 18, 24, 25, 49, 50, 56, 80)] == [
        "under_18", "18-24", "18-24", "25-34", "45-49", "50-55", "56_plus", "56_plus",
    ]  # fmt: skip
