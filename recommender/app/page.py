"""The Streamlit script of `recommender app` (Streamlit runs it top to bottom on every interaction).

Query parameters make a view shareable: `?user=196` opens that user, `?rated=50:5,172:4` the new-user flow
with those ratings.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from recommender.app import logic  # noqa: E402
from recommender.explanations import Explainer, why  # noqa: E402
from recommender.recommendations import RecommendError  # noqa: E402

PAGES = ("Known user", "New user", "Model")


@st.cache_resource(show_spinner="Loading the model…")
def _model(settings: logic.Settings):
    return logic.load_model(settings)


@st.cache_resource(show_spinner="Preparing explanations…")
def _explainer(_model, version: str) -> Explainer:
    return Explainer(_model, background=logic.EXPLAIN_BACKGROUND)


@st.cache_resource
def _metrics(port: int) -> int:
    from recommender.monitoring import metrics

    return metrics.serve(port)


def markdown_table(rows: list[dict]) -> str:
    """Rows as a Markdown table (static HTML in the page: readable without the data-grid canvas)."""

    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def _recommendations(model, settings, user_id: str, rated, k: int, diversity: float, explain: bool) -> None:
    try:
        result = logic.recommend(model, settings, user_id, rated, k, diversity)
    except RecommendError as error:
        st.error(f"The model refused the request: {error}")
        return
    who = "a user the model knows" if result["known_user"] else "a new user (cold start)"
    name = "you" if user_id == logic.NEW_USER_ID else f"user {user_id}"
    st.subheader(f"Recommended for {name} — {who}")
    rows = []
    explainer = None
    if explain:
        try:
            explainer = _explainer(model, model.version)
        except RecommendError as error:  # a model pushed before the explanation signatures
            st.warning(f"No explanations for this model: {error}")
    for rank, movie in enumerate(result["movies"], 1):
        row = {"#": rank, "title": movie["title"], "genres": movie["genres"].replace("|", ", "),
               "predicted rating": round(movie["predicted_rating"], 2), "score": round(movie["score"], 3)}  # fmt: skip
        if explainer is not None:
            row["why"] = why(explainer.explain(user_id, movie["movie_id"], rated))
        rows.append(row)
    if not rows:
        st.info("The model has no movie left to recommend.")
        return
    st.markdown(markdown_table(rows))
    st.caption(
        "Score: retrieval score + rating weight × predicted rating. Why: the terms that raised the predicted "
        "rating most above the average rating (SHAP; `recommender explain` shows every term)."
    )


def known_user(model, settings, k: int, diversity: float, explain: bool) -> None:
    users = model.catalogue()["user_ids"]
    default = st.query_params.get("user", users[0] if users else "")
    user_id = st.text_input("User id", value=default, key="user_id").strip()
    if not user_id:
        st.error("Enter a user id.")
        return
    if users and user_id not in set(users):  # an older model does not list its users
        st.warning(f"User {user_id} is not in the model's snapshot: these are the recommendations for a new user.")
    _recommendations(model, settings, user_id, (), k, diversity, explain)
    try:
        rated = model.user_ratings(user_id)
    except RecommendError as error:
        st.info(f"This model cannot list a user's ratings: {error}")
        return
    st.subheader(f"Their ratings ({len(rated)}, newest first)")
    st.dataframe(pd.DataFrame(rated), hide_index=True, width="stretch")


def new_user(model, settings, k: int, diversity: float, explain: bool) -> None:
    given = st.query_params.get("rated", "")
    try:
        rated = logic.parse_rated_query(given) if given else []
    except ValueError as error:
        st.error(str(error))
        return
    query = st.text_input("Find movies by title", key="title_query")
    found = logic.find_movies(model, query) if query else []
    if query and not found:
        st.info(f"No movie title contains {query!r}.")
    labels = {f"{title} ({movie})": movie for movie, title in found}
    chosen = st.multiselect("Movies you have seen", list(labels), key="seen")
    low, high = model.catalogue()["rating_range"]  # half stars from 0.5 in ml-10m and later
    for label in chosen:
        rating = st.slider(label, low, high, 4.0, 0.5, key=f"rate_{labels[label]}")
        rated.append((labels[label], rating))
    if not rated:
        st.info("Rate a few movies to get recommendations (or open the page with ?rated=50:5,172:4).")
        return
    titles = dict(zip(model.catalogue()["movie_ids"], model.catalogue()["titles"], strict=True))
    st.write("Your ratings: " + "; ".join(f"{titles.get(m, m)} {r:g}★" for m, r in rated))
    _recommendations(model, settings, logic.NEW_USER_ID, rated, k, diversity, explain)


def model_view(settings) -> None:
    page = logic.model_page(settings)
    if page["error"]:
        st.warning(page["error"])
    run = page["run"]
    if run:
        st.subheader(f"Run {run['run']['run_id']} ({run['run']['status']})")
        decision = run.get("decision")
        if decision:
            from recommender import decision_view

            st.markdown("\n".join(f"- {line}" for line in decision_view.text_lines(decision)))
        slices = [{"slice": s["slice"], **s["metrics"]} for s in run["evaluation"]]
        st.dataframe(pd.DataFrame(slices), hide_index=True, width="stretch")
        if run.get("ranking"):
            from recommender import ranking_view

            st.subheader("Ranking (test split)")
            st.dataframe(pd.DataFrame(ranking_view.rows(run["ranking"])), hide_index=True, width="stretch")
    monitor = page["monitor"]
    st.subheader("Drift")
    if monitor is None:
        st.info(f"No monitoring result at {settings.monitor_file}: run `recommender monitor` on the request log.")
    else:
        st.write("Alerts: " + ("; ".join(monitor["alerts"]) or "none"))
        st.dataframe(pd.DataFrame(monitor["input_drift"]), hide_index=True, width="stretch")


def main() -> None:
    st.set_page_config(page_title="MovieLens recommender", layout="wide")
    settings = logic.Settings.from_env()
    st.title("MovieLens recommender")
    if settings.metrics_port:
        _metrics(settings.metrics_port)
    model, problem = _model(settings)
    default = 1 if "rated" in st.query_params else 0
    page = st.sidebar.radio("Page", PAGES, index=default, key="page")
    if page == "Model":
        model_view(settings)
        return
    if model is None:
        st.error(f"No model has been pushed yet: {problem}")
        return
    st.sidebar.caption(f"Model version {model.version}")
    k = st.sidebar.slider("How many movies", 1, 30, 10, key="k")
    diversity = st.sidebar.slider("Diversity", 0.0, 1.0, 0.0, 0.05, key="diversity",
                                  help="0: by relevance; towards 1: fewer movies of the same genres")  # fmt: skip
    explain = st.sidebar.checkbox("Explain each recommendation (SHAP)", value=True, key="explain")
    if page == "Known user":
        known_user(model, settings, k, diversity, explain)
    else:
        new_user(model, settings, k, diversity, explain)


main()
