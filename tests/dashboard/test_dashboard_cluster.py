"""The dashboard end to end on a real Spark standalone cluster: with the sidebar's engine set
to the cluster's master URL (the ``spark_cluster`` fixture of tests/conftest.py, started once),
the real pages show the numbers the Polars pages show."""

from __future__ import annotations

from typing import Any

from streamlit.testing.v1 import AppTest

from segcore.engine.sql.engines import spark_session
from tests.dashboard.test_dashboard_engine import captions, store  # noqa: F401 - fixture
from tests.dashboard.test_dashboard_pages import APP, assert_clean, goto

PAGES = ("events",)  # an event report: its metrics and table (each page is Spark jobs)


def shown(at: AppTest) -> dict[str, Any]:
    """What a page shows: its text, metrics and tables (as plain lists)."""
    return {
        "text": [m.value for m in at.main.markdown],
        "metrics": [(m.label, m.value) for m in at.main.metric],
        "tables": [{c: [str(v) for v in d.value[c].tolist()] for c in d.value.columns}
                   for d in at.main.dataframe],
    }


def test_the_pages_on_a_spark_cluster_show_the_polars_numbers(store, spark_cluster):  # noqa: F811
    at = AppTest.from_file(APP, default_timeout=900)
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
