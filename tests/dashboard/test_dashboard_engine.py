"""The sidebar's engine setting: shown on every page, passed to the runners, and an engine's
error is one line on the page."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from segcore.sample.examples import seed_examples
from tests.dashboard.test_dashboard_pages import APP, AS_OF, TIMEOUT, assert_clean, goto


@pytest.fixture
def store(writable_sample, monkeypatch):
    seed_examples(writable_sample)
    monkeypatch.setenv("SEGCORE_HOME", str(writable_sample.home))
    monkeypatch.delenv("SEGCORE_PASSWORD", raising=False)
    monkeypatch.delenv("SEGCORE_ENGINE", raising=False)
    monkeypatch.delenv("SEGCORE_SPARK_MASTER", raising=False)
    return writable_sample


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.sidebar.caption]


def texts(at: AppTest) -> list[str]:
    return [m.value for m in at.main.markdown]


def test_engine_is_shown_and_used_on_every_page(store):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert_clean(at)
    assert "engine: auto: polars" in captions(at)  # a store the event cache holds
    on_polars = texts(goto(at, "segments"))  # names and member counts of every segment
    name = store.catalog.list()[0].name
    assert f"{store.count(segment=name, as_of=AS_OF):,}" in on_polars
    goto(at, "user")  # a page that computes nothing until an id is given
    at.sidebar.selectbox(key="engine_pick").select("duckdb").run()
    assert "engine: duckdb" in captions(at)
    on_duckdb = texts(goto(at, "segments"))
    assert_clean(at)
    assert "engine: duckdb" in captions(at)
    assert on_duckdb == on_polars
    for page in ("user", "data"):  # ok-loop: the choice holds on other pages
        goto(at, page)
        assert_clean(at)
        assert "engine: duckdb" in captions(at), page
    # event counts per Berlin day run on the SQL engine too (docs/engines.md, Time zones)
    at.sidebar.selectbox(key="report_tz_UTC").select("Europe/Berlin").run()
    goto(at, "events")
    assert_clean(at)
    assert "engine: duckdb" in captions(at)
    # retention per Berlin week runs on the SQL engine too
    goto(at, "retention")
    assert_clean(at)
    assert "engine: duckdb" in captions(at)


def test_spark_master_setting(store):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    goto(at, "user")  # a page that runs nothing until an id is given
    at.sidebar.selectbox(key="engine_pick").select("spark").run()
    at.sidebar.text_input(key="spark_master_pick").input("spark://127.0.0.1:7077").run()
    assert "engine: spark@spark://127.0.0.1:7077" in captions(at)
    goto(at, "data")  # the choice holds across pages
    assert "engine: spark@spark://127.0.0.1:7077" in captions(at)
    assert at.sidebar.text_input(key="spark_master_pick").value == "spark://127.0.0.1:7077"


def test_default_engine_from_the_environment(monkeypatch):
    from dashboard.state import default_engine
    from segcore.engine.choice import Engine

    monkeypatch.setenv("SEGCORE_ENGINE", "duckdb")
    monkeypatch.setenv("SEGCORE_SPARK_MASTER", "spark://h:7077")
    assert default_engine() == Engine("duckdb")
    monkeypatch.setenv("SEGCORE_ENGINE", "spark")
    assert default_engine() == Engine("spark", "spark://h:7077")
    monkeypatch.setenv("SEGCORE_ENGINE", "polars")
    assert default_engine() == Engine("polars")
    monkeypatch.setenv("SEGCORE_ENGINE", "nonsense")
    assert default_engine() == "auto"
    monkeypatch.delenv("SEGCORE_ENGINE")
    assert default_engine() == "auto"


def test_auto_on_a_store_too_large_for_the_cache(store, monkeypatch):
    """Above SEGCORE_EVENT_CACHE_MAX_ROWS (forced low) the caption on every page says which
    analytics run on DuckDB, and the numbers are the ones Polars shows."""
    monkeypatch.setenv("SEGCORE_EVENT_CACHE_MAX_ROWS", "1000")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert_clean(at)
    auto = "engine: auto: duckdb for engagement, lifecycle, stickiness; polars for the rest"
    assert auto in captions(at)
    on_auto = texts(goto(at, "segments"))  # member counts
    assert_clean(at)
    assert auto in captions(at)
    goto(at, "user")
    at.sidebar.selectbox(key="engine_pick").select("polars").run()
    assert "engine: polars" in captions(at)
    assert texts(goto(at, "segments")) == on_auto
