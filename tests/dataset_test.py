"""Fetching MovieLens from a mirror, with SHA-256 verification."""

import zipfile

import pytest

from components.example_gen import dataset


def test_fetch_from_zip_mirror_verifies_every_member(mirror, tmp_path):
    target = dataset.fetch(tmp_path, mirror=mirror)
    assert target == tmp_path / "ml-100k"
    assert sorted(p.name for p in target.iterdir()) == sorted(dataset.SHA256)
    dataset.verify_directory(target)  # does not raise
    # A second fetch reuses the verified copy (same files, not rewritten).
    mtime = (target / "u.data").stat().st_mtime_ns
    assert dataset.fetch(tmp_path, mirror=mirror) == target
    assert (target / "u.data").stat().st_mtime_ns == mtime


def test_fetch_from_directory_mirror(ml100k_dir, tmp_path):
    target = dataset.fetch(tmp_path / "copy", mirror=ml100k_dir)
    assert (target / "u.data").read_bytes() == (ml100k_dir / "u.data").read_bytes()


def test_corrupted_mirror_is_refused_and_nothing_written(mirror, tmp_path):
    corrupted = tmp_path / "corrupted.zip"
    with zipfile.ZipFile(mirror) as src, zipfile.ZipFile(corrupted, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("/u.data"):
                data = data.replace(b"\t3\t", b"\t4\t", 1)
            dst.writestr(info, data)
    with pytest.raises(dataset.DataVerificationError, match="u.data does not match"):
        dataset.fetch(tmp_path / "out", mirror=corrupted)
    assert not (tmp_path / "out" / "ml-100k").exists()


def test_corrupted_existing_copy_is_replaced(mirror, tmp_path):
    target = dataset.fetch(tmp_path, mirror=mirror)
    (target / "u.user").write_text("tampered")
    dataset.fetch(tmp_path, mirror=mirror)
    dataset.verify_directory(target)


def test_missing_mirror_and_non_https(tmp_path):
    with pytest.raises(dataset.DataVerificationError, match="does not exist"):
        dataset.fetch(tmp_path, mirror=tmp_path / "nope.zip")
    with pytest.raises(dataset.DataVerificationError, match="non-HTTPS"):
        dataset.fetch(tmp_path, url="http://files.grouplens.org/datasets/movielens/ml-100k.zip")
    with pytest.raises(dataset.DataVerificationError, match="not a readable zip"):
        bad = tmp_path / "bad.zip"
        bad.write_bytes(b"not a zip")
        dataset.fetch(tmp_path / "x", mirror=bad)
