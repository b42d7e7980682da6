"""``segcore ingest export --format TOOL``: raw exports of other tools into both tables.

The input files are hand-made from each tool's public format description and shipped in
``examples/exports/`` (docs/ingest.md lists the mapping); compressed forms (Amplitude's
zip of gzipped hourly files, gzipped Segment/S3 files, PostHog Parquet) are built from
them here. Every stored value is asserted.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
import zipfile
from pathlib import Path

import polars as pl
import pytest

from segcore import Store
from segcore.cli import main
from segcore.errors import IngestError
from segcore.ingest import ingest_export

EXPORTS = Path(__file__).resolve().parents[2] / "examples" / "exports"
UTC = dt.timezone.utc


def _ts(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


def _events(store: Store) -> dict[str, dict]:
    """Stored events by event_id."""
    df = store.scan_events().collect()
    assert df["event_id"].is_unique().all()
    return {r["event_id"]: r for r in df.iter_rows(named=True)}


def _users(store: Store) -> dict[str, dict]:
    df = store.scan_users().collect()
    return {r["user_id"]: r for r in df.iter_rows(named=True)}


def _run(home: Path, fmt: str, *files: Path | str, extra: tuple[str, ...] = ()) -> int:
    return main(["ingest", "export", "--home", str(home), "--format", fmt,
                 *map(str, files), *extra])


# ---------------------------------------------------------------------- Segment / RudderStack
def test_segment_export_fills_events_and_users(tmp_path, capsys):
    home = tmp_path / "store"
    assert _run(home, "segment", EXPORTS / "segment.ndjson") == 0
    out = capsys.readouterr().out
    assert "imported 2 of 2 rows into events (1 lines of other types ignored" in out
    assert "imported 4 of 4 rows into users (2 new users, 0 updated" in out
    store = Store(home)
    ev = _events(store)
    assert set(ev) == {"seg-m2", "seg-m3"}
    order = ev["seg-m2"]
    assert (order["user_id"], order["event"]) == ("seg-1", "Order Completed")
    assert order["ts"] == dt.datetime(2026, 5, 1, 7, 5, 30, 123456, tzinfo=UTC)  # +02:00
    assert (order["revenue"], order["currency"]) == (25.5, "EUR")
    assert json.loads(order["products"]) == [{"sku": "A1", "quantity": 2}]
    page = ev["seg-m3"]  # no userId: the anonymousId is the user
    assert (page["user_id"], page["event"], page["path"]) == ("anon-2", "page_viewed", "/pricing")
    assert page["ts"] == _ts(2026, 5, 1, 10)
    users = _users(store)
    assert set(users) == {"seg-1", "seg-2"}
    # the newest identify wins per trait, whatever the line order; older traits stay
    assert users["seg-1"] == {"user_id": "seg-1", "email": "ada@example.com", "plan": "pro"}
    assert users["seg-2"] == {"user_id": "seg-2", "email": "bob@example.com", "plan": "team"}
    assert "name" not in store.users_schema()  # a group call's traits are not user traits


def test_rudderstack_identify_reads_context_traits(tmp_path):
    home = tmp_path / "store"
    assert _run(home, "rudderstack", EXPORTS / "rudderstack.ndjson") == 0
    store = Store(home)
    ev = _events(store)
    assert ev["rs-m2"]["ts"] == dt.datetime(2026, 5, 2, 11, 0, 1, 1, tzinfo=UTC)
    assert (ev["rs-m2"]["user_id"], ev["rs-m2"]["method"]) == ("rs-1", "google")
    assert (ev["rs-m3"]["user_id"], ev["rs-m3"]["sku"], ev["rs-m3"]["price"]) == (
        "rs-anon-2", "B7", 9.99,
    )
    assert _users(store) == {"rs-1": {"user_id": "rs-1", "email": "cy@example.com", "age": 41}}


def test_gzipped_segment_files_and_batch_payloads(tmp_path):
    lines = (EXPORTS / "segment.ndjson").read_text().splitlines()
    gz = tmp_path / "s3" / "part-0001.gz"
    gz.parent.mkdir()
    gz.write_bytes(gzip.compress("\n".join(lines[:3]).encode()))
    batch = tmp_path / "batch.json"  # an HTTP batch payload: {"batch": [...], "sentAt": ...}
    batch.write_text(json.dumps({"batch": [json.loads(x) for x in lines[3:]],
                                 "sentAt": "2026-05-04T00:00:00Z"}))
    home = tmp_path / "store"
    assert _run(home, "segment", gz.parent, batch) == 0
    store = Store(home)
    assert set(_events(store)) == {"seg-m2", "seg-m3"}
    assert _users(store)["seg-1"]["plan"] == "pro"


# ---------------------------------------------------------------------- Mixpanel
def test_mixpanel_raw_events_and_people(tmp_path, capsys):
    home = tmp_path / "store"
    assert _run(home, "mixpanel", EXPORTS / "mixpanel-events.ndjson",
                EXPORTS / "mixpanel-people.json") == 0
    out = capsys.readouterr().out
    assert "imported 3 of 4 rows into events (1 duplicates skipped" in out  # same $insert_id
    store = Store(home)
    ev = _events(store)
    assert set(ev) == {"mp-ins-1", "mp-ins-2", "mp-ins-3"}
    signed = ev["mp-ins-1"]
    assert (signed["user_id"], signed["event"], signed["ts"]) == (
        "mp-1", "Signed up", _ts(2026, 5, 1, 9),
    )
    assert (signed["$city"], signed["plan"], signed["mp_processing_time_ms"]) == (
        "Berlin", "free", 1777626001234,
    )
    assert (ev["mp-ins-2"]["amount"], ev["mp-ins-2"]["items"]) == (12.5, '["x","y"]')
    page = ev["mp-ins-3"]  # time in milliseconds (time_in_ms=true), an anonymous device id
    assert page["ts"] == dt.datetime(2026, 5, 1, 11, 0, 0, 123000, tzinfo=UTC)
    assert (page["user_id"], page["$device_id"]) == ("$device:dev-9", "dev-9")
    cols = store.events_schema()
    assert not {"time", "distinct_id", "$insert_id"} & set(cols)  # consumed into the keys
    users = _users(store)
    assert users["mp-1"] == {
        "user_id": "mp-1", "$email": "mia@example.com", "plan": "pro",
        "$created": _ts(2026, 4, 30, 10), "$name": "Mia",
    }
    assert (users["mp-2"]["$email"], users["mp-2"]["plan"], users["mp-2"]["$name"]) == (
        "noa@example.com", "free", None,
    )
    # $-named properties are reachable from rules as quoted identifiers
    rule = "did('Signed up', where => \"$city\" = 'Berlin') AND \"$email\" = 'mia@example.com'"
    assert store.count(rule, as_of="2026-05-02") == 1


# ---------------------------------------------------------------------- Amplitude
def _amplitude_zip(target: Path) -> Path:
    """Amplitude's Export API answer: a zip of a folder of gzipped hourly NDJSON files."""
    with zipfile.ZipFile(target, "w") as zf:
        for src in sorted((EXPORTS / "amplitude").rglob("*.json")):
            name = f"{src.parent.name}/{src.name}.gz"
            zf.writestr(name, gzip.compress(src.read_bytes()))
    return target


def _check_amplitude(store: Store) -> None:
    ev = _events(store)
    first = ev["5d2a1b30-0000-4000-8000-000000000001"]
    assert (first["user_id"], first["event"], first["genre"], first["duration_s"]) == (
        "amp-user-1", "Song Played", "jazz", 215,
    )
    assert first["ts"] == dt.datetime(2026, 5, 1, 9, 15, 42, 123456, tzinfo=UTC)
    assert (first["device_id"], first["session_id"]) == ("D1", 1777626900000)
    anon = ev["5d2a1b30-0000-4000-8000-000000000002"]  # user_id null: the device_id
    assert (anon["user_id"], anon["genre"], anon["ts"]) == ("D2", "rock", _ts(2026, 5, 1, 9, 20))
    ident = ev["5d2a1b30-0000-4000-8000-000000000003"]
    assert (ident["event"], ident["ts"]) == (
        "$identify", dt.datetime(2026, 5, 1, 10, 0, 0, 1, tzinfo=UTC),
    )
    assert "event_id" in store.events_schema() and "amplitude_id" not in store.events_schema()
    users = _users(store)
    assert users["amp-user-1"] == {
        "user_id": "amp-user-1", "plan": "family", "country": "Austria", "city": "Berlin",
        "platform": "iOS", "os_name": "ios", "favourite": ["jazz", "soul"],
    }
    assert (users["D2"]["country"], users["D2"]["platform"], users["D2"]["plan"]) == (
        "France", "Web", None,
    )


def test_amplitude_export_zip(tmp_path):
    home = tmp_path / "store"
    assert _run(home, "amplitude", _amplitude_zip(tmp_path / "export.zip")) == 0
    _check_amplitude(Store(home))


def test_amplitude_unzipped_folder_and_reimport_is_idempotent(tmp_path, capsys):
    home = tmp_path / "store"
    folder = tmp_path / "123456"
    shutil.copytree(EXPORTS / "amplitude" / "123456", folder)
    assert _run(home, "amplitude", folder) == 0
    _check_amplitude(Store(home))
    capsys.readouterr()
    assert _run(home, "amplitude", _amplitude_zip(tmp_path / "again.zip")) == 0
    out = capsys.readouterr().out
    assert "imported 0 of 3 rows into events (3 duplicates skipped)" in out
    assert "0 new users, 2 updated" in out
    _check_amplitude(Store(home))


# ---------------------------------------------------------------------- PostHog
def _check_posthog(store: Store) -> None:
    ev = _events(store)
    view = ev["01890000-0000-7000-8000-000000000001"]
    assert (view["user_id"], view["event"], view["$current_url"], view["$browser"]) == (
        "ph-anon-1", "$pageview", "https://example.com/pricing", "Firefox",
    )
    assert view["ts"] == dt.datetime(2026, 5, 1, 8, 0, 0, 1, tzinfo=UTC)
    assert view["person_id"] == "01890000-aaaa-7000-8000-000000000001"
    sub = ev["01890000-0000-7000-8000-000000000003"]
    assert (sub["user_id"], sub["plan"], sub["seats"]) == ("ph-1", "pro", 3)
    assert sub["ts"] == dt.datetime(2026, 5, 1, 8, 5, 0, 250000, tzinfo=UTC)
    ident = ev["01890000-0000-7000-8000-000000000002"]
    assert json.loads(ident["$set"]) == {"email": "lu@example.com"}
    users = _users(store)
    # the persons export (the current state) wins over the per-event snapshots
    assert users["ph-1"] == {
        "user_id": "ph-1", "email": "lu@example.com", "plan": "enterprise",
        "$initial_browser": "Firefox", "company": "Initech",
    }
    assert users["ph-anon-1"]["$initial_browser"] == "Firefox"


def test_posthog_jsonl_events_and_persons(tmp_path):
    home = tmp_path / "store"
    assert _run(home, "posthog", EXPORTS / "posthog-events.jsonl",
                EXPORTS / "posthog-persons.jsonl") == 0
    _check_posthog(Store(home))


def test_posthog_parquet_with_json_text_properties(tmp_path):
    """The Parquet form: properties as JSON-encoded strings, timestamps as timestamps."""
    def parquet(src: Path, target: Path, timestamp: bool) -> Path:
        df = pl.read_ndjson(src, infer_schema_length=None)
        df = df.with_columns(
            [pl.col(c).struct.json_encode() for c in ("properties", "person_properties")
             if c in df.columns]
        )
        if timestamp:
            df = df.with_columns(pl.col("timestamp").str.to_datetime(time_zone="UTC"))
        df.write_parquet(target)
        return target

    home = tmp_path / "store"
    events = parquet(EXPORTS / "posthog-events.jsonl", tmp_path / "events.parquet", True)
    persons = parquet(EXPORTS / "posthog-persons.jsonl", tmp_path / "persons.parquet", False)
    assert _run(home, "posthog", events, persons) == 0
    _check_posthog(Store(home))


# ---------------------------------------------------------------------- bad input
def test_a_broken_line_refuses_the_whole_export(tmp_path, capsys):
    src = tmp_path / "mixed.ndjson"
    lines = (EXPORTS / "segment.ndjson").read_text().splitlines()
    src.write_text("\n".join([*lines[:2], '{"type": "track", "event": ', *lines[2:]]) + "\n")
    home = tmp_path / "store"
    assert _run(home, "segment", src) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {src}: line 3: broken JSON")
    assert not (home / "events").exists() and not (home / "users").exists()
    assert _run(home, "segment", src, extra=("--skip-invalid",)) == 0
    (written,) = (home / "rejects").glob("mixed-*.rejected.ndjson")
    rejects = pl.read_ndjson(written)
    assert rejects["__line"].to_list() == [3]
    assert rejects["__raw"].to_list() == ['{"type": "track", "event": ']
    assert set(_events(Store(home))) == {"seg-m2", "seg-m3"}


def test_users_are_checked_before_events_are_written(tmp_path, capsys):
    """A users row that does not fit the stored users table refuses the events too."""
    home = tmp_path / "store"
    assert _run(home, "rudderstack", EXPORTS / "rudderstack.ndjson") == 0  # age: Int64
    src = tmp_path / "more.ndjson"
    src.write_text(
        '{"type":"track","userId":"rs-9","event":"x","timestamp":"2026-05-05T00:00:00Z",'
        '"messageId":"new-1"}\n'
        '{"type":"identify","userId":"rs-9","traits":{"age":"forty"},'
        '"timestamp":"2026-05-05T00:00:00Z","messageId":"new-2"}\n'
    )
    before = sorted((home / "events").iterdir())
    assert _run(home, "rudderstack", src) == 2
    err = capsys.readouterr().err
    assert f"{src}: line 2: column 'age'" in err
    assert sorted((home / "events").iterdir()) == before


def test_export_needs_a_tool_format(tmp_path, capsys):
    home = tmp_path / "store"
    assert main(["ingest", "export", "--home", str(home), str(EXPORTS / "segment.ndjson")]) == 2
    assert "ingest export needs --format segment|rudderstack|mixpanel|amplitude|posthog" in (
        capsys.readouterr().err
    )
    assert main(["ingest", "events", "--home", str(home), "--format", "mixpanel",
                 str(EXPORTS / "mixpanel-events.ndjson")]) == 2
    assert "use segcore ingest export --format mixpanel" in capsys.readouterr().err
    assert main(["ingest", "export", "--home", str(home), "--format", "segment",
                 "--event", "x", str(EXPORTS / "segment.ndjson")]) == 2
    assert not home.exists() or not any(home.iterdir())


@pytest.mark.parametrize(
    ("name", "data", "problem"),
    [
        ("bad.gz", b"\x1f\x8bnot really gzip", "not a readable gzip file"),
        ("bad.zip", b"PK\x03\x04 truncated", "not a readable zip file"),
        ("other.ndjson", b'{"hello": 1}\n', "no 'type' field"),
    ],
)
def test_unreadable_exports_are_one_error_line(tmp_path, name, data, problem):
    src = tmp_path / name
    src.write_bytes(data)
    with pytest.raises(IngestError, match=problem):
        ingest_export(Store(tmp_path / "store"), [src], format="segment")
    assert not (tmp_path / "store").exists()


def test_files_of_no_tool_rows_are_refused(tmp_path):
    src = tmp_path / "x.ndjson"
    src.write_text('{"hello": 1}\n')
    with pytest.raises(IngestError, match="no amplitude events or users found"):
        ingest_export(Store(tmp_path / "store"), [src], format="amplitude")
