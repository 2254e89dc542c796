"""`recommender app` on the shared first run's pushed model (e2e_run.py): its logic through Streamlit's AppTest,
one real run in headless Chromium, and the Prometheus metrics of the recommend path."""

import subprocess
import urllib.request
from pathlib import Path

import pytest
from app_server import start_app
from headless_browser import chromium, render
from prometheus_client.parser import text_string_to_metric_families

from recommender.app import logic
from recommender.monitoring import metrics, requests
from recommender.recommendations import Model, RecommendError

pytestmark = pytest.mark.e2e
PAGE = str(Path(logic.__file__).with_name("page.py"))


@pytest.fixture(scope="module")
def model(first_run) -> Model:
    return Model(first_run["summary"].pushed_path)


@pytest.fixture(scope="module")
def user(model) -> str:
    return model.catalogue()["user_ids"][0]


@pytest.fixture()
def settings(workspace, tmp_path, monkeypatch) -> logic.Settings:
    """The app's settings for this run, in the environment the page reads them from."""
    chosen = logic.Settings(
        serving_dir=str(workspace["serving"]),
        pipeline_root=str(workspace["root"]),
        request_log=str(tmp_path / "requests.jsonl"),
        monitor_file=str(tmp_path / "monitor.json"),
    )
    for name, value in chosen.to_env().items():
        monkeypatch.setenv(name, value)
    return chosen


def _app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(PAGE, default_timeout=300)


def _markdown(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_a_known_users_recommendations_with_why_and_their_ratings(settings, model, user):
    at = _app().run()
    assert not at.exception and not at.error
    expected = model.recommend(user, k=10)["movies"]
    table = _markdown(at)
    assert table.splitlines()[0] == "| # | title | genres | predicted rating | score | why |"
    assert all(movie["title"] in table for movie in expected)
    assert at.subheader[0].value.startswith(f"Recommended for user {user} — a user the model knows")
    assert at.subheader[1].value == f"Their ratings ({len(model.user_ratings(user))}, newest first)"
    (line,) = requests.read([settings.request_log]).records
    assert line["user_id"] == user and [m["movie_id"] for m in line["returned"]] == [m["movie_id"] for m in expected]


def test_a_new_user_finds_movies_rates_them_and_gets_a_list(settings, model):
    at = _app().run()
    at.sidebar.radio(key="page").set_value("New user").run()
    assert at.info[0].value.startswith("Rate a few movies")
    catalogue = model.catalogue()
    word = catalogue["titles"][0].split()[0]
    at.text_input(key="title_query").input(word).run()
    option = at.multiselect(key="seen").options[0]
    at.multiselect(key="seen").select(option).run()
    movie = option.rsplit("(", 1)[1].rstrip(")")
    at.slider(key=f"rate_{movie}").set_value(5.0).run()
    assert not at.exception and not at.error
    assert at.subheader[0].value.startswith("Recommended for you — a new user")
    expected = model.recommend(logic.NEW_USER_ID, [(movie, 5.0)], k=10)["movies"]
    assert all(m["title"] in _markdown(at) for m in expected)
    last = requests.read([settings.request_log]).records[-1]
    assert last["rated"] == [[movie, 5.0]] and not last["known_user"]


def test_bad_input_is_told_not_raised(settings):
    at = _app().run()
    at.text_input(key="user_id").input("  ").run()
    assert [e.value for e in at.error] == ["Enter a user id."]
    at = _app()
    at.query_params["rated"] = "50:9"
    at.run()
    assert not at.exception and "expected MOVIE_ID:RATING" in at.error[0].value


def test_no_model_pushed_yet_is_said_clearly(settings, tmp_path, monkeypatch):
    monkeypatch.setenv(logic.ENV + "SERVING_DIR", str(tmp_path / "empty"))
    at = _app().run()
    assert not at.exception
    assert at.error[0].value.startswith("No model has been pushed yet: no pushed model under")
    at.sidebar.radio(key="page").set_value("Model").run()  # the model page still reads the runs
    assert at.subheader[0].value.startswith("Run ")


def test_the_model_page_reads_the_run_as_inspect_does(settings, workspace):
    from recommender.inspection import inspect_run

    at = _app().run()
    at.sidebar.radio(key="page").set_value("Model").run()
    run = inspect_run(settings.metadata_file)
    assert at.subheader[0].value == f"Run {run['run']['run_id']} ({run['run']['status']})"
    assert len(at.dataframe[0].value) == len(run["evaluation"])
    gate = next(m.value for m in at.markdown if "rating gate" in m.value)
    assert f"test RMSE {run['decision']['comparison']['rmse']:.4f}, 95% interval" in gate
    assert at.info[-1].value.startswith("No monitoring result")


def _scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_requests_errors_and_latency(model, user):
    port = metrics.serve(0)
    version = (("model_version", model.version),)
    before = _scrape(port)
    for _ in range(3):
        model.recommend(user, k=5)
    with pytest.raises(RecommendError):
        model.recommend(user, [("1", 9.0)])
    after = _scrape(port)

    def moved(name: str, labels=version) -> float:
        return after.get((name, labels), 0.0) - before.get((name, labels), 0.0)

    assert moved("recommender_requests_total") == 3
    assert moved("recommender_request_errors_total") == 1
    assert moved("recommender_request_latency_seconds_count") == 4
    assert moved("recommender_request_latency_seconds_sum") > 0
    assert moved("recommender_request_latency_seconds_bucket", (("le", "+Inf"), *version)) == 4
    assert after[("recommender_model_info", version)] == 1


def test_the_app_in_a_real_browser(workspace, model, user, tmp_path):
    if chromium() is None:
        pytest.fail("headless Chromium is needed for this test: apt-get install chromium")
    log = tmp_path / "requests.jsonl"
    process, port, metrics_port = start_app(
        workspace["serving"], workspace["root"], str(log), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        known = render(f"http://127.0.0.1:{port}/?user={user}", tmp_path / "known.png", height=1400,
                       wait_for_text="Their ratings")  # fmt: skip
        assert known["errors"] == [] and all(r.startswith(f"http://127.0.0.1:{port}/") for r in known["requests"])
        assert all(m["title"] in known["text"] for m in model.recommend(user, k=10)["movies"])
        given = model.catalogue()["movie_ids"][:2]
        new = render(f"http://127.0.0.1:{port}/?rated={given[0]}:5,{given[1]}:4", tmp_path / "new.png",
                     height=1400, wait_for_text="Why: the terms")  # fmt: skip
        assert new["errors"] == [] and "Recommended for you — a new user" in new["text"]
        expected = model.recommend(logic.NEW_USER_ID, [(given[0], 5.0), (given[1], 4.0)], k=10)["movies"]
        assert all(m["title"] in new["text"] for m in expected)
        served = _scrape(metrics_port)
        lines = requests.read([str(log)]).records
        count = sum(v for (name, _), v in served.items() if name == "recommender_requests_total")
        assert count == len(lines) >= 2  # every answered request counted once, and logged once
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_model_pushed_before_the_explanation_signatures_still_recommends(settings, first_run, tmp_path, monkeypatch):
    """The first run's model saved again with only the signatures an older version exported."""
    import tensorflow as tf

    from transform import features as f

    loaded = tf.saved_model.load(first_run["summary"].pushed_path)
    kept = (f.SERVING_SIGNATURE, f.RECOMMEND_SIGNATURE, f.CATALOGUE_SIGNATURE)
    tf.saved_model.save(loaded, str(tmp_path / "older" / "movielens_ranker" / "1"),
                        signatures={name: loaded.signatures[name] for name in kept})  # fmt: skip
    monkeypatch.setenv(logic.ENV + "SERVING_DIR", str(tmp_path / "older"))
    at = _app().run()
    assert not at.exception and not at.error
    assert at.warning[0].value.startswith("No explanations for this model:")
    assert at.info[0].value.startswith("This model cannot list a user's ratings:")
    assert _markdown(at).splitlines()[0] == "| # | title | genres | predicted rating | score |"
