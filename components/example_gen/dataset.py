"""Getting MovieLens-100k onto disk, verified: download from GroupLens or copy from a mirror.

MovieLens may not be redistributed, so the project never ships it: `fetch` downloads
the official zip over HTTPS (or takes a local mirror, zip or extracted directory),
checks every member against the SHA-256 sums of the official release, and only
then moves the files into place. A failed or partial fetch never replaces a good copy.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import stat
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

DATASET = "ml-100k"
DEFAULT_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"

# SHA-256 of every member of the official ml-100k.zip (GroupLens, 1998 release).
SHA256 = {
    "README": "4883b8cf340ed0059971b33f56ad3adc88a40792108ebca3d24aafc4c82e8b52",
    "allbut.pl": "bfc6a75cbd65c74bb38a0b580dbe866af252733dfa9a65a2c4b93258774ee8a3",
    "mku.sh": "7929735c375e89a04340e34de621bf2ea643cd04b0bcda2c6f458e4be961ae71",
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.genre": "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
    "u.info": "5b0a40b2e47a729ee6203063f6dcf8790c2e63f5a18663e6ee318a72c5f3c27b",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "u.occupation": "cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d",
    "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
    "u1.base": "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a",
    "u1.test": "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950",
    "u2.base": "6c06f0b5df4b256da1a994f3ac66edc8da4d3f09bc9282df6b14d893366d703e",
    "u2.test": "4de658d1e04ed9104629509a2e2528fce833ac8e048280183f1df167632038c3",
    "u3.base": "afdc155c291c6edc41c0407e39d7462eb98d341e064f0b0a12175b80b3c4af5d",
    "u3.test": "0f548b51c78327de4c156461d3e430b7e5579fe2b5681586a59416e48fd35f6d",
    "u4.base": "219f0f4d40dfe9c5141d425f53fa91ee23ed275f14e280bbf1b50117afb064ca",
    "u4.test": "7c02ad0a1e7ab1083c8b9d4b627203a051dd7b5eab46d99fa44de33470de8db9",
    "u5.base": "a9574e59ce961eec2121627760b6e9b0974ce1637b3fe69ac32cb14a4bfab485",
    "u5.test": "351cc52e0d15b6c721466276fc24671d40936899e3d01fadeaf312915b8c5634",
    "ua.base": "67b5bcdb380c29f85d56a012ecd88612ae020f30a6730d117a334ee8203b91f2",
    "ua.test": "d0497e202417720f57a184ec8c66be2d1afa4ff41bb53787c57b28d6bf79bc42",
    "ub.base": "237254d253b6ad7de84f919d041055428646254f34ed8f562703c899430cd881",
    "ub.test": "d54a72d05730d5892062734b2bec73e976f9b713d18c828a18b968d6cce442da",
}

Progress = Callable[[str], None]
# The official zip expands to ~16 MB; anything far larger is not MovieLens-100k (or is a zip bomb).
MAX_ARCHIVE_BYTES = 64 * 1024 * 1024


class DataVerificationError(RuntimeError):
    """The MovieLens source is missing files or does not match the official release."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check(name: str, data: bytes, source: str, checksums: Mapping[str, str] = SHA256) -> None:
    digest = _sha256(data)
    if digest != checksums[name]:
        raise DataVerificationError(
            f"{source}: {name} does not match the official MovieLens-100k release "
            f"(SHA-256 {digest}, expected {checksums[name]}). Refusing to use it."
        )


def verify_directory(directory: Path, checksums: Mapping[str, str] = SHA256) -> None:
    """Raises DataVerificationError unless `directory` holds every member of `checksums`, unchanged.

    `checksums` (member name → SHA-256) defaults to the official release's.
    """
    missing = sorted(name for name in checksums if not (directory / name).is_file())
    if missing:
        raise DataVerificationError(f"{directory}: missing MovieLens-100k files: {', '.join(missing)}")
    for name in checksums:
        _check(name, (directory / name).read_bytes(), str(directory), checksums)


def check_archive(infos: list[zipfile.ZipInfo], source: str, max_bytes: int = MAX_ARCHIVE_BYTES) -> None:
    """Refuses an archive with unsafe entries before anything is read or written.

    Unsafe: absolute paths or `..` components (path traversal), symbolic links, and
    a total expanded size over `max_bytes` (zip bombs).
    """
    total = 0
    for info in infos:
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts:
            raise DataVerificationError(f"{source}: refusing an archive with an unsafe path: {name!r}")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DataVerificationError(f"{source}: refusing an archive containing a symbolic link: {name!r}")
        total += info.file_size
        if total > max_bytes:
            raise DataVerificationError(
                f"{source}: archive expands to more than {max_bytes / 1e6:.0f} MB; refusing it (not MovieLens-100k)"
            )


def _members_from_zip(path: Path, checksums: Mapping[str, str] = SHA256) -> dict[str, bytes]:
    """Reads the official members of a ml-100k zip; only known names are read, nothing is extracted."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise DataVerificationError(f"{path}: not a readable zip file ({error})") from None
    members: dict[str, bytes] = {}
    with archive:
        check_archive(archive.infolist(), str(path))
        for info in archive.infolist():
            parent, _, name = info.filename.rpartition("/")
            if parent in ("", DATASET) and name in checksums:
                try:
                    members[name] = archive.read(info)
                except (zipfile.BadZipFile, OSError, EOFError) as error:  # CRC error, truncated archive
                    raise DataVerificationError(f"{path}: cannot read {info.filename} ({error})") from None
    missing = sorted(set(checksums) - set(members))
    if missing:
        raise DataVerificationError(f"{path}: zip lacks MovieLens-100k files: {', '.join(missing)}")
    return members


def _members_from_directory(path: Path, checksums: Mapping[str, str] = SHA256) -> dict[str, bytes]:
    root = path / DATASET if (path / DATASET).is_dir() else path
    verify_directory(root, checksums)
    return {name: (root / name).read_bytes() for name in checksums}


def download_file(
    url: str, destination: Path, progress: Progress, max_bytes: int, verify: Callable[[Path], object] = lambda p: None
):
    """Downloads `url` over HTTPS to `destination` via `<destination>.part`, renamed only once `verify(part)`
    returns (its result is returned); a failed, oversized, cut-short or unverified download is deleted."""
    if not url.startswith("https://"):
        raise DataVerificationError(f"refusing to download over a non-HTTPS URL: {url}")
    partial = destination.with_name(destination.name + ".part")
    progress(f"downloading {url}")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            total, done, shown = int(response.headers.get("Content-Length") or 0), 0, -1
            while chunk := response.read(1 << 20):
                out.write(chunk)
                done += len(chunk)
                if done > max_bytes:
                    raise DataVerificationError(f"{url}: download exceeds {max_bytes / 1e6:.0f} MB; stopped")
                if total and done * 10 // total != shown:  # every 10%
                    shown = done * 10 // total
                    progress(f"  {shown * 10}% of {total / 1e6:.1f} MB")
        if total and done != total:
            raise DataVerificationError(f"{url}: download cut short ({done} of {total} bytes)")
        verified = verify(partial)
    except (OSError, DataVerificationError, http.client.HTTPException) as error:
        partial.unlink(missing_ok=True)  # a partial or bad download never replaces anything
        if isinstance(error, DataVerificationError):
            raise
        raise DataVerificationError(f"{url}: download failed ({type(error).__name__}: {error})") from error
    os.replace(partial, destination)
    return verified


def download(
    url: str, destination: Path, progress: Progress, checksums: Mapping[str, str] = SHA256
) -> dict[str, bytes]:
    """Downloads `url` over HTTPS to `destination`, via a temporary file renamed once every member
    verifies; returns the verified members."""

    def verify(partial: Path) -> dict[str, bytes]:
        # Checked (safe entries, every member's SHA-256) before it is kept.
        members = _members_from_zip(partial, checksums)
        for name, data in members.items():
            _check(name, data, url, checksums)
        return members

    return download_file(url, destination, progress, MAX_ARCHIVE_BYTES, verify)


def fetch(
    data_root: str | os.PathLike,
    mirror: str | os.PathLike | None = None,
    url: str = DEFAULT_URL,
    progress: Progress = lambda message: None,
    checksums: Mapping[str, str] = SHA256,
) -> Path:
    """Makes `<data_root>/ml-100k` hold the verified MovieLens-100k release and returns that path.

    Args:
      data_root: Directory that receives `ml-100k/`.
      mirror: A local `ml-100k.zip` or extracted directory to use instead of downloading.
      url: Where to download the official zip from when there is no mirror.
      progress: Called with human-readable progress lines.
      checksums: Member name → SHA-256 of the release (default: the official ml-100k.zip's).

    Raises:
      DataVerificationError: The source is missing files or a checksum differs.
    """
    root = Path(data_root)
    target = root / DATASET
    if target.is_dir():
        try:
            verify_directory(target, checksums)
            progress(f"{target} already holds verified MovieLens-100k")
            return target
        except DataVerificationError as error:
            progress(f"existing copy is not usable ({error}); fetching again")
    if mirror is not None:
        source = Path(mirror)
        if source.is_dir():
            members = _members_from_directory(source, checksums)
        elif source.is_file():
            members = _members_from_zip(source, checksums)
        else:
            raise DataVerificationError(f"mirror {source} does not exist")
        origin = str(source)
    else:
        archive = root / f"{DATASET}.zip"
        root.mkdir(parents=True, exist_ok=True)
        members = (
            download(url, archive, progress, checksums)
            if not archive.is_file()
            else _members_from_zip(archive, checksums)
        )
        origin = url
    for name, data in members.items():
        _check(name, data, origin, checksums)

    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{DATASET}-", dir=root))
    try:
        for name, data in members.items():
            (staging / name).write_bytes(data)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    progress(f"verified {len(members)} files from {origin} into {target}")
    return target
