"""The Flink Kubernetes Operator's FlinkDeployment CRD, from the operator's API jar on Maven Central.

tests/manifests_test.py checks kubeflow/manifests/flink/ against the CRD's OpenAPI schema, the one the cluster's
API server applies. The jar is fetched once with Maven by its coordinates, checked against its SHA-256 and kept in
the project's cache (`python tests/flink_operator_crd.py`, run by `make test-deps` and .ci/run).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline.flink.artifacts import cache_root  # noqa: E402

COORDINATES = "org.apache.flink:flink-kubernetes-operator-api:1.10.0"
SHA256 = "b1f44814e17514fa8395c61b329a3ee9087123a5bda5b21fe1a495d5182c30b6"
CRD_ENTRY = "META-INF/fabric8/flinkdeployments.flink.apache.org-v1.yml"  # apiextensions.k8s.io/v1


def jar_path() -> Path:
    _, artifact, version = COORDINATES.split(":")
    return cache_root() / "flink-kubernetes-operator" / f"{artifact}-{version}.jar"


def fetch() -> Path:
    """The verified API jar, fetched with Maven when not cached."""
    target = jar_path()
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=target.parent))
        try:
            command = ["mvn", "-B", "-q", "--strict-checksums", "dependency:copy", f"-Dartifact={COORDINATES}",
                       f"-DoutputDirectory={staging}"]  # fmt: skip
            subprocess.run(command, check=True, cwd=staging)
            (jar,) = staging.glob("*.jar")
            os.replace(jar, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    if digest != SHA256:
        raise RuntimeError(f"{target}: SHA-256 {digest}, expected {SHA256}; delete it and fetch again")
    return target


def schema(version: str) -> dict:
    """The openAPIV3Schema of FlinkDeployment `version` (e.g. v1beta1), from the verified jar."""
    path = jar_path()
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `make test-deps` (fetches it with Maven)")
    fetch()
    with zipfile.ZipFile(path) as jar:
        crd = yaml.safe_load(jar.read(CRD_ENTRY))
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    return served["schema"]["openAPIV3Schema"]


if __name__ == "__main__":
    print(fetch())
