"""The rating gate's comparison with the last blessed model: paired test RMSE, bootstrapped over users.

Both models score the same test ratings through `serving_default` (what TFMA and TF Serving call), so
the difference candidate − baseline is paired: the noise both share (which users happen to be in the
test period) cancels. Its uncertainty comes from resampling **users** with replacement, not ratings:
a user's ratings are not independent of each other (one user's taste moves all of their errors).

A candidate is blessed when the upper end of the difference's two-sided interval (CONFIDENCE) is at
most `margin`: not worse than the baseline by more than the margin, with that confidence
(non-inferiority). The draws come from a fixed seed, so the same models and data always get the same
decision. Called by the RankingEvaluator, which holds the final blessing.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf

from transform import features as f

CONFIDENCE = 0.95
DRAWS = 1000
SEED = 0
BATCH = 4096


@dataclasses.dataclass(frozen=True)
class UserErrors:
    """Per test user: how many ratings, and each model's sum of squared errors on them (same order)."""

    users: list[str]
    counts: np.ndarray
    candidate: np.ndarray
    baseline: np.ndarray | None = None


def records(examples_uri: str, split: str) -> tf.data.Dataset:
    """`split`'s serialized examples in batches of BATCH, its files in name order; no files is an error."""
    files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
    if not files:
        raise FileNotFoundError(f"no examples under {os.path.join(examples_uri, f'Split-{split}')}")
    return tf.data.TFRecordDataset(files, compression_type="GZIP").batch(BATCH)


def _predict(model, batch: tf.Tensor) -> np.ndarray:
    return model.signatures[f.SERVING_SIGNATURE](examples=batch)[f.PREDICTION_KEY].numpy().reshape(-1)


def squared_errors(examples_uri: str, split: str, candidate, baseline=None) -> UserErrors:
    """Streams `split`'s examples once through each loaded SavedModel's serving_default; sums per user."""
    index: dict[bytes, int] = {}
    rows, errors = [], {"candidate": [], "baseline": []}
    spec = {f.USER_ID: tf.io.FixedLenFeature([], tf.string), f.LABEL_KEY: tf.io.FixedLenFeature([], tf.float32)}
    models = {"candidate": candidate, "baseline": baseline}
    for batch in records(examples_uri, split):
        parsed = tf.io.parse_example(batch, spec)
        rows.append(np.array([index.setdefault(u, len(index)) for u in parsed[f.USER_ID].numpy().tolist()]))
        labels = parsed[f.LABEL_KEY].numpy()
        for name, model in models.items():
            if model is not None:
                errors[name].append((_predict(model, batch) - labels).astype(np.float64) ** 2)
    if not rows:
        raise ValueError(f"the {split} split has no ratings to compare the models on")
    rows_all = np.concatenate(rows)
    n = len(index)

    def per_user(name: str) -> np.ndarray:
        return np.bincount(rows_all, weights=np.concatenate(errors[name]), minlength=n)

    return UserErrors(
        users=[u.decode() for u in index],
        counts=np.bincount(rows_all, minlength=n).astype(np.float64),
        candidate=per_user("candidate"),
        baseline=per_user("baseline") if baseline is not None else None,
    )


def resample(n_users: int, draws: int = DRAWS, seed: int = SEED):
    """The bootstrap's draws, one at a time: indices of `n_users` users drawn with replacement."""
    rng = np.random.default_rng(seed)
    for _ in range(draws):
        yield rng.integers(0, n_users, size=n_users)


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap(errors: UserErrors, draws: int = DRAWS, seed: int = SEED, confidence: float = CONFIDENCE) -> dict:
    """Test RMSE with its interval, and (with a baseline) the baseline's RMSE and the paired difference's."""
    n = len(errors.users)
    candidate, baseline = [], []
    for chosen in resample(n, draws, seed):
        weights = np.bincount(chosen, minlength=n)
        ratings = weights @ errors.counts
        candidate.append(np.sqrt(weights @ errors.candidate / ratings))
        if errors.baseline is not None:
            baseline.append(np.sqrt(weights @ errors.baseline / ratings))
    total = errors.counts.sum()
    result = {
        "users": n,
        "ratings": int(total),
        "draws": draws,
        "seed": seed,
        "confidence": confidence,
        "rmse": float(np.sqrt(errors.candidate.sum() / total)),
    }
    result["rmse_low"], result["rmse_high"] = _interval(np.array(candidate), confidence)
    if errors.baseline is not None:
        result["baseline_rmse"] = float(np.sqrt(errors.baseline.sum() / total))
        result["difference"] = result["rmse"] - result["baseline_rmse"]
        result["difference_low"], result["difference_high"] = _interval(
            np.array(candidate) - np.array(baseline), confidence
        )
    return result


def decide(comparison: dict, margin: float) -> tuple[bool, str | None]:
    """(not worse than the baseline by more than `margin`, the reason when it is); no baseline: passes."""
    if "difference" not in comparison:
        return True, None
    if comparison["difference_high"] <= margin:
        return True, None
    return False, (
        f"test RMSE {comparison['rmse']:.4f} vs the last blessed model's {comparison['baseline_rmse']:.4f}: "
        f"the difference's {comparison['confidence']:.0%} interval over users "
        f"[{comparison['difference_low']:+.4f}, {comparison['difference_high']:+.4f}] reaches above the margin "
        f"+{margin:g}"
    )


def compare(examples_uri: str, split: str, candidate, baseline, margin: float, draws: int = DRAWS) -> dict:
    """The whole comparison of two loaded SavedModels on `split`: bootstrap figures + margin + decision."""
    comparison = bootstrap(squared_errors(examples_uri, split, candidate, baseline), draws)
    noninferior, reason = decide(comparison, margin)
    return comparison | {"margin": margin, "noninferior": noninferior, "reason": reason}
