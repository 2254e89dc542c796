"""Submit a compiled PipelineSpec to Kubeflow Pipelines v2 with `kfp.Client`.

Each submit uploads the YAML as a new version of the pipeline (creating the pipeline on first use),
gets or creates the experiment, and starts a run of that version. Credentials come from the caller
(a flag or an environment variable); they are sent as a bearer token and never printed or logged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import html
import io
import json
import logging
import re

import kfp
import kfp_server_api
import urllib3
import yaml

from pipeline.config import DEFAULT_PIPELINE_NAME

DEFAULT_EXPERIMENT = DEFAULT_PIPELINE_NAME


class SubmitError(RuntimeError):
    """The pipeline could not be submitted; the message says why (never containing the token)."""


@dataclasses.dataclass(frozen=True)
class SubmittedRun:
    """What `submit` created on the cluster."""

    run_id: str
    url: str
    pipeline_id: str
    version_id: str
    experiment_id: str


def _pipeline_name(package: str) -> str:
    try:
        with open(package) as handle:
            spec = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as error:
        raise SubmitError(f"cannot read pipeline package {package}: {error}") from error
    name = (spec or {}).get("pipelineInfo", {}).get("name") if isinstance(spec, dict) else None
    if not name or "root" not in spec:
        raise SubmitError(f"{package} is not a KFP v2 PipelineSpec YAML (compile it with `recommender compile`)")
    return name


MAX_REASON_CHARS = 200


def short_reason(body: str | bytes | None) -> str:
    """One short line from an error body: a JSON API error's message, an HTML page's title (or first
    heading, or first text), else the body's first line, cut to MAX_REASON_CHARS."""
    if not body:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    try:
        decoded = json.loads(text)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict):
        text = str(decoded.get("message") or decoded.get("error") or text)
    elif re.search(r"<\s*(html|body|head|title|h1)\b", text, re.IGNORECASE):
        found = re.search(r"<(title|h1)[^>]*>(.*?)</\1>", text, re.IGNORECASE | re.DOTALL)
        text = found.group(2) if found else re.sub(r"<[^>]*>", " ", text)
        text = html.unescape(re.sub(r"<[^>]*>", " ", text))
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    line = " ".join(line.split())
    return line if len(line) <= MAX_REASON_CHARS else line[: MAX_REASON_CHARS - 1] + "…"


def _explain(error: Exception, host: str, token: str | None) -> str:
    if isinstance(error, kfp_server_api.ApiException):
        hint = {401: "check the token (--token-env)", 403: "the token lacks permission (namespace?)"}
        message = f"KFP at {host} refused the request: HTTP {error.status} {error.reason}"
        if error.status in hint:
            message += f"; {hint[error.status]}"
        else:
            reason = short_reason(error.body)
            if reason and reason.lower() != str(error.reason).lower():
                message += f": {reason}"
    else:
        message = f"cannot reach KFP at {host}: {error}"
    return message.replace(token, "***") if token else message


@contextlib.contextmanager
def _quiet():
    """kfp.Client prints links and logs retries; we print our own summary instead."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def _check_reachable(host: str, token: str | None) -> None:
    """One healthz call, no retries: kfp.Client would retry 5 times, 5 s apart, before failing."""
    config = kfp_server_api.Configuration(host=host)
    if token:
        config.api_key["authorization"] = token
        config.api_key_prefix["authorization"] = "Bearer"
    kfp_server_api.HealthzServiceApi(kfp_server_api.ApiClient(config)).get_healthz()


def submit(
    package: str,
    host: str,
    experiment: str = DEFAULT_EXPERIMENT,
    namespace: str | None = None,
    token: str | None = None,
    run_name: str | None = None,
) -> SubmittedRun:
    """Uploads `package` as a pipeline version and starts a run of it; returns the run id and URL."""
    if not host.startswith(("http://", "https://")):
        raise SubmitError(f"--host must be an http(s):// URL of the KFP API, got {host!r}")
    name = _pipeline_name(package)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    host = host.rstrip("/")
    try:
        with _quiet():
            _check_reachable(host, token)
            client = kfp.Client(host=host, existing_token=token, namespace=namespace or "kubeflow")
            pipeline_id = client.get_pipeline_id(name)
            if pipeline_id is None:  # First submit: the upload creates the pipeline and its first version.
                pipeline_id = client.upload_pipeline(package, pipeline_name=name, namespace=namespace).pipeline_id
                versions = client.list_pipeline_versions(pipeline_id, page_size=1, sort_by="created_at desc")
                version_id = versions.pipeline_versions[0].pipeline_version_id
            else:
                version_id = client.upload_pipeline_version(
                    package, pipeline_version_name=f"{name}-{stamp}", pipeline_id=pipeline_id
                ).pipeline_version_id
            experiment_id = client.create_experiment(experiment, namespace=namespace).experiment_id
            run = client.run_pipeline(
                experiment_id,
                run_name or f"{name} {stamp}",
                pipeline_id=pipeline_id,
                version_id=version_id,
            )
    except (kfp_server_api.ApiException, urllib3.exceptions.HTTPError, OSError) as error:
        raise SubmitError(_explain(error, host, token)) from error
    return SubmittedRun(
        run_id=run.run_id,
        url=f"{host}/#/runs/details/{run.run_id}",
        pipeline_id=pipeline_id,
        version_id=version_id,
        experiment_id=experiment_id,
    )
