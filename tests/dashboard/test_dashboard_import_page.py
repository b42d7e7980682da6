"""The Data page's import (issue 19, items 12 and 14): a preview of the uploaded file with
column dropdowns defaulting to the guessed mapping, and a clear stop on a file imported
before with the choice to skip it or import it again."""

from __future__ import annotations

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from tests.dashboard.test_dashboard_pages import APP, TIMEOUT, frame, goto

CSV = (b"CustomerID,What,InvoiceDate,Note\n"
       b"17850,bought,2026-06-01 10:00:00,a\n14527,bought,2026-06-02 11:00:00,b\n"
       b"17850,returned,2026-06-03 12:00:00,c\n")


@pytest.fixture
def app(tiny, monkeypatch) -> AppTest:
    store = tiny(events=[("u1", "x", "2026-05-01T10:00:00Z")],
                 users=[{"user_id": "u1"}])
    monkeypatch.setenv("SEGCORE_HOME", str(store.home))
    monkeypatch.delenv("SEGCORE_PASSWORD", raising=False)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    goto(at, "data")
    at.store = store  # type: ignore[attr-defined]
    return at


def upload_and_import(at: AppTest, choice: str | None = None) -> AppTest:
    at.file_uploader(key="dt_files").set_value(("orders.csv", CSV, "text/csv")).run()
    if choice:
        at.radio(key="dt_if_imported").set_value(choice)
    next(b for b in at.button if b.label == "Import").click().run()
    assert not at.exception, at.exception
    return at


def events(at: AppTest) -> int:
    return at.store.scan_events().select(pl.len()).collect().item()


def test_the_preview_shows_the_first_rows_and_guessed_column_dropdowns(app):
    assert app.caption and any("Choose a file above" in c.value for c in app.caption)
    app.file_uploader(key="dt_files").set_value(("orders.csv", CSV, "text/csv")).run()
    assert not app.exception and not app.error
    preview = frame(app, "InvoiceDate")
    assert list(preview.columns) == ["CustomerID", "What", "InvoiceDate", "Note"]
    assert preview["Note"].tolist() == ["a", "b", "c"]
    assert any("First rows of **orders.csv** (4 columns)" in c.value for c in app.caption)
    picks = {t: app.selectbox(key=f"dt_pick_{t}") for t in ("user_id", "event", "ts")}
    assert picks["user_id"].options == ["(no mapping: same name)", "CustomerID", "What",
                                        "InvoiceDate", "Note"]
    assert {t: p.value for t, p in picks.items()} == {
        "user_id": "CustomerID", "event": "(no mapping: same name)", "ts": "InvoiceDate"}
    picks["event"].set_value("What")  # the user picks the event column
    next(b for b in app.button if b.label == "Import").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert any(s.value.startswith("imported 3 of 3 rows into events") for s in app.success)
    stored = app.store.scan_events().filter(pl.col("user_id") == "17850").sort("ts").collect()
    assert stored["event"].to_list() == ["bought", "returned"]


def test_a_file_imported_before_is_stopped_skipped_or_imported_again(app):
    upload_and_import(app)
    app.selectbox(key="dt_pick_event").set_value("What")
    next(b for b in app.button if b.label == "Import").click().run()
    assert events(app) == 4
    upload_and_import(app)  # the same file again: stopped, with both choices named
    assert [e.value for e in app.error] == [
        "already imported: orders.csv (imported "
        + app.error[0].value.split("(imported ")[1].split(")")[0]
        + "); importing the same content again would store its events twice. Choose 'Skip "
        "it' (leave those files out) or 'Import it again' under 'If a file was imported "
        "before', or give key columns"]
    assert events(app) == 4
    upload_and_import(app, "Skip it")
    assert not app.error and events(app) == 4
    assert any("every file was imported before" in s.value for s in app.success)
    assert [w.value for w in app.warning] == ["Skipped (imported before): orders.csv"]
    upload_and_import(app, "Import it again")
    assert not app.error and events(app) == 7
    assert any(w.value.startswith("Imported again (imported before, same content): orders.csv")
               for w in app.warning)
