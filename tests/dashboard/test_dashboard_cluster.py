"""The dashboard end to end on a real Spark standalone cluster: with the sidebar's engine set
to the cluster's master URL (the ``spark_cluster`` fixture of tests/conftest.py, started once),
the real pages show the numbers the Polars pages show: the events page on the sample store, and
the segments list (sizes), a segment's page (size, size over time, its entries and exits) and
the funnels page on a tiny store (each number is a Spark job: a loaded 2-core machine runs
them within the time limit)."""

from __future__ import annotations

from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from segcore.engine.sql.engines import spark_session
from segcore.segments import create_segment
from tests.conftest import make_store
from tests.dashboard.test_dashboard_engine import captions, store  # noqa: F401 - fixture
from tests.dashboard.test_dashboard_pages import APP, assert_clean, goto

PAGES = ("events",)  # an event report: its metrics and table (each page is Spark jobs)
TIMEOUT = 900  # per run of a page: a loaded 2-core machine, Spark jobs on 2 one-core workers


def shown(at: AppTest) -> dict[str, Any]:
    """What a page shows: its text, metrics and tables (as plain lists)."""
    return {
        "text": [m.value for m in at.main.markdown],
        "metrics": [(m.label, m.value) for m in at.main.metric],
        "captions": [c.value for c in at.main.caption],
        "tables": [{c: [str(v) for v in d.value[c].tolist()] for c in d.value.columns}
                   for d in at.main.dataframe],
    }


def test_the_pages_on_a_spark_cluster_show_the_polars_numbers(store, spark_cluster):  # noqa: F811
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert_clean(at)
    on_polars = {page: shown(goto(at, page)) for page in PAGES}
    assert any(on_polars["events"]["tables"]), on_polars["events"]  # a table to compare
    goto(at, "user")  # a page that runs nothing until an id is given
    at.sidebar.selectbox(key="engine_pick").select("spark").run()
    at.sidebar.text_input(key="spark_master_pick").input(spark_cluster.url).run()
    assert f"engine: spark@{spark_cluster.url}" in captions(at)
    for page in PAGES:  # ok-loop: one cluster run per page
        on_cluster = shown(goto(at, page))
        assert_clean(at)
        assert on_cluster == on_polars[page], page
    # the pages ran on the cluster: the master lists the dashboard's application
    assert spark_session(spark_cluster.url).sparkContext.master == spark_cluster.url
    assert [a["name"] for a in spark_cluster.state()["activeapps"]] == ["segcore"]


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """Five users in June 2026 and two saved segments: what the segment pages and the funnel
    need, small enough for a Spark job per number on a loaded machine."""
    events = [
        ("u1", "product_viewed", "2026-06-01T10:00:00"), ("u1", "added_to_cart", "2026-06-01T10:05:00"),
        ("u1", "charged", "2026-06-01T10:10:00", {"amount": 20.0}),
        ("u2", "product_viewed", "2026-06-03T09:00:00"), ("u2", "added_to_cart", "2026-06-03T09:30:00"),
        ("u3", "product_viewed", "2026-06-10T12:00:00"), ("u3", "charged", "2026-06-20T12:00:00", {"amount": 5.0}),
        ("u4", "product_viewed", "2026-06-15T08:00:00"), ("u4", "added_to_cart", "2026-06-15T08:01:00"),
        ("u4", "charged", "2026-06-15T20:00:00", {"amount": 7.5}),
        ("u5", "charged", "2026-06-25T23:59:59", {"amount": 1.0}), ("u5", "product_viewed", "2026-06-28T07:00:00"),
    ]
    users = [{"user_id": f"u{i}", "country": c, "email": f"u{i}@example.com" if i != 2 else None,
              "email_opt_in": i % 2 == 1, "phone": "+4930123" if i < 3 else None,
              "sms_opt_in": True, "whatsapp_opt_in": i == 1, "push_token": None,
              "push_opt_in": False}
             for i, c in zip(range(1, 6), ("DE", "US", "US", None, "FR"), strict=True)]
    small = make_store(tmp_path / "tiny", [(*e, {"amount": None}) if len(e) == 3 else e
                                           for e in events], users)
    create_segment(small, "Buyers", "did('charged', within => '7 days')")
    create_segment(small, "Carts", "did('added_to_cart', within => '30 days')")
    monkeypatch.setenv("SEGCORE_HOME", str(small.home))
    monkeypatch.delenv("SEGCORE_PASSWORD", raising=False)
    monkeypatch.delenv("SEGCORE_ENGINE", raising=False)
    monkeypatch.delenv("SEGCORE_SPARK_MASTER", raising=False)
    return small


def segment_page(at: AppTest, name: str) -> dict[str, Any]:
    """A segment's page: its size metrics and captions (engagement; entries, exits and
    members over the range; who entered on the last day); its other tabs run without error."""
    at.session_state["segment"] = name
    page = shown(goto(at, "segment"))
    assert_clean(at)  # every tab: reachability, profile, members too
    return {"metrics": page["metrics"], "captions": page["captions"],
            "downloads": [b.proto.label for b in at.main.get("download_button")]}


def test_segments_segment_and_funnels_on_a_spark_cluster(tiny, spark_cluster):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert_clean(at)
    on_polars = {"segments": shown(goto(at, "segments"))["text"],
                 "Buyers": segment_page(at, "Buyers"), "funnels": shown(goto(at, "funnels"))}
    assert_clean(at)
    sizes = {n: tiny.count(segment=n, as_of="2026-06-28") for n in ("Buyers", "Carts")}
    assert sizes == {"Buyers": 1, "Carts": 3}  # u5; u1, u2, u4
    assert ("Members now", "1") in on_polars["Buyers"]["metrics"]
    assert any(c.startswith("Over the range: ") for c in on_polars["Buyers"]["captions"])
    assert on_polars["funnels"]["metrics"] and any(on_polars["funnels"]["tables"])
    goto(at, "user")  # a page that runs nothing until an id is given
    at.sidebar.selectbox(key="engine_pick").select("spark").run()
    at.sidebar.text_input(key="spark_master_pick").input(spark_cluster.url).run()
    assert f"engine: spark@{spark_cluster.url}" in captions(at)
    assert shown(goto(at, "segments"))["text"] == on_polars["segments"]
    assert_clean(at)
    assert segment_page(at, "Buyers") == on_polars["Buyers"]
    assert_clean(at)
    assert shown(goto(at, "funnels")) == on_polars["funnels"]
    assert_clean(at)
    assert f"engine: spark@{spark_cluster.url}" in captions(at)
    assert [a["name"] for a in spark_cluster.state()["activeapps"]] == ["segcore"]
