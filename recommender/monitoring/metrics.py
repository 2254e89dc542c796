"""Prometheus metrics of the recommend path (the app and anything calling recommendations.Model.recommend).

Scraped from `/metrics` on the port `serve` opens (the app: --metrics-port). Names (README "Monitoring"):
  recommender_requests_total{model_version}            requests answered
  recommender_request_errors_total{model_version}      requests that raised
  recommender_request_latency_seconds{model_version}   histogram of the time to answer
  recommender_model_info{model_version}                1 for the model version loaded
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import prometheus_client as prom

REQUESTS = prom.Counter("recommender_requests", "Recommend requests answered.", ["model_version"])
ERRORS = prom.Counter("recommender_request_errors", "Recommend requests that failed.", ["model_version"])
LATENCY = prom.Histogram(
    "recommender_request_latency_seconds",
    "Time to answer a recommend request.",
    ["model_version"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
MODEL = prom.Gauge("recommender_model_info", "The model version loaded (value 1).", ["model_version"])


@contextlib.contextmanager
def timed_request(model_version: str) -> Iterator[None]:
    """Counts one request (or one error) and observes its latency."""
    MODEL.labels(model_version).set(1)
    started = time.perf_counter()
    try:
        yield
    except Exception:
        ERRORS.labels(model_version).inc()
        raise
    else:
        REQUESTS.labels(model_version).inc()
    finally:
        LATENCY.labels(model_version).observe(time.perf_counter() - started)


def serve(port: int) -> int:
    """Starts the `/metrics` HTTP endpoint on `port` (0: any free port) in a thread; returns the port.
    Once per process: the app caches the call (st.cache_resource)."""
    server, _thread = prom.start_http_server(port)
    return server.server_port
