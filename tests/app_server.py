"""`recommender app` started as a user starts it, for the tests that need the real server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(serving_dir, pipeline_root, request_log: str = "", **popen) -> tuple[subprocess.Popen, int, int]:
    """`recommender app` on free ports, once its health endpoint answers: (process, port, metrics port)."""
    port, metrics_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "recommender.cli", "app", "--serving-dir", str(serving_dir), "--pipeline-root",
         str(pipeline_root), "--port", str(port), "--metrics-port", str(metrics_port), "--request-log", request_log],
        **popen,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5)
            return process, port, metrics_port
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError("the app did not start") from None
            time.sleep(0.5)
