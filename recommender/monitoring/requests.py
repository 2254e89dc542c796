"""The request log: one JSON object per line, appended by the app (and the replay), read by `recommender monitor`.

Two kinds of line:
  {"kind": "recommend", "time": UNIX_SECONDS, "model_version": V, "user_id": U, "rated": [[MOVIE, RATING], ...],
   "k": K, "diversity": D, "known_user": BOOL, "returned": [{"movie_id", "score", "predicted_rating"}, ...]}
  {"kind": "predict", "time": UNIX_SECONDS, "model_version": V, "features": {RAW SERVING FEATURES},
   "predicted_rating": R}
A line that is not JSON, not an object of a known kind, or carries a field its kind does not have is counted
and reported by `read`, never fatal: a log cut mid-line by a crash must not stop the monitor.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable

FIELDS = {
    "recommend": {"kind", "time", "model_version", "user_id", "rated", "k", "diversity", "known_user", "returned"},
    "predict": {"kind", "time", "model_version", "features", "predicted_rating"},
}
REQUIRED = {
    "recommend": {"kind", "user_id", "returned"},
    "predict": {"kind", "features", "predicted_rating"},
}
_lock = threading.Lock()


def recommend_record(model_version: str, user_id: str, rated, k: int, diversity: float, result: dict) -> dict:
    """The log line of one answered recommend request (`result` as recommendations.Model.recommend returns)."""
    return {
        "kind": "recommend",
        "time": time.time(),
        "model_version": model_version,
        "user_id": user_id,
        "rated": [[m, float(r)] for m, r in rated],
        "k": k,
        "diversity": diversity,
        "known_user": result["known_user"],
        "returned": [
            {"movie_id": m["movie_id"], "score": m["score"], "predicted_rating": m["predicted_rating"]}
            for m in result["movies"]
        ],
    }


def append(path: str, record: dict) -> None:
    """Appends one line (whole lines only, safe across the app's threads)."""
    line = json.dumps(record, separators=(",", ":")) + "\n"
    with _lock:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line)


@dataclasses.dataclass
class Log:
    """The readable records and what was wrong with the rest (reason → count, and the first few places)."""

    records: list[dict]
    bad: Counter
    examples: list[str]

    @property
    def bad_count(self) -> int:
        return sum(self.bad.values())


def _problem(record) -> str | None:
    if not isinstance(record, dict):
        return "not a JSON object"
    kind = record.get("kind")
    if kind not in FIELDS:
        return f"unknown kind {kind!r}"
    unknown = set(record) - FIELDS[kind]
    if unknown:
        return f"unknown fields ({', '.join(sorted(unknown))})"
    missing = REQUIRED[kind] - set(record)
    if missing:
        return f"missing fields ({', '.join(sorted(missing))})"
    return None


def read(paths: Iterable[str]) -> Log:
    """Every well-formed record of the `paths`; malformed lines counted by reason (truncated line, ...)."""
    log = Log([], Counter(), [])
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    problem = _problem(record)
                except json.JSONDecodeError:
                    problem = "truncated or not JSON"
                if problem:
                    log.bad[problem] += 1
                    if len(log.examples) < 5:
                        log.examples.append(f"{path}:{number}: {problem}")
                else:
                    log.records.append(record)
    return log
