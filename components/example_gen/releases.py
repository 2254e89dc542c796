"""Getting any MovieLens release onto disk, verified: ml-1m, ml-10m, ml-20m, ml-25m, ml-32m, ml-latest(-small).

ml-100k keeps its member-by-member SHA-256 check (dataset.py). The other releases are verified as whole zips
against the MD5 GroupLens publishes beside each (`<zip>.md5`): pinned here for the frozen releases, so a
tampered download or mirror is refused. `ml-latest` and `ml-latest-small` are re-published over time, so no
checksum can be pinned: the download is checked against the `.md5` fetched from GroupLens at the same time, and
the SHA-256 of what was used is written beside the data (`<name>.sha256`) and printed, so a run can say exactly
which copy it read. The zip is extracted (safely: no absolute paths, `..`, links, or sizes past the release's
bound) into a staging directory renamed into place once complete; a failed fetch never replaces a good copy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from components.example_gen import dataset, layouts
from components.example_gen.dataset import DataVerificationError, Progress

BASE_URL = "https://files.grouplens.org/datasets/movielens"


@dataclasses.dataclass(frozen=True)
class Release:
    name: str
    layout: str
    md5: str | None  # GroupLens' published MD5 of the zip; None for the re-published ml-latest*
    max_bytes: int  # bound on the download and on the expanded size (zip bombs)

    @property
    def url(self) -> str:
        return f"{BASE_URL}/{self.name}.zip"


_GB = 1 << 30
RELEASES = {
    release.name: release
    for release in (
        Release("ml-100k", layouts.ML_100K, "0e33842e24a9c977be4e0107933c0723", dataset.MAX_ARCHIVE_BYTES),
        Release("ml-1m", layouts.ML_1M, "c4d9eecfca2ab87c1945afe126590906", _GB // 4),
        Release("ml-10m", layouts.ML_10M, "ce571fd55effeba0271552578f2648bd", _GB),
        Release("ml-20m", layouts.CSV, "cd245b17a1ae2cc31bb14903e1204af3", 2 * _GB),
        Release("ml-25m", layouts.CSV, "6b51fb2759a8657d3bfcbfc42b592ada", 2 * _GB),
        Release("ml-32m", layouts.CSV, "d472be332d4daa821edc399621853b57", 2 * _GB),
        Release("ml-latest-small", layouts.CSV, None, _GB // 4),
        Release("ml-latest", layouts.CSV, None, 4 * _GB),
    )
}


def hexdigest(path: Path, algorithm: str) -> str:
    """`algorithm`'s digest of a file, read in 1 MB blocks (zips of several hundred MB)."""
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def published_md5(url: str) -> str:
    """The MD5 in GroupLens' `<zip>.md5` file (`MD5 (x.zip) = HEX` or `HEX  x.zip`)."""
    try:
        with urllib.request.urlopen(url + ".md5", timeout=60) as response:
            text = response.read(4096).decode("ascii", errors="replace")
    except (OSError, http.client.HTTPException) as error:
        raise DataVerificationError(f"{url}.md5: cannot read the published checksum ({error})") from error
    found = md5_in(text)
    if not found:
        raise DataVerificationError(f"{url}.md5: no MD5 in {text[:80]!r}")
    return found


def md5_in(text: str) -> str | None:
    """The MD5 of a GroupLens `.md5` file's text (`MD5 (x.zip) = HEX` or `HEX  x.zip`), or None."""
    words = [word.lower() for word in text.replace("=", " ").split()]
    return next((w for w in words if len(w) == 32 and all(c in "0123456789abcdef" for c in w)), None)


def _latest_md5(release: Release, mirror: Path | None, url: str | None) -> str:
    """ml-latest*: the MD5 in the `.md5` file beside a mirror zip (as GroupLens publishes it), else GroupLens'."""
    sidecar = mirror.with_name(mirror.name + ".md5") if mirror else None
    if sidecar and sidecar.is_file() and (found := md5_in(sidecar.read_text(encoding="ascii", errors="replace"))):
        return found
    return published_md5(url or release.url)


def _extract(archive: Path, release: Release, target: Path) -> None:
    """Extracts the release's files (those under `<name>/` or at the top) into `target`, via a staging directory."""
    try:
        opened = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as error:
        raise DataVerificationError(f"{archive}: not a readable zip file ({error})") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{release.name}-", dir=target.parent))
    try:
        with opened:
            dataset.check_archive(opened.infolist(), str(archive), release.max_bytes)
            for info in opened.infolist():
                parent, _, name = info.filename.rpartition("/")
                if info.is_dir() or parent not in ("", release.name) or not name:
                    continue
                try:
                    with opened.open(info) as source, open(staging / name, "wb") as out:
                        shutil.copyfileobj(source, out, 1 << 20)
                except (zipfile.BadZipFile, OSError, EOFError) as error:
                    raise DataVerificationError(f"{archive}: cannot read {info.filename} ({error})") from None
        layout = layouts.detect(str(staging))
        if layout.name != release.layout:
            raise DataVerificationError(f"{archive}: holds the {layout.name} layout, not {release.name}'s")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except layouts.UnknownLayoutError as error:
        raise DataVerificationError(f"{archive}: {error}") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def fetch(
    name: str,
    data_root: str | os.PathLike,
    mirror: str | os.PathLike | None = None,
    url: str | None = None,
    progress: Progress = lambda message: None,
) -> Path:
    """Makes `<data_root>/<name>` hold the verified release `name` and returns that path.

    `mirror`: a local copy of the release's zip, verified like a download. ml-100k is dataset.fetch's.
    Raises DataVerificationError (unknown release, checksum mismatch, unsafe or wrong archive).
    """
    if name not in RELEASES:
        raise DataVerificationError(f"unknown MovieLens release {name!r}; one of: {', '.join(RELEASES)}")
    release = RELEASES[name]
    if name == "ml-100k":
        return dataset.fetch(data_root, mirror=mirror, url=url or dataset.DEFAULT_URL, progress=progress)
    root = Path(data_root)
    target, record = root / name, root / f"{name}.sha256"
    if target.is_dir() and record.is_file():
        progress(f"{target} already holds {name} (zip SHA-256 {record.read_text().split()[0]})")
        return target
    root.mkdir(parents=True, exist_ok=True)
    if mirror is not None:
        archive = Path(mirror)
        if archive.is_dir():
            raise DataVerificationError(
                f"mirror {archive} is a directory: {name} is verified as its zip; give the zip, or use --input-dir "
                "to read a directory as is"
            )
        if not archive.is_file():
            raise DataVerificationError(f"mirror {archive} does not exist")
        origin = str(archive)
    else:
        archive, origin = root / f"{name}.zip", url or release.url
        if not archive.is_file():
            dataset.download_file(origin, archive, progress, release.max_bytes)
    expected = release.md5 or _latest_md5(release, archive if mirror is not None else None, url)
    actual = hexdigest(archive, "md5")
    if actual != expected:
        if mirror is None:
            archive.unlink(missing_ok=True)  # never keep a download that does not verify
        pinned = "pinned from GroupLens' published .md5" if release.md5 else f"published at {release.url}.md5"
        raise DataVerificationError(
            f"{origin}: MD5 {actual} does not match {name}'s {expected} ({pinned}). Refusing to use it."
        )
    progress(f"{origin}: MD5 {actual} verified; extracting")
    _extract(archive, release, target)
    sha = hexdigest(archive, "sha256")
    record.write_text(f"{sha}  {name}.zip (MD5 {actual})\n")
    progress(f"{name} into {target} (zip SHA-256 {sha}, recorded in {record})")
    return target
