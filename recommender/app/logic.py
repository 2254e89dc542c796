"""What the app does, apart from drawing it: settings, the model and explainer (loaded once), recommending with
a request log line and metrics, the model page's data (read by `inspection.inspect_run`, as `inspect` reads it)."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence

from pipeline.config import DEFAULT_MODEL_NAME, DEFAULT_PIPELINE_NAME, METADATA_FILE_NAME
from recommender.recommendations import Model, RecommendError, load, parse_rated

ENV = "RECOMMENDER_APP_"  # the CLI passes settings to the Streamlit script through RECOMMENDER_APP_* variables
NEW_USER_ID = "new-user"  # not in any snapshot: the recommend signature's cold-start path
EXPLAIN_BACKGROUND = 50  # background ratings of the app's "why" (the CLI's default is 100)


@dataclasses.dataclass(frozen=True)
class Settings:
    serving_dir: str = os.path.join("artifacts", "serving")
    model_name: str = DEFAULT_MODEL_NAME
    pipeline_root: str = os.path.join("artifacts", "pipeline")
    metadata_path: str = ""  # default: PIPELINE_ROOT/metadata.sqlite
    pipeline_name: str = DEFAULT_PIPELINE_NAME
    metrics_port: int = 0  # 0: no /metrics endpoint
    request_log: str = ""  # "": requests are not logged
    monitor_file: str = "monitor.json"  # `recommender monitor`'s latest result, shown on the model page

    def to_env(self) -> dict[str, str]:
        return {ENV + field.name.upper(): str(getattr(self, field.name)) for field in dataclasses.fields(self)}

    @classmethod
    def from_env(cls, environ=os.environ) -> Settings:
        values = {}
        for field in dataclasses.fields(cls):
            if ENV + field.name.upper() in environ:
                raw = environ[ENV + field.name.upper()]
                values[field.name] = int(raw) if field.type == "int" else raw
        return cls(**values)

    @property
    def metadata_file(self) -> str:
        return self.metadata_path or os.path.join(self.pipeline_root, METADATA_FILE_NAME)


def load_model(settings: Settings) -> tuple[Model | None, str | None]:
    """The newest pushed model, or None and why not."""
    try:
        return load(settings.serving_dir, settings.model_name), None
    except FileNotFoundError as error:
        return None, str(error)


def parse_rated_query(text: str) -> list[tuple[str, float]]:
    """`50:5,172:4.5` (the page's `rated` query parameter) → pairs; ValueError naming the bad one."""
    return parse_rated(tuple(part.strip() for part in text.split(",") if part.strip()))


def recommend(
    model: Model, settings: Settings, user_id: str, rated: Sequence[tuple[str, float]], k: int, diversity: float
) -> dict:
    """Model.recommend (counted for Prometheus), logged to the request log when one is set."""
    from recommender.monitoring import requests

    result = model.recommend(user_id, rated, k, diversity)
    if settings.request_log:
        requests.append(
            settings.request_log, requests.recommend_record(model.version, user_id, rated, k, diversity, result)
        )
    return result


def find_movies(model: Model, query: str, limit: int = 30) -> list[tuple[str, str]]:
    """(movie id, title) of catalogue movies whose title contains `query` (case-insensitive), most rated first."""
    catalogue = model.catalogue()
    needle = query.strip().lower()
    if not needle:
        return []
    hits = [i for i, title in enumerate(catalogue["titles"]) if needle in title.lower()]
    hits.sort(key=lambda i: -catalogue["rating_counts"][i])
    return [(catalogue["movie_ids"][i], catalogue["titles"][i]) for i in hits[:limit]]


def model_page(settings: Settings) -> dict:
    """{"run": inspect_run(...) or None, "error": why not, "monitor": the latest monitor result or None}."""
    from recommender.inspection import InspectionError, inspect_run

    page = {"run": None, "error": None, "monitor": None}
    try:
        page["run"] = inspect_run(settings.metadata_file, settings.pipeline_name)
    except InspectionError as error:
        page["error"] = str(error)
    if settings.monitor_file and os.path.exists(settings.monitor_file):
        with open(settings.monitor_file, encoding="utf-8") as handle:
            page["monitor"] = json.load(handle)
    return page


__all__ = ["NEW_USER_ID", "RecommendError", "Settings", "find_movies", "load_model", "model_page", "recommend"]
