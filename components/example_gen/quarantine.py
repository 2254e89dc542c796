"""The quarantine: where ExampleGen puts the raw lines it rejects, what it counts, and the rejected-fraction limit.

Rejected lines are written as JSON lines (file, line_no, reason, message, text) with a summary.json inside the
Examples artifact; a run over the limit fails and keeps them outside the output TFX deletes.
"""

from __future__ import annotations

import json
import logging
import os

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from components.example_gen import movielens

MAX_REPORTED_ERRORS = 20
DEFAULT_MAX_REJECTED_FRACTION = 0.001
QUARANTINE_DIR = "quarantine"  # inside the Examples artifact: rejected-*.jsonl and summary.json
SUMMARY_FILE = "summary.json"
REJECTED_PREFIX = "rejected"


class RejectedRecordsError(RuntimeError):
    """More raw records were rejected than the configured fraction allows."""


class _RejectionSummary(beam.CombineFn):
    """Counts rejections per reason and keeps the first few in file/line order."""

    def create_accumulator(self):
        return {}, []

    def add_input(self, accumulator, rejection):
        counts, sample = accumulator
        counts[rejection.reason] = counts.get(rejection.reason, 0) + 1
        return counts, sorted([*sample, rejection], key=lambda r: (r.file, r.line_no))[:MAX_REPORTED_ERRORS]

    def merge_accumulators(self, accumulators):
        total, merged = {}, []
        for counts, sample in accumulators:
            for reason, count in counts.items():
                total[reason] = total.get(reason, 0) + count
            merged.extend(sample)
        return total, sorted(merged, key=lambda r: (r.file, r.line_no))[:MAX_REPORTED_ERRORS]

    def extract_output(self, accumulator):
        counts, sample = accumulator
        return {"rejected": dict(sorted(counts.items())), "sample": [r.to_dict() for r in sample]}


def _summary_json(_, summary: dict, line_counts: list) -> str:
    counts = dict(sorted(line_counts))
    rejected = sum(summary["rejected"].values())
    return json.dumps({"lines": counts, "total_lines": sum(counts.values()), "total_rejected": rejected, **summary})


class WriteQuarantine(beam.PTransform):
    """Writes rejected lines as JSON lines (file, line_no, reason, message, text) and a summary.json."""

    def __init__(self, directory: str, line_counts):
        super().__init__()
        self._directory = directory
        self._line_counts = line_counts

    def expand(self, rejected):
        _ = (
            rejected
            | "RejectionJson" >> beam.Map(lambda r: json.dumps(r.to_dict(), ensure_ascii=False))
            | "WriteRejected"
            >> beam.io.WriteToText(os.path.join(self._directory, REJECTED_PREFIX), file_name_suffix=".jsonl")
        )
        summary = rejected | "Summarize" >> beam.CombineGlobally(_RejectionSummary())
        return (
            rejected.pipeline
            | "One" >> beam.Create([None])
            | "SummaryJson"
            >> beam.Map(_summary_json, beam.pvalue.AsSingleton(summary), beam.pvalue.AsList(self._line_counts))
            | "WriteSummary"
            >> beam.io.WriteToText(os.path.join(self._directory, SUMMARY_FILE), num_shards=1, shard_name_template="")
        )


def read_summary(quarantine_uri: str) -> dict:
    """The summary.json ExampleGen wrote: lines per file, rejections per reason, first rejections."""
    with FileSystems.open(os.path.join(quarantine_uri, SUMMARY_FILE)) as handle:
        return json.loads(handle.read().decode("utf-8"))


def check_rejections(summary: dict, max_fraction: float, quarantine_uri: str) -> str:
    """One line saying how many records were rejected; raises RejectedRecordsError above `max_fraction`."""
    total, rejected = summary["total_lines"], summary["total_rejected"]
    fraction = rejected / total if total else 1.0
    reasons = ", ".join(f"{reason} {count:,}" for reason, count in summary["rejected"].items()) or "none"
    line = f"rejected {rejected:,} of {total:,} raw records ({fraction:.3%}; {reasons})"
    if total == 0:
        raise RejectedRecordsError(f"no raw records in the input: {', '.join(summary['lines'])} are empty")
    if fraction > max_fraction:
        sample = "\n  ".join(str(movielens.Rejection(**r)) for r in summary["sample"])
        more = f"\n  ... and {rejected - len(summary['sample']):,} more" if rejected > len(summary["sample"]) else ""
        raise RejectedRecordsError(
            f"ExampleGen {line}: more than the limit of {max_fraction:.3%} (--max-rejected-fraction); "
            f"nothing was published.\n  {sample}{more}\n"
            f"All rejected records: {quarantine_uri}/{REJECTED_PREFIX}-*.jsonl"
        )
    if rejected:
        logging.warning("ExampleGen %s; quarantined in %s", line, quarantine_uri)
    return line


FAILED_QUARANTINE_DIR = "rejected"  # <pipeline root>/ExampleGen/rejected/<execution id>/ after a failed run


def kept_quarantine_uri(examples_uri: str) -> str:
    """Where a failed execution's quarantine is kept: `<root>/<ExampleGen>/rejected/<execution id>`
    (the output `<root>/<ExampleGen>/examples/<execution id>` is removed by the launcher)."""
    execution_dir = examples_uri.rstrip("/")
    component_dir = os.path.dirname(os.path.dirname(execution_dir))
    return os.path.join(component_dir, FAILED_QUARANTINE_DIR, os.path.basename(execution_dir))


def copy_tree(source: str, destination: str) -> None:
    """Copies every file under `source` (Beam FileSystems: local or remote) to `destination`."""
    if not FileSystems.exists(destination):
        FileSystems.mkdirs(destination)
    files = [m.path for m in FileSystems.match([os.path.join(source, "*")])[0].metadata_list]
    FileSystems.copy(files, [os.path.join(destination, os.path.basename(path)) for path in files])
