"""`recommender app` as a process: a signal stops the server itself and frees its port; nothing outlives it."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    """A new server could listen there (as servers do, past the health check's connections in TIME_WAIT)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
        return True


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_server_and_frees_the_port(tmp_path, signum):
    """No model is needed to start: the page says so when opened. The command is the server (same pid)."""
    port, metrics_port = _free_port(), _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "app", "--serving-dir", str(tmp_path / "serving"), "--pipeline-root",
         str(tmp_path / "root"), "--port", str(port), "--metrics-port", str(metrics_port), "--request-log", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5)
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "the app did not start"
                time.sleep(0.5)
        tree = [process.pid, *(child.pid for child in psutil.Process(process.pid).children(recursive=True))]
        process.send_signal(signum)
        process.wait(timeout=10)
        deadline = time.monotonic() + 5
        while not _port_free(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _port_free(port), "the app's port is still held after the command ended"
        assert not [pid for pid in tree if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    finally:
        if process.poll() is None:  # Only when an assertion above failed: leave nothing behind either way.
            import os

            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
