"""The rating gate's paired bootstrap over users (components/evaluator/paired.py), against brute force."""

import numpy as np
import pytest

from components.evaluator import paired


def ratings(seed: int = 0, users: int = 40) -> list[dict]:
    """Per user, each rating's squared error under a candidate and a baseline (users differ in count and taste)."""
    rng = np.random.default_rng(seed)
    result = []
    for _ in range(users):
        n = int(rng.integers(1, 30))
        base = rng.normal(0, rng.uniform(0.5, 1.5), n)
        result.append({"candidate": (base + rng.normal(0.05, 0.3, n)) ** 2, "baseline": base**2})
    return result


def summed(per_user: list[dict]) -> paired.UserErrors:
    return paired.UserErrors(
        users=[str(u) for u in range(len(per_user))],
        counts=np.array([len(u["baseline"]) for u in per_user], float),
        candidate=np.array([u["candidate"].sum() for u in per_user]),
        baseline=np.array([u["baseline"].sum() for u in per_user]),
    )


def test_the_interval_is_a_brute_force_bootstrap_of_the_same_draws_over_users():
    per_user = ratings()
    result = paired.bootstrap(summed(per_user), draws=300, seed=7)
    candidate, differences = [], []
    for chosen in paired.resample(len(per_user), 300, 7):
        # Every rating of every drawn user, a user drawn twice counted twice.
        c = np.concatenate([per_user[u]["candidate"] for u in chosen])
        b = np.concatenate([per_user[u]["baseline"] for u in chosen])
        candidate.append(np.sqrt(c.mean()))
        differences.append(np.sqrt(c.mean()) - np.sqrt(b.mean()))
    assert (result["rmse_low"], result["rmse_high"]) == pytest.approx(tuple(np.percentile(candidate, [2.5, 97.5])))
    assert (result["difference_low"], result["difference_high"]) == pytest.approx(
        tuple(np.percentile(differences, [2.5, 97.5]))
    )
    everything_c = np.concatenate([u["candidate"] for u in per_user])
    everything_b = np.concatenate([u["baseline"] for u in per_user])
    assert result["rmse"] == pytest.approx(np.sqrt(everything_c.mean()))
    assert result["difference"] == pytest.approx(np.sqrt(everything_c.mean()) - np.sqrt(everything_b.mean()))
    assert result["ratings"] == len(everything_c) and result["users"] == len(per_user)


def test_draws_resample_users_not_ratings_and_are_fixed_by_the_seed():
    first = list(paired.resample(50, 5, seed=3))
    assert all(len(d) == 50 and d.min() >= 0 and d.max() < 50 for d in first)
    assert all(len(set(d)) < 50 for d in first)  # with replacement
    assert all((a == b).all() for a, b in zip(first, paired.resample(50, 5, seed=3), strict=True))
    assert any((a != b).any() for a, b in zip(first, paired.resample(50, 5, seed=4), strict=True))


def test_an_identical_candidate_passes_with_a_zero_width_interval():
    errors = summed(ratings())
    same = paired.UserErrors(errors.users, errors.counts, errors.baseline, errors.baseline)
    result = paired.bootstrap(same)
    assert result["difference"] == result["difference_low"] == result["difference_high"] == 0.0
    assert paired.decide(result, margin=0.0) == (True, None)


def test_a_clearly_worse_candidate_is_refused_with_its_interval_named():
    errors = summed(ratings())
    worse = paired.UserErrors(errors.users, errors.counts, errors.baseline * 1.5, errors.baseline)
    result = paired.bootstrap(worse)
    assert result["difference_low"] > 0.1
    passed, reason = paired.decide(result, margin=0.005)
    assert not passed
    assert f"[{result['difference_low']:+.4f}, {result['difference_high']:+.4f}]" in reason and "+0.005" in reason


def test_inside_the_noise_the_interval_decides_not_the_point_estimate():
    """A candidate a little worse on average: the point difference is under the margin, but its interval is not."""
    result = paired.bootstrap(summed(ratings()))
    assert 0 < result["difference"] < result["difference_high"]
    margin = (result["difference"] + result["difference_high"]) / 2  # a fixed "+margin" rule would bless
    assert paired.decide(result, margin)[0] is False
    assert paired.decide(result, result["difference_high"])[0] is True
    assert paired.bootstrap(summed(ratings())) == result  # the same models and data: the same decision


def test_without_a_baseline_there_is_only_the_candidates_interval():
    errors = summed(ratings())
    alone = paired.UserErrors(errors.users, errors.counts, errors.candidate)
    result = paired.bootstrap(alone)
    assert "difference" not in result and result["rmse_low"] < result["rmse"] < result["rmse_high"]
    assert paired.decide(result, 0.0) == (True, None)
