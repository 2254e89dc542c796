"""Evaluation protocols: how ExampleGen assigns ratings to the (train, eval, test) splits.

No TensorFlow here: the config and the CLI validate protocol names without importing it.
"""

from __future__ import annotations

TIME = "time"  # the seed notebook's split by time range (movielens.TimeSplit); the default
# The same split, with histories frozen at the end of the eval period: test ratings feed no history, so a
# test rating knows only train and eval events (the seed's setting, and that of references fitted once).
TIME_FROZEN = "time-frozen"
STRATIFIED = "stratified"  # per user, a random share of their ratings to each split (Microsoft Recommenders)
FOLDS = ("u1", "u2", "u3", "u4", "u5")  # the classic folds shipped in the zip: test = uK.test
PROTOCOLS = (TIME, TIME_FROZEN, STRATIFIED, *FOLDS)
# Stratified: 75% train / 25% test per user as in Microsoft Recommenders' benchmark, with the eval
# split (early stopping, tuning) carved out of the 75%. Folds: eval is this share of uK.base.
STRATIFIED_FRACTIONS = (0.65, 0.10, 0.25)
FOLD_EVAL_FRACTION = 0.1


def check(protocol: str) -> str:
    """`protocol`, or ValueError naming the known ones."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown split protocol {protocol!r}; one of: {', '.join(PROTOCOLS)}")
    return protocol


def hides_test(protocol: str) -> bool:
    """Whether test ratings stay out of every history feature.

    In a time split the test ratings are the future: a test rating's history includes the earlier
    test ratings (a live system knows them: the "online" regime). TIME_FROZEN hides them (the "frozen"
    regime: what was known at the end of the eval period). Random protocols draw test ratings from all
    times, and their published numbers assume the test ratings are unknown, so none of them may feed a
    history (not even a later train rating's).
    """
    return check(protocol) != TIME


def by_time(protocol: str) -> bool:
    """Whether the split is the time split (online or frozen), which draws nothing (no seed)."""
    return check(protocol) in (TIME, TIME_FROZEN)
