"""`recommender app`: start the Streamlit app (recommender/app/page.py) on localhost."""

from __future__ import annotations

import os
import sys

import click

from pipeline.config import DEFAULT_MODEL_NAME
from recommender.cli.common import DEFAULT_WORKDIR, main, pipeline_name_option


@main.command("app")
@click.option("--serving-dir", default=os.path.join(DEFAULT_WORKDIR, "serving"), show_default=True)
@click.option("--model-name", default=DEFAULT_MODEL_NAME, show_default=True)
@click.option("--pipeline-root", default=os.path.join(DEFAULT_WORKDIR, "pipeline"), show_default=True)
@click.option("--metadata-path", default="", help="SQLite MLMD file [default: PIPELINE_ROOT/metadata.sqlite].")
@pipeline_name_option
@click.option("--port", default=8501, show_default=True, type=click.IntRange(1, 65535))
@click.option("--metrics-port", default=9108, show_default=True, type=click.IntRange(0, 65535),
              help="Prometheus /metrics port (0: none).")  # fmt: skip
@click.option("--request-log", default=os.path.join(DEFAULT_WORKDIR, "requests.jsonl"), show_default=True,
              help="JSONL log of every request (what `recommender monitor` reads); '' for none.")  # fmt: skip
@click.option("--monitor-file", default="monitor.json", show_default=True,
              help="The latest `recommender monitor` result (shown on the model page).")  # fmt: skip
def app_command(serving_dir, model_name, pipeline_root, metadata_path, pipeline_name, port, metrics_port,
                request_log, monitor_file) -> None:  # fmt: skip
    """A Streamlit app on localhost: a user's recommendations and why, new-user recommendations, the model."""
    from recommender.app import logic

    settings = logic.Settings(
        serving_dir=os.path.abspath(serving_dir),
        model_name=model_name,
        pipeline_root=os.path.abspath(pipeline_root),
        metadata_path=os.path.abspath(metadata_path) if metadata_path else "",
        pipeline_name=pipeline_name,
        metrics_port=metrics_port,
        request_log=os.path.abspath(request_log) if request_log else "",
        monitor_file=os.path.abspath(monitor_file) if monitor_file else "",
    )
    script = os.path.join(os.path.dirname(logic.__file__), "page.py")
    metrics = f"http://localhost:{metrics_port}/metrics" if metrics_port else "off"
    click.echo(f"App on http://localhost:{port}  (metrics: {metrics})")
    command = [sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port), "--server.headless",
               "true", "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
               "--client.toolbarMode", "viewer"]  # fmt: skip
    sys.stdout.flush()
    # Streamlit replaces this process (same pid): Ctrl-C, SIGTERM (kill, systemd, Kubernetes) reach the server
    # itself, and no child is left holding the port when the command is stopped.
    os.execve(sys.executable, command, {**os.environ, **settings.to_env()})
