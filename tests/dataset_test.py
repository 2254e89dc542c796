"""Fetching MovieLens from a mirror or a download, with SHA-256 verification.

Checksums, zip safety and downloads are tested on a release this module generates in the ml-100k
layout (its own checksums passed in); only the first test needs the real mirror (`real_data`).
"""

import dataclasses
import hashlib
import re
import stat
import zipfile
from pathlib import Path

import pytest

from components.example_gen import dataset
from components.example_gen.tiny_ml100k import write_synthetic_movielens


@dataclasses.dataclass(frozen=True)
class Release:
    zip: Path
    checksums: dict[str, str]


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Release:
    """A small zip in ml-100k's layout (`ml-100k/<member>` for every official member name) and its checksums."""
    root = tmp_path_factory.mktemp("release")
    data = write_synthetic_movielens(root / "data")
    members = {name: f"{name}: generated for the tests\n".encode() for name in dataset.SHA256}
    members |= {name: (data / name).read_bytes() for name in ("u.data", "u.user", "u.item")}
    path = root / "ml-100k.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ml-100k/", b"")
        for name, content in members.items():
            archive.writestr(f"ml-100k/{name}", content)
    return Release(path, {name: hashlib.sha256(content).hexdigest() for name, content in members.items()})


def test_the_official_release_verifies_against_the_built_in_checksums(mirror, tmp_path):
    target = dataset.fetch(tmp_path, mirror=mirror)
    assert sorted(p.name for p in target.iterdir()) == sorted(dataset.SHA256)
    dataset.verify_directory(target)  # does not raise


def test_fetch_from_zip_mirror_verifies_every_member(release, tmp_path):
    target = dataset.fetch(tmp_path, mirror=release.zip, checksums=release.checksums)
    assert target == tmp_path / "ml-100k"
    assert sorted(p.name for p in target.iterdir()) == sorted(release.checksums)
    dataset.verify_directory(target, release.checksums)  # does not raise
    with pytest.raises(dataset.DataVerificationError, match="does not match the official MovieLens-100k release"):
        dataset.verify_directory(target)  # not the official bytes
    # A second fetch reuses the verified copy (same files, not rewritten).
    mtime = (target / "u.data").stat().st_mtime_ns
    assert dataset.fetch(tmp_path, mirror=release.zip, checksums=release.checksums) == target
    assert (target / "u.data").stat().st_mtime_ns == mtime


def test_fetch_from_directory_mirror(release, tmp_path):
    extracted = dataset.fetch(tmp_path / "first", mirror=release.zip, checksums=release.checksums)
    target = dataset.fetch(tmp_path / "copy", mirror=extracted, checksums=release.checksums)
    assert (target / "u.data").read_bytes() == (extracted / "u.data").read_bytes()


def _tampered(release: Release, path: Path) -> Path:
    """The release with one rating changed in u.data."""
    with zipfile.ZipFile(release.zip) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("/u.data"):
                data = data.replace(b"\t3\t", b"\t4\t", 1)
            dst.writestr(info, data)
    return path


def test_corrupted_mirror_is_refused_and_nothing_written(release, tmp_path):
    corrupted = _tampered(release, tmp_path / "corrupted.zip")
    with pytest.raises(dataset.DataVerificationError, match="u.data does not match"):
        dataset.fetch(tmp_path / "out", mirror=corrupted, checksums=release.checksums)
    assert not (tmp_path / "out" / "ml-100k").exists()


def test_corrupted_existing_copy_is_replaced(release, tmp_path):
    target = dataset.fetch(tmp_path, mirror=release.zip, checksums=release.checksums)
    (target / "u.user").write_text("tampered")
    dataset.fetch(tmp_path, mirror=release.zip, checksums=release.checksums)
    dataset.verify_directory(target, release.checksums)


def test_missing_mirror_and_non_https(tmp_path):
    with pytest.raises(dataset.DataVerificationError, match="does not exist"):
        dataset.fetch(tmp_path, mirror=tmp_path / "nope.zip")
    with pytest.raises(dataset.DataVerificationError, match="non-HTTPS"):
        dataset.fetch(tmp_path, url="http://files.grouplens.org/datasets/movielens/ml-100k.zip")
    with pytest.raises(dataset.DataVerificationError, match="not a readable zip"):
        bad = tmp_path / "bad.zip"
        bad.write_bytes(b"not a zip")
        dataset.fetch(tmp_path / "x", mirror=bad)


def _zip_with(path, entries):
    """A zip whose entries are (ZipInfo or name, bytes)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return path


def _symlink(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (("../evil", b"x"), "unsafe path: '../evil'"),
        (("ml-100k/../../evil", b"x"), "unsafe path"),
        (("/tmp/evil", b"x"), "unsafe path: '/tmp/evil'"),
        ((_symlink("ml-100k/u.data", "/etc/passwd"), b"/etc/passwd"), "symbolic link"),
        (("ml-100k/u.data", b"\0" * (dataset.MAX_ARCHIVE_BYTES + 1)), "expands to more than 67 MB"),
    ],
)
def test_unsafe_archives_are_refused_before_anything_is_written(release, tmp_path, entry, message):
    with zipfile.ZipFile(release.zip) as src:
        members = [(info, src.read(info)) for info in src.infolist()]
    crafted = _zip_with(tmp_path / "crafted.zip", [entry, *members])
    assert crafted.stat().st_size < 200_000  # the bomb is small on disk
    root = tmp_path / "out" / "data"
    with pytest.raises(dataset.DataVerificationError, match=re.escape(message)):
        dataset.fetch(root, mirror=crafted, checksums=release.checksums)
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crafted.zip"]


@pytest.fixture()
def https_server(tmp_path, monkeypatch):
    """A local HTTPS server (self-signed certificate, trusted through SSL_CERT_FILE) serving `responses[path]`."""
    import datetime
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    responses: dict[str, tuple[bytes, int | None]] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body, length = responses[self.path]
            self.send_response(200)
            self.send_header("Content-Length", str(length or len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    yield f"https://localhost:{server.server_address[1]}", responses
    server.shutdown()


def test_download_over_https_is_verified_and_a_bad_or_partial_one_is_never_kept(release, tmp_path, https_server):
    base, responses = https_server
    good = release.zip.read_bytes()
    tampered = _tampered(release, tmp_path / "tampered.zip")
    responses["/good.zip"] = (good, None)
    responses["/cut.zip"] = (good[: len(good) // 2], len(good))  # the connection ends half-way
    responses["/tampered.zip"] = (tampered.read_bytes(), None)
    root = tmp_path / "data"

    sums = release.checksums
    with pytest.raises(dataset.DataVerificationError, match="cut short|download failed"):
        dataset.fetch(root, url=f"{base}/cut.zip", checksums=sums)
    with pytest.raises(dataset.DataVerificationError, match="download failed"):
        dataset.fetch(root, url="https://localhost:1/nothing-listens-here.zip", checksums=sums)
    with pytest.raises(dataset.DataVerificationError, match="u.data does not match"):
        dataset.fetch(root, url=f"{base}/tampered.zip", checksums=sums)
    assert sorted(p.name for p in root.iterdir()) == []  # no .part, no bad zip kept, nothing extracted

    lines = []
    target = dataset.fetch(root, url=f"{base}/good.zip", progress=lines.append, checksums=sums)
    dataset.verify_directory(target, sums)
    assert any("100% of" in line for line in lines)
    assert (root / "ml-100k.zip").read_bytes() == good
