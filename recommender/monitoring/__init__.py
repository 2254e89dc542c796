"""Watching the model in use: Prometheus metrics of the recommend path (`metrics`), the request log (`requests`)
and `recommender monitor`'s drift and live-quality checks (`drift`, `live`)."""
