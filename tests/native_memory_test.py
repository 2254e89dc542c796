"""pipeline.native_memory: what a run frees goes back to the machine while it runs (glibc's malloc_trim), measured
on a real process's resident memory."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Fills glibc's arenas with 400 MB of 4 kB blocks, keeps one in 64 (so the arenas cannot shrink from their top),
# frees the rest, then prints the resident MB: before, with the blocks freed, and after the trim (or the thread).
_PROGRAM = """
import sys, time, psutil
from pipeline import native_memory
me = psutil.Process()
mb = lambda: me.memory_info().rss // 2**20
base = mb()
blocks = [bytearray(4000) for _ in range(100_000)]
kept = blocks[::64]
del blocks
held = mb()
if sys.argv[1] == "now":
    native_memory.trim()
else:
    with native_memory.trimmed_periodically(interval_s=0.2):
        time.sleep(1.0)
        during = mb()
    assert during < held - 250, (held, during)
print(base, held, mb())
"""


def _resident_mb(how: str) -> tuple[int, int, int]:
    result = subprocess.run(
        [sys.executable, "-c", _PROGRAM, how], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    base, held, trimmed = map(int, result.stdout.split())
    return base, held, trimmed


def test_a_trim_gives_freed_memory_back_to_the_machine():
    base, held, trimmed = _resident_mb("now")
    assert held - base > 300, "glibc kept the freed blocks: the premise of the trim"
    assert trimmed < held - 250


def test_a_run_trims_periodically_while_it_runs():
    base, held, trimmed = _resident_mb("thread")
    assert held - base > 300 and trimmed < held - 250
