"""How the whole DAG's time and memory grow with the data: generated releases of N ratings, one run each.

    python benchmarks/scale.py --sizes 100000,1000000 [--runners direct,flink,flink-cluster] [--layout csv]
                               [--work-dir artifacts/scale] [--run-args ...]
    python benchmarks/scale.py --input-dir artifacts/data/ml-100k --label ml-100k   # a real release as a row

Each size: `recommender data synth --ratings N` (MovieLens proportions: N/100 users, N/200 movies), then, for each
runner, `recommender run --input-dir` on that runner (RUNNERS) under `/usr/bin/time -v` (its "peak RSS" is the largest
single process's: the launching Python, where the DirectRunner works), and the **whole process tree's** resident
memory (Python, the Flink job server's JVM, SDK workers), summed over its processes every half second and kept per
component. Prints one row per size and runner: each component's wall time (from the run's progress lines), the
total, seconds per million ratings, the largest process's and the whole tree's peak, then each component's tree peak
(with the JVMs' share of it);
writes scale.json into the work dir (rows are added to the ones already there).
A run that fails (out of memory, killed) is a row saying so: the largest size that ran is the answer.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

# Runner labels → `recommender run` arguments: the DirectRunner, Flink embedded in the job server, and a Flink
# session cluster started on this machine for the run (pipeline/flink/local_cluster.py).
RUNNERS = {
    "direct": ("--beam-runner", "direct"),
    "flink": ("--beam-runner", "flink"),
    "flink-cluster": ("--beam-runner", "flink", "--flink-master", "[local-cluster]"),
}
COMPONENTS = ("ExampleGen", "StatisticsGen", "Transform", "Tuner", "Trainer", "Evaluator", "RankingEvaluator")
_FINISHED = re.compile(r"^\s+(\w+)\s+finished in ([\d.]+) s", re.MULTILINE)
_PEAK = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")
_STARTED = re.compile(r"^\s+(\w+)\s+started$")


def tree_rss(process: psutil.Process) -> tuple[int, int]:
    """Resident bytes of a process and all its descendants, and of the JVMs among them ((0, 0) once it is gone)."""
    total = jvms = 0
    try:
        for member in (process, *process.children(recursive=True)):
            try:
                rss = member.memory_info().rss
                total += rss
                jvms += rss if member.name() == "java" else 0
            except psutil.NoSuchProcess:
                continue
    except psutil.NoSuchProcess:
        return 0, 0
    return total, jvms


def recommender(*args: str) -> list[str]:
    return [sys.executable, "-m", "recommender.cli", *args]


def run_once(data_dir: Path, root: Path, run_args: list[str], log: Path) -> dict:
    """One DAG run under /usr/bin/time -v: component seconds, total, peak RSS (GB), each component's peak tree
    memory (GB), exit status."""
    command = [
        "/usr/bin/time", "-v", *recommender("run", "--input-dir", str(data_dir), "--pipeline-root",
        str(root / "pipeline"), "--serving-dir", str(root / "serving"), "--no-cache", *run_args),
    ]  # fmt: skip
    started = time.monotonic()
    current = ["(start)"]  # the component running now
    peaks, jvm_at_peak = {}, {}  # each component's peak tree RSS, and the JVMs' share of it, in bytes

    with open(log, "w") as out:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        process = psutil.Process(child.pid)

        def sample() -> None:
            while child.poll() is None:
                total, jvms = tree_rss(process)
                if total > peaks.get(current[0], 0):
                    peaks[current[0]], jvm_at_peak[current[0]] = total, jvms
                time.sleep(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        for line in child.stdout:
            out.write(line)
            out.flush()
            if match := _STARTED.match(line):
                current[0] = match.group(1)
        status = child.wait()
        sampler.join()
    text = log.read_text()
    peak = _PEAK.search(text)
    return {
        "status": status,
        "seconds": time.monotonic() - started,
        "components": {name: float(s) for name, s in _FINISHED.findall(text)},
        "peak_rss_gb": int(peak.group(1)) / 1024**2 if peak else None,
        "component_peak_gb": {name: size / 1024**3 for name, size in peaks.items()},
        "component_peak_jvm_gb": {name: size / 1024**3 for name, size in jvm_at_peak.items()},
        "tree_peak_gb": max(peaks.values(), default=0) / 1024**3,
    }


def _size_and_runner(label: str, row: dict) -> tuple[str, str]:
    """A scale.json row's size label and runner ("1,000,000 flink"; rows from before the runner column: direct)."""
    return tuple(label.rsplit(" ", 1)) if "runner" in row else (label, "direct")


def _peak_cell(tree: float | None, jvms: float | None) -> str:
    """ "8.74 (3.10)": a component's tree peak and the JVMs' share of it (blank if it did not run)."""
    if tree is None:
        return ""
    return f"{tree:.2f}" + (f" ({jvms:.2f})" if jvms else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="", help="Comma-separated numbers of ratings to generate.")
    parser.add_argument("--runners", default="direct", help=f"Comma-separated Beam runners: {', '.join(RUNNERS)}.")
    parser.add_argument("--layout", default="csv")
    parser.add_argument("--input-dir", help="A real release directory to run as one more row.")
    parser.add_argument("--label", default="input", help="The row name of --input-dir.")
    parser.add_argument("--work-dir", default="artifacts/scale")
    parser.add_argument("--run-args", default="", help="Extra `recommender run` arguments, quoted.")
    args = parser.parse_args()
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    results_file = work / "scale.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    rows: list[tuple[str, int | None, Path]] = []
    for size in [int(s) for s in args.sizes.split(",") if s]:
        data = work / f"data-{size}"
        if not data.exists():
            subprocess.run(recommender("data", "synth", "--ratings", str(size), "--layout", args.layout,
                                       "--output", str(data)), check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        rows.append((f"{size:,}", size, data))
    if args.input_dir:
        rows.append((args.label, None, Path(args.input_dir)))
    for label, size, data in rows:
        for runner in args.runners.split(","):
            root = work / f"run-{label.replace(',', '')}-{runner}"
            print(f"{label} on {runner}: running (log {root}.log)", flush=True)
            result = run_once(data, root, [*RUNNERS[runner], *args.run_args.split()], Path(f"{root}.log"))
            results[f"{label} {runner}"] = {"ratings": size, "runner": runner, "run_args": args.run_args, **result}
            results_file.write_text(json.dumps(results, indent=1))
    header = ["ratings", "runner", *COMPONENTS, "total s", "s / M ratings", "largest process GB", "tree GB", "status"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for label, row in results.items():
        cells = [f"{row['components'].get(name, 0):.0f}" for name in COMPONENTS]
        per_million = f"{row['seconds'] / (row['ratings'] / 1e6):.0f}" if row["ratings"] else ""
        peak = f"{row['peak_rss_gb']:.2f}" if row["peak_rss_gb"] else "?"
        tree = f"{row['tree_peak_gb']:.2f}" if row.get("tree_peak_gb") else "?"
        status = "ok" if row["status"] == 0 else f"failed ({row['status']})"
        name, runner = _size_and_runner(label, row)
        print(f"| {name} | {runner} | " + " | ".join(cells)
              + f" | {row['seconds']:.0f} | {per_million} | {peak} | {tree} | {status} |")  # fmt: skip
    print("\nPeak memory of the run's whole process tree while each component ran, GB (the JVMs' share at that peak):")
    print("| ratings | runner | " + " | ".join(COMPONENTS) + " |")
    print("|" + "---|" * (len(COMPONENTS) + 2))
    for label, row in results.items():
        peaks, jvms = row.get("component_peak_gb", {}), row.get("component_peak_jvm_gb", {})
        name, runner = _size_and_runner(label, row)
        cells = [_peak_cell(peaks.get(n), jvms.get(n)) for n in COMPONENTS]
        print(f"| {name} | {runner} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
