"""The import form's preview and guessed mapping (issue 19, item 14)."""

from __future__ import annotations

from segcore.ingest.preview import guess_mapping, preview_file


def test_guess_mapping_uses_names_then_usual_aliases():
    assert guess_mapping(["CustomerID", "InvoiceDate", "Description"]) == {
        "user_id": "CustomerID", "ts": "InvoiceDate"}
    assert guess_mapping(["distinct_id", "Event Name", "time"]) == {
        "user_id": "distinct_id", "event": "Event Name", "ts": "time"}
    assert guess_mapping(["user_id", "event", "ts", "userId"]) == {}  # already named
    assert guess_mapping(["USER-ID", "x"]) == {"user_id": "USER-ID"}


def test_preview_reads_the_first_rows_like_the_import(tmp_path):
    src = tmp_path / "a.ndjson"
    src.write_text("".join(f'{{"uid": "u{i}", "action": "a", "timestamp": "2026-01-0{i + 1}"}}\n'
                           for i in range(7)))
    p = preview_file(src, rows=5)
    assert p.columns == ["uid", "action", "timestamp"]
    assert p.rows.height == 5 and p.rows["uid"].to_list()[:2] == ["u0", "u1"]
    assert p.mapping == {"user_id": "uid", "event": "action", "ts": "timestamp"}
