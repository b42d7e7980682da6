"""Imports from the dashboard's Data page (dashboard/imports.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.imports import parse_mapping, run_import
from segcore import Store
from segcore.errors import IngestError, UsageError


def test_parse_mapping():
    assert parse_mapping(
        {"user_id": " CustomerID ", "event": "", "ts": "When"}, "price=Amount, city = Town"
    ) == {"user_id": "CustomerID", "ts": "When", "price": "Amount", "city": "Town"}
    with pytest.raises(UsageError, match="bad mapping 'price': write target=source"):
        parse_mapping({}, "price")


def test_import_events_with_mapping_and_rejects(tiny):
    store = tiny(users=[{"user_id": "a"}])
    csv = b"Customer,What,When\na,signed_up,2026-05-01T10:00:00Z\nb,charged,not a time\n"
    with pytest.raises(IngestError):
        run_import(
            store,
            "events",
            [("ev.csv", csv)],
            mapping={"user_id": "Customer", "event": "What", "ts": "When"},
        )
    assert store.info()["events"] == 0
    seen = []
    summary, rejected = run_import(
        store,
        "events",
        [("ev.csv", csv)],
        mapping={"user_id": "Customer", "event": "What", "ts": "When"},
        skip_invalid=True,
        progress=lambda f, m: seen.append(f),
    )
    assert summary["rows_read"] == 2 and summary["rows_imported"] == 1
    assert summary["rows_rejected"] == 1
    assert b"not a time" in rejected
    assert store.info()["events"] == 1 and store.event_names() == ["signed_up"]
    assert seen and seen[-1] == 1.0


def test_import_users_same_file_name_twice(tiny):
    store = tiny(users=[{"user_id": "a", "age": 3}])
    summary, rejected = run_import(
        store, "users", [("u.csv", b"user_id,age\nb,40\n"), ("u.csv", b"user_id,age\nc,50\n")]
    )
    assert rejected is None
    assert summary["rows_imported"] == 2
    assert store.count("age >= 40") == 2


def test_errors_name_the_uploaded_file_not_its_temporary_copy(tiny):
    store = tiny(users=[{"user_id": "a"}])
    with pytest.raises(IngestError) as err:
        run_import(store, "events", [("my events.csv", b"user_id,event,ts\na,x,yesterday\n")])
    message = str(err.value)
    assert "my events.csv" in message and "segcore-upload-" not in message, message
    assert store.info()["events"] == 0


EXPORTS = Path(__file__).resolve().parents[2] / "examples" / "exports"


def test_import_a_tool_export_into_both_tables(tmp_path):
    store = Store(tmp_path / "store")
    files = [(p.name, p.read_bytes()) for p in
             (EXPORTS / "mixpanel-events.ndjson", EXPORTS / "mixpanel-people.json")]
    summary, rejected = run_import(store, "export", files, format="mixpanel")
    assert rejected is None
    assert (summary["rows_read"], summary["rows_imported"], summary["duplicates_skipped"]) == (
        6, 5, 1,
    )
    assert "users.$email" in summary["new_columns"] and "events.amount" in summary["new_columns"]
    assert store.count("\"$email\" = 'noa@example.com'") == 1
    assert store.info()["events"] == 3


def test_a_tool_export_needs_the_export_kind_and_a_tool(tmp_path):
    store = Store(tmp_path / "store")
    data = [("e.ndjson", (EXPORTS / "mixpanel-events.ndjson").read_bytes())]
    with pytest.raises(UsageError, match="a mixpanel export goes in with Import: export"):
        run_import(store, "events", data, format="mixpanel")
    with pytest.raises(UsageError, match="choose the tool as the format"):
        run_import(store, "export", data, format=None)
    assert not (tmp_path / "store").exists()


def test_export_errors_name_the_uploaded_archive(tmp_path):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        line = b'{"event_type": "x", "user_id": "u1", "event_time": "2026-05-01 09:00:00.000000"}'
        zf.writestr("123/123_2026-05-01_9#0.json", line + b"\n{oops\n")
    with pytest.raises(IngestError) as err:
        run_import(Store(tmp_path / "s"), "export", [("export.zip", buf.getvalue())],
                   format="amplitude")
    assert str(err.value).startswith("export.zip:123/123_2026-05-01_9#0.json: line 2: broken JSON")
def test_import_with_derived_columns_key_and_trim(tiny):
    from dashboard.imports import parse_derivations

    store = tiny(users=[{"user_id": "17850"}])
    csv = (
        b"InvoiceNo,StockCode,Quantity,UnitPrice,CustomerID,When,Note\n"
        b"536365,85123A,6,2.55,17850.0,2026-05-01T10:00:00Z, a \n"
        b"C536379,D,-1,27.5,14527,2026-05-02T10:00:00Z,b\n"
    )
    derive = parse_derivations(
        "event = CASE WHEN InvoiceNo LIKE 'C%' THEN 'cancelled' ELSE 'purchased' END\n\n"
        "  amount = Quantity * UnitPrice  \n"
    )
    assert derive == [
        "event = CASE WHEN InvoiceNo LIKE 'C%' THEN 'cancelled' ELSE 'purchased' END",
        "amount = Quantity * UnitPrice",
    ]
    kw = dict(mapping={"user_id": "CustomerID", "ts": "When"}, derive=derive,
              key=" InvoiceNo,StockCode ", trim=True)
    summary, _ = run_import(store, "events", [("orders.csv", csv)], **kw)
    assert summary["rows_imported"] == 2 and summary["user_ids_without_user"] == 1
    ev = store.scan_events().sort("ts").collect()
    assert ev["event"].to_list() == ["purchased", "cancelled"]
    assert ev["amount"].to_list() == pytest.approx([15.3, -27.5])
    assert ev["user_id"].to_list() == ["17850", "14527"] and ev["Note"].to_list() == ["a", "b"]
    again, _ = run_import(store, "events", [("orders.csv", csv)], **kw)
    assert (again["rows_imported"], again["duplicates_skipped"], again["identical_rows"]) == (0, 2, 2)
    with pytest.raises(IngestError, match="derived column 'x = nope': unknown event column 'nope'"):
        run_import(store, "events", [("orders.csv", csv)], **{**kw, "derive": [derive[0], "x = nope"]})
