"""components/identity.py: which data and split a model trained on; what a baseline and a push must match."""

from __future__ import annotations

from components import identity


def _identity(**changes) -> dict:
    return {**identity.identity("/data/ml-100k/", "ml-100k", "time", 0, (0.6, 0.2, 0.2)), **changes}


def test_the_dataset_is_the_release_directorys_name():
    assert _identity()["dataset"] == "ml-100k"
    assert identity.identity("gs://bucket/movielens/ml-25m", "csv", "u1", 0, ())["dataset"] == "ml-25m"


def test_a_baseline_must_share_data_and_split():
    assert identity.baseline_mismatch(_identity(), _identity()) is None
    for changed in ({"split": "stratified", "split_seed": 46}, {"split_seed": 7}, {"dataset": "ml-latest-small"},
                    {"split_fractions": [0.8, 0.1, 0.1]}):  # fmt: skip
        assert identity.baseline_mismatch(_identity(), _identity(**changed)), changed
    assert "saved before training identities" in identity.baseline_mismatch(_identity(), None)


def test_a_push_must_share_the_data_not_the_split():
    assert identity.push_mismatch(_identity(), _identity(split="stratified", split_seed=46)) is None
    assert identity.push_mismatch(_identity(), None) is None  # an older model says nothing: replaceable
    why = identity.push_mismatch(_identity(dataset="ml-latest-small", layout="csv"), _identity())
    assert why == (
        "it serves a model of ml-100k (ml-100k layout), time split; this run's data is ml-latest-small (csv layout), "
        "time split"
    )


def test_the_newest_served_version_and_the_identity_beside_it(tmp_path):
    assert identity.latest_served(str(tmp_path / "none")) is None
    for name in ("9", "10", ".partial-11-abc", "notes"):
        (tmp_path / name).mkdir()
    assert identity.latest_served(str(tmp_path)) == str(tmp_path / "10")
    assert identity.read(str(tmp_path / "10")) is None
    identity.write(str(tmp_path / "10"), _identity())
    assert identity.read(str(tmp_path / "10")) == _identity()
