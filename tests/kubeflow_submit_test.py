"""`recommender submit` against an in-test HTTP server speaking the KFP v2beta1 REST API calls we make."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import urllib.parse
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from recommender.cli import main

TOKEN = "s3cr3t-token-do-not-log"
PIPELINE = "movielens-recommender"
API = "/apis/v2beta1"


class FakeKfp(http.server.ThreadingHTTPServer):
    """Records every request; keeps pipelines, versions, experiments and runs in memory."""

    def __init__(self, status: int = 200, error_page: bytes | None = None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.status = status  # Answer every call with this status when it is not 200.
        self.error_page = error_page  # ... with this HTML page (a proxy's) instead of KFP's JSON error.
        self.requests: list[dict] = []
        self.pipelines: dict[str, list[str]] = {}  # pipeline id -> version ids
        self.experiments: dict[str, str] = {}  # name -> id
        self.runs: list[dict] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def calls(self) -> list[str]:
        return [f"{r['method']} {r['path']}" for r in self.requests]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: FakeKfp

    def log_message(self, *args) -> None:  # Keep pytest output clean.
        pass

    def _answer(self, body: dict, status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        server = self.server
        server.requests.append(
            {
                "method": method,
                "path": url.path,
                "query": query,
                "body": body,
                "authorization": self.headers.get("Authorization"),
                "content_type": self.headers.get("Content-Type", ""),
            }
        )
        if server.status != 200 and server.error_page is not None:
            self.send_response(server.status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(server.error_page)))
            self.end_headers()
            self.wfile.write(server.error_page)
            return None
        if server.status != 200:
            return self._answer({"error": "denied", "code": 16}, server.status)
        path = url.path
        if method == "GET" and path == f"{API}/healthz":
            return self._answer({"multi_user": False})
        if method == "GET" and path == f"{API}/pipelines":
            name = json.loads(query["filter"])["predicates"][0]["stringValue"]
            found = [{"pipeline_id": pid, "display_name": name} for pid in server.pipelines if pid == f"p-{name}"]
            return self._answer({"pipelines": found, "total_size": len(found)} if found else {})
        if method == "POST" and path == f"{API}/pipelines/upload":
            pipeline_id = f"p-{query['name']}"
            server.pipelines[pipeline_id] = [f"v-{pipeline_id}-1"]
            return self._answer({"pipeline_id": pipeline_id, "display_name": query["name"]})
        if method == "GET" and path.startswith(f"{API}/pipelines/") and path.endswith("/versions"):
            pipeline_id = path.split("/")[-2]
            versions = [{"pipeline_id": pipeline_id, "pipeline_version_id": v} for v in server.pipelines[pipeline_id]]
            return self._answer({"pipeline_versions": versions[::-1][: int(query.get("page_size", 10))]})
        if method == "POST" and path == f"{API}/pipelines/upload_version":
            pipeline_id = query["pipelineid"]
            version = f"v-{pipeline_id}-{len(server.pipelines[pipeline_id]) + 1}"
            server.pipelines[pipeline_id].append(version)
            return self._answer({"pipeline_id": pipeline_id, "pipeline_version_id": version})
        if method == "GET" and path == f"{API}/experiments":
            name = json.loads(query["filter"])["predicates"][0]["stringValue"]
            if name not in server.experiments:
                return self._answer({})
            return self._answer({"experiments": [{"experiment_id": server.experiments[name], "display_name": name}]})
        if method == "POST" and path == f"{API}/experiments":
            request = json.loads(body)
            server.experiments[request["display_name"]] = f"e-{len(server.experiments) + 1}"
            return self._answer({"experiment_id": server.experiments[request["display_name"]], **request})
        if method == "POST" and path == f"{API}/runs":
            request = json.loads(body)
            server.runs.append(request)
            return self._answer({"run_id": f"run-{len(server.runs)}", **request})
        return self._answer({"error": f"unexpected {method} {path}"}, 404)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")


@pytest.fixture
def kfp_server():
    servers = []

    def start(status: int = 200, error_page: bytes | None = None) -> FakeKfp:
        server = FakeKfp(status, error_page)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    """A real compiled PipelineSpec (compiled once for the module)."""
    path = tmp_path_factory.mktemp("package") / "pipeline.yaml"
    result = CliRunner().invoke(
        main,
        ["compile", "--image", "r/rec:1", "--pipeline-root", "gs://b/r", "--data-root", "gs://b/d"]
        + ["--serving-dir", "gs://b/s", "--tuner-trials", "0", "--output", str(path)],
    )
    assert result.exit_code == 0, result.output
    return path


def _submit(server_url: str, package: Path, *extra: str, env: dict | None = None):
    return CliRunner().invoke(
        main, ["submit", "--host", server_url, *extra, str(package)], env={"KFP_TOKEN": TOKEN, **(env or {})}
    )


def test_first_submit_uploads_the_pipeline_and_starts_a_run(kfp_server, package, caplog):
    server = kfp_server()
    result = _submit(server.url, package, "--experiment", "nightly", "--token-env", "KFP_TOKEN")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["Run id: run-1", f"Run URL: {server.url}/#/runs/details/run-1"]

    upload = next(r for r in server.requests if r["path"] == f"{API}/pipelines/upload")
    assert upload["query"]["name"] == PIPELINE
    assert upload["content_type"].startswith("multipart/form-data")
    assert b'name="uploadfile"' in upload["body"] and package.read_bytes() in upload["body"]
    assert yaml.safe_load(package.read_text())["pipelineInfo"]["name"] == PIPELINE

    experiment = next(r for r in server.requests if r["method"] == "POST" and r["path"] == f"{API}/experiments")
    assert json.loads(experiment["body"])["display_name"] == "nightly"
    (run,) = server.runs
    assert run["experiment_id"] == "e-1"
    reference = run["pipeline_version_reference"]
    assert reference == {"pipeline_id": f"p-{PIPELINE}", "pipeline_version_id": f"v-p-{PIPELINE}-1"}
    assert run["display_name"].startswith(PIPELINE)

    # The token is sent, as a bearer token, on every call, and appears nowhere in output or logs.
    assert all(r["authorization"] == f"Bearer {TOKEN}" for r in server.requests)
    assert TOKEN not in result.output and TOKEN not in caplog.text


def test_later_submits_add_a_version_and_reuse_the_experiment(kfp_server, package):
    server = kfp_server()
    assert _submit(server.url, package, "--namespace", "team-a").exit_code == 0
    result = _submit(server.url, package, "--namespace", "team-a", "--run-name", "second")
    assert result.exit_code == 0, result.output
    assert "Run id: run-2" in result.output
    assert [r["path"] for r in server.requests].count(f"{API}/pipelines/upload") == 1
    version_upload = next(r for r in server.requests if r["path"] == f"{API}/pipelines/upload_version")
    assert version_upload["query"]["pipelineid"] == f"p-{PIPELINE}"
    assert version_upload["query"]["name"].startswith(f"{PIPELINE}-")
    assert package.read_bytes() in version_upload["body"]
    assert len(server.experiments) == 1
    assert server.runs[1]["pipeline_version_reference"]["pipeline_version_id"] == f"v-p-{PIPELINE}-2"
    assert server.runs[1]["display_name"] == "second"
    listing = next(r for r in server.requests if r["path"] == f"{API}/experiments" and r["method"] == "GET")
    assert listing["query"]["namespace"] == "team-a"
    assert all(r["authorization"] is None for r in server.requests)  # No --token-env: no credentials sent.


def test_unreachable_host_is_a_clear_error(package):
    with socket.socket() as probe:  # A port nobody listens on.
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = _submit(f"http://127.0.0.1:{port}", package, "--token-env", "KFP_TOKEN")
    assert result.exit_code == 1
    assert f"cannot reach KFP at http://127.0.0.1:{port}" in result.output
    assert "Traceback" not in result.output and TOKEN not in result.output


@pytest.mark.parametrize(("status", "hint"), [(401, "check the token"), (403, "lacks permission")])
def test_auth_errors_say_what_to_check_without_the_token(kfp_server, package, status, hint):
    server = kfp_server(status)
    result = _submit(server.url, package, "--token-env", "KFP_TOKEN")
    assert result.exit_code == 1
    assert f"HTTP {status}" in result.output and hint in result.output
    assert TOKEN not in result.output


# What an ingress or proxy in front of KFP answers: a whole page, scripts and styles included.
PROXY_PAGE = (
    b"<!DOCTYPE html><html><head><title>503 Service Temporarily Unavailable</title>"
    b"<style>body{font-family:sans-serif}</style><script>var x = 1;</script></head><body>"
    b"<center><h1>503 Service Temporarily Unavailable</h1></center><hr><center>nginx</center>"
    + b"<p>"
    + b"padding " * 400
    + b"</p></body></html>"
)


def test_an_html_error_page_is_reduced_to_status_and_reason(kfp_server, package):
    server = kfp_server(503, PROXY_PAGE)
    result = _submit(server.url, package)
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith("Error: ") and "HTTP 503" in line
    assert "Service Temporarily Unavailable" in line
    assert "<" not in line and "padding" not in line and len(line) < 300


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"error": "pipeline spec is invalid", "code": 3}', "pipeline spec is invalid"),
        (b"upstream connect error\nor disconnect", "upstream connect error"),
        (b"<html><body><p>  Bad   gateway  </p></body></html>", "Bad gateway"),
        (b"x" * 1000, "x" * 199 + "…"),
        (b"", ""),
    ],
)
def test_short_reason_of_error_bodies(body, reason):
    from kubeflow.submit import short_reason

    assert short_reason(body) == reason


def test_bad_inputs_are_clear_errors(tmp_path, package):
    result = _submit("https://kfp.example.com", package, "--token-env", "MISSING_VAR")
    assert result.exit_code == 1 and "MISSING_VAR" in result.output
    not_a_spec = tmp_path / "x.yaml"
    not_a_spec.write_text("a: 1\n")
    result = _submit("https://kfp.example.com", not_a_spec)
    assert result.exit_code == 1 and "is not a KFP v2 PipelineSpec" in result.output
    result = _submit("kfp.example.com", package)
    assert result.exit_code == 1 and "--host must be an http(s):// URL" in result.output
