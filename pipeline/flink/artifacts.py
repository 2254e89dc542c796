"""Beam's Flink job server on disk, verified: resolved by Maven from its coordinates, cached outside the repository.

Beam publishes the Flink runner (`FlinkJobServerDriver` included) as `org.apache.beam:beam-runners-flink-<flink>`
with its dependencies declared in its POM; `mvn dependency:copy-dependencies` resolves them from Maven Central (or
the repository the user's Maven is set up for) into a class path of jars. Every jar is then checked against the
SHA-256 lock shipped beside this module (`job-server.sha256`), on download and again before every use, so a
damaged or substituted jar is refused with its name and both digests. A failed or partial fetch never replaces a
good copy (it is built in a staging directory and renamed into place).

The Python SDK is pinned at 2.59.0, but the Maven Central that these machines reach serves neither
`beam-runners-flink-1.18-job-server:2.59.0` nor `beam-runners-flink-1.18:2.59.0` (404) nor the 2.59.0 job
service the 1.16 runner needs; the Flink 1.19 runner of Beam 2.62.0 resolves with all of its dependencies and
runs this SDK's pipelines (the portable protocol is versioned; measured in tests/flink_e2e_test.py). A user with
another job server gives it with `--flink-job-server-jar`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

GROUP_ID = "org.apache.beam"
ARTIFACT_ID = "beam-runners-flink-1.19"
VERSION = "2.62.0"
COORDINATES = f"{GROUP_ID}:{ARTIFACT_ID}:{VERSION}"
MAIN_CLASS = "org.apache.beam.runners.flink.FlinkJobServerDriver"
LOCK_FILE = Path(__file__).with_name("job-server.sha256")
# Where fetched job servers are kept: $RECOMMENDER_CACHE, else $XDG_CACHE_HOME/recommender, else ~/.cache/recommender.
CACHE_ENV = "RECOMMENDER_CACHE"

Progress = Callable[[str], None]


class JobServerError(RuntimeError):
    """The Flink job server cannot be had or started (no Java, no Maven, a bad jar, ...); the message says how."""


def cache_root() -> Path:
    """The user's cache directory for this project (never inside the repository)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "recommender"


def class_path_dir(cache: Path | None = None) -> Path:
    """Where the verified jars of COORDINATES live (`<cache>/flink-job-server/<artifact>-<version>/`)."""
    return (cache or cache_root()) / "flink-job-server" / f"{ARTIFACT_ID}-{VERSION}"


def read_lock(path: Path = LOCK_FILE) -> dict[str, str]:
    """jar file name → SHA-256, from a `sha256sum`-style lock file (`#` lines are comments)."""
    lock = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split(maxsplit=1)
            lock[name.strip()] = digest
    return lock


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(directory: Path, lock: dict[str, str] | None = None) -> None:
    """Raises JobServerError unless `directory` holds exactly the locked jars, each with its locked SHA-256."""
    lock = read_lock() if lock is None else lock
    present = {path.name for path in directory.glob("*.jar")}
    missing, extra = sorted(set(lock) - present), sorted(present - set(lock))
    if missing or extra:
        what = "; ".join(part for part in (_names("missing", missing), _names("not in the lock", extra)) if part)
        raise JobServerError(
            f"the Flink job server in {directory} does not match {LOCK_FILE.name} ({what}); delete {directory} "
            "and run again to fetch it anew"
        )
    for name, expected in sorted(lock.items()):
        actual = sha256(directory / name)
        if actual != expected:
            raise JobServerError(
                f"checksum mismatch for {directory / name}: expected SHA-256 {expected}, got {actual}; "
                f"delete {directory} and run again to fetch it anew"
            )


def _names(label: str, names: list[str]) -> str:
    if not names:
        return ""
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"{label}: {shown}"


def require_java() -> str:
    """The `java` on PATH, or JobServerError saying how to get one."""
    java = shutil.which("java")
    if not java:
        raise JobServerError(
            "Java is not on PATH: Flink's job server is a Java program (Java 11 or 17; Debian: "
            "apt-get install openjdk-17-jre-headless), or run without --beam-runner flink"
        )
    return java


_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>movielens-recommender</groupId><artifactId>flink-job-server</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId><version>{version}</version></dependency>
  </dependencies>
</project>
"""

_SETTINGS = """<settings xmlns="http://maven.apache.org/SETTINGS/1.0.0">
  <mirrors><mirror><id>recommender</id><mirrorOf>*</mirrorOf><url>{url}</url></mirror></mirrors>
</settings>
"""


def fetch(cache: Path | None = None, repository: str | None = None, progress: Progress | None = None) -> Path:
    """The directory of the verified job-server jars, resolved with Maven first if not cached.

    `repository`: a Maven repository URL to use instead of the user's (Maven Central by default).
    """
    target = class_path_dir(cache)
    if target.is_dir():
        verify(target)
        return target
    mvn = shutil.which("mvn")
    if not mvn:
        raise JobServerError(
            f"Maven (mvn) is not on PATH: it fetches Beam's Flink job server ({COORDINATES}). Install it "
            "(Debian: apt-get install maven), or give a job-server jar with --flink-job-server-jar PATH"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=target.parent))
    try:
        (staging / "pom.xml").write_text(_POM.format(group=GROUP_ID, artifact=ARTIFACT_ID, version=VERSION))
        command = [mvn, "-B", "-q", "--strict-checksums", "-f", str(staging / "pom.xml")]
        if repository:
            (staging / "settings.xml").write_text(_SETTINGS.format(url=repository))
            command += ["-s", str(staging / "settings.xml")]
        command += ["dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={staging / 'lib'}"]
        if progress:
            progress(f"fetching Beam's Flink job server ({COORDINATES}) with Maven into {target}")
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise JobServerError(
                f"Maven could not fetch {COORDINATES} from {repository or 'its repositories'}: "
                f"{_maven_error(result.stdout + result.stderr)}"
            )
        verify(staging / "lib")
        os.replace(staging / "lib", target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if progress:
        progress(f"verified {len(read_lock())} jars of the Flink job server")
    return target


def _maven_error(output: str) -> str:
    """Maven's first ERROR line, without its colour codes and its generic hints."""
    for line in output.splitlines():
        text = line.replace("\x1b[1;31m", "").replace("\x1b[m", "").replace("\x1b[0m", "").strip()
        if text.startswith("[ERROR]") and len(text) > len("[ERROR]"):
            return text[len("[ERROR]") :].strip()
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else "mvn failed without a message"


if __name__ == "__main__":  # `make flink-job-server` (and .ci/run): fetch and verify it ahead of a run
    print(fetch(progress=print))
