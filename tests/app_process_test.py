"""`recommender app` as a process: a signal stops the server itself and frees its port; nothing outlives it."""

from __future__ import annotations

import signal
import socket
import subprocess
import time

import psutil
import pytest
from app_server import start_app


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
    process, port, _ = start_app(
        tmp_path / "serving",
        tmp_path / "root",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
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
