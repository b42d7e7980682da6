"""The dashboard end to end on DuckDB: every page that computes shows the same numbers and
tables on the duckdb engine as on Polars (docs/engines.md)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from segcore.sample.examples import seed_examples
from tests.dashboard.test_dashboard_pages import APP, AS_OF, TIMEOUT, assert_clean, goto

PAGES = ["overview", "segments", "segment", "compare", "funnels", "events", "retention", "user"]


@pytest.fixture
def store(writable_sample, monkeypatch):
    seed_examples(writable_sample)
    monkeypatch.setenv("SEGCORE_HOME", str(writable_sample.home))
    for var in ("SEGCORE_PASSWORD", "SEGCORE_ENGINE", "SEGCORE_SPARK_MASTER"):
        monkeypatch.delenv(var, raising=False)
    return writable_sample


def shown(at: AppTest, page: str, user: str) -> dict:
    """What ``page`` shows: its metrics, text and every table (as lists of rows)."""
    goto(at, page)
    if page == "user":
        at.text_input(key="ul_id").input(user).run()
    assert_clean(at)
    tables = [d.value.astype(str).values.tolist() for d in at.dataframe]
    return {"metrics": {m.label: m.value for m in at.metric}, "tables": tables,
            "text": [m.value for m in at.main.markdown]}


def test_every_page_shows_the_same_numbers_on_duckdb(store):
    user = store.scan_users().select("user_id").head(1).collect().item()
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    on_polars = {page: shown(at, page, user) for page in PAGES}
    goto(at, "data")  # a page that computes nothing
    at.sidebar.selectbox(key="engine_pick").select("duckdb").run()
    assert "engine: duckdb" in [c.value for c in at.sidebar.caption]
    for page in PAGES:  # ok-loop: one page at a time
        on_duckdb = shown(at, page, user)
        assert "engine: duckdb" in [c.value for c in at.sidebar.caption], page
        assert on_duckdb == on_polars[page], page
    counted = {p: sum(map(len, v.values())) for p, v in on_polars.items()}
    assert all(counted.values()), counted  # every page showed something to compare
    sizes = {f"{store.count(segment=s.name, as_of=AS_OF):,}" for s in store.catalog.list()}
    assert sizes <= set(on_polars["segments"]["text"])  # the member counts were compared
