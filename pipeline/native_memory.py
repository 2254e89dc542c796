"""Giving the memory a run has freed back to the machine while it runs (glibc's `malloc_trim`).

A local run is one process: LocalDagRunner runs every component in it, and on Flink (LOOPBACK) the Python side of
every Beam step too. What Python, TensorFlow and Arrow free goes back to glibc's arenas, which keep the pages:
the process's resident memory only ever grows, and each component starts on top of the last one's peak. Measured
at 2M ratings on the local Flink cluster: during the Trainer the process held 4.60 GB; one `malloc_trim(0)`
(through gdb) brought it to 3.29 GB without changing what it computed.

`trimmed_periodically` calls `malloc_trim(0)` every few seconds for the length of a run; where the C library has
no `malloc_trim` (not glibc: macOS, musl) it does nothing. The JVMs of a Flink run do the same for themselves
(`-XX:TrimNativeHeapInterval`, pipeline/flink/job_server.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import threading
from collections.abc import Callable, Iterator

TRIM_INTERVAL_S = 10.0


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where the C library has none (looked up once: find_library runs ldconfig)."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    return getattr(ctypes.CDLL(name), "malloc_trim", None)


def trim() -> bool:
    """Gives the free pages of every malloc arena back to the machine now; False where that is not possible."""
    malloc_trim = _malloc_trim()
    if malloc_trim is None:
        return False
    malloc_trim(0)
    return True


@contextlib.contextmanager
def trimmed_periodically(interval_s: float = TRIM_INTERVAL_S) -> Iterator[None]:
    """While open, a daemon thread gives freed memory back every `interval_s` seconds (and once at the end)."""
    malloc_trim = _malloc_trim()
    if malloc_trim is None:
        yield
        return
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval_s):
            malloc_trim(0)

    thread = threading.Thread(target=loop, name="malloc-trim", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        malloc_trim(0)
