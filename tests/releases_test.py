"""Fetching releases other than ml-100k: checksums, extraction, the record of what was used; `data synth` errors."""

import hashlib
import zipfile

import pytest
from cli_test import cli, one_error_line

from components.example_gen import dataset, layouts, releases, synthetic_release


def _zip_release(tmp_path, name: str, layout: str):
    """A zip laid out like GroupLens' (`<name>/<files>`), of a small generated release in `layout`."""
    files = synthetic_release.write(tmp_path / f"src-{name}", layout, synthetic_release.SynthSpec(500, 20, 50, seed=1))
    archive = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(files.iterdir()):
            out.write(path, f"{name}/{path.name}")
        out.writestr(f"{name}/README.txt", "generated")
    return archive


def test_every_release_has_an_https_url_a_layout_and_a_pinned_md5_unless_republished():
    assert set(releases.RELEASES) == {
        "ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m", "ml-latest-small", "ml-latest",
    }  # fmt: skip
    for release in releases.RELEASES.values():
        assert release.url.startswith("https://files.grouplens.org/datasets/movielens/")
        assert release.layout in layouts.LAYOUTS
        assert (release.md5 is None) == release.name.startswith("ml-latest")


def test_a_mirror_that_is_not_the_official_zip_is_refused_and_nothing_is_written(tmp_path):
    archive = _zip_release(tmp_path, "ml-25m", layouts.CSV)
    root = tmp_path / "data"
    with pytest.raises(dataset.DataVerificationError, match="does not match ml-25m's 6b51fb2759a8657d3bfcbfc42b592ada"):
        releases.fetch("ml-25m", root, mirror=archive)
    assert not (root / "ml-25m").exists()


def test_ml_latest_verifies_against_the_published_md5_beside_the_mirror_and_records_what_it_used(tmp_path):
    archive = _zip_release(tmp_path, "ml-latest-small", layouts.CSV)
    md5 = hashlib.md5(archive.read_bytes(), usedforsecurity=False).hexdigest()
    (tmp_path / "ml-latest-small.zip.md5").write_text(f"MD5 (ml-latest-small.zip) = {md5}\n")
    root = tmp_path / "data"
    target = releases.fetch("ml-latest-small", root, mirror=archive)
    assert target == root / "ml-latest-small"
    assert layouts.detect(str(target)).name == layouts.CSV
    assert sorted(p.name for p in target.iterdir()) == ["README.txt", "movies.csv", "ratings.csv"]
    assert (root / "ml-latest-small.sha256").read_text().split()[0] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert releases.fetch("ml-latest-small", root, mirror=archive) == target  # a second fetch reuses it

    (tmp_path / "ml-latest-small.zip.md5").write_text("0" * 32 + "  ml-latest-small.zip\n")
    with pytest.raises(dataset.DataVerificationError, match="does not match"):
        releases.fetch("ml-latest-small", tmp_path / "other", mirror=archive)


def test_a_zip_holding_another_layout_than_the_release_is_refused(tmp_path):
    archive = _zip_release(tmp_path, "ml-latest", layouts.ML_1M)
    (tmp_path / "ml-latest.zip.md5").write_text(hashlib.md5(archive.read_bytes(), usedforsecurity=False).hexdigest())
    with pytest.raises(dataset.DataVerificationError, match="holds the ml-1m layout, not ml-latest's"):
        releases.fetch("ml-latest", tmp_path / "data", mirror=archive)
    assert not (tmp_path / "data" / "ml-latest").exists()


def test_fetch_and_synth_errors_are_one_line(tmp_path):
    bad = tmp_path / "ml-1m.zip"
    bad.write_bytes(b"garbage")
    line = one_error_line(
        cli("data", "fetch", "--dataset", "ml-1m", "--mirror", str(bad), "--data-root", str(tmp_path))
    )
    assert "does not match ml-1m's c4d9eecfca2ab87c1945afe126590906" in line
    line = one_error_line(cli("data", "synth", "--ratings", "1000", "--users", "2", "--movies", "3", "--output", "x"))
    assert "1,000 ratings do not fit 2 users × 3 movies" in line
