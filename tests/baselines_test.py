"""The online reference (benchmarks/baselines.py online_biases): strictly earlier events only."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is scripts, not an installed package
from benchmarks import baselines  # noqa: E402


def ratings(seed: int = 0, n: int = 400) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack(
        [rng.integers(1, 20, n), rng.integers(1, 30, n), rng.integers(1, 6, n), rng.integers(0, 200, n)], axis=1
    )


def test_a_prediction_never_sees_its_own_second_or_later():
    data = ratings()
    before = baselines.online_biases(data, 5.0, 10.0)
    cutoff = 100
    changed = data.copy()
    later = changed[:, 3] >= cutoff
    changed[later, 2] = 6 - changed[later, 2]  # every rating at the cutoff second and after
    after = baselines.online_biases(changed, 5.0, 10.0)
    at_or_before = data[:, 3] <= cutoff  # the cutoff second itself is predicted before it is counted
    assert np.array_equal(before[at_or_before], after[at_or_before])
    assert (before[data[:, 3] > cutoff] != after[data[:, 3] > cutoff]).mean() > 0.9  # the test can fail


def test_by_hand():
    # user, movie, rating, second: the first rating knows nothing; the next knows the first.
    data = np.array([[1, 1, 5, 0], [2, 1, 3, 1], [1, 2, 4, 2]])
    predicted = baselines.online_biases(data, reg_user=1.0, reg_movie=1.0)
    assert predicted[0] == 3.5  # no earlier rating: the prior mean
    # Counted at second 0 against the estimates of its time (mu 3.5): movie 1 and user 1 residuals +1.5.
    assert predicted[1] == 5.0 + 1.5 / (1 + 1)  # mu 5, movie 1's bias; user 2 unknown
    # Second 2: mu (5+3)/2; movie 2 unknown; user 1's bias 1.5 / (1 + 1).
    assert predicted[2] == 4.0 + 0.0 + 1.5 / 2
