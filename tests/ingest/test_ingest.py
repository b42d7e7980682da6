"""Ingestion: formats, timestamps, validation, refusal, dedup, upsert, CLI."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from segcore import IngestError, Store, StoreError
from segcore.cli import main
from segcore.ingest import ingest

UTC = dt.timezone.utc
REPO = Path(__file__).resolve().parents[2]

SHOP_CSV = """InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850,United Kingdom
536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850,United Kingdom
536366,22633,HAND WARMER UNION JACK,6,12/1/2010 8:28,1.85,,United Kingdom
C536379,D,Discount,-1,12/13/2010 9:41,27.5,014527,France
536367,84879,ASSORTED COLOUR BIRD ORNAMENT,32,12/1/2010 8:34,1.69,13047,United Kingdom
"""
SHOP_MAP = {"user_id": "CustomerID", "ts": "InvoiceDate"}


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def snapshot(home: Path) -> dict[str, str]:
    """Every file under ``home`` and the hash of its bytes."""
    return {
        str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(home.rglob("*"))
        if p.is_file()
    }


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "home")


def events_of(store: Store) -> pl.DataFrame:
    return store.scan_events().collect().sort(["user_id", "ts"])


# ---------------------------------------------------------------------- CSV
def test_shop_export_with_map_and_event(store: Store, tmp_path: Path) -> None:
    src = write(tmp_path / "shop.csv", SHOP_CSV)
    with pytest.raises(IngestError) as err:
        ingest(store, "events", [src], mapping=SHOP_MAP, event="charged")
    assert str(err.value) == f"{src}: line 4: no user_id"
    assert store.is_empty()

    res = ingest(store, "events", [src], mapping=SHOP_MAP, event="charged", skip_invalid=True)
    assert res["rows_read"] == 5
    assert res["rows_imported"] == 4
    assert res["rows_rejected"] == 1
    assert "1 of 5 rows had no user_id" in res["summary"]
    ev = events_of(store)
    assert ev["user_id"].to_list() == ["014527", "13047", "17850", "17850"]
    assert set(ev["event"]) == {"charged"}
    assert ev["ts"].to_list() == [
        utc(2010, 12, 13, 9, 41),
        utc(2010, 12, 1, 8, 34),
        utc(2010, 12, 1, 8, 26),
        utc(2010, 12, 1, 8, 26),
    ]
    schema = store.events_schema()
    assert schema["ts"] == pl.Datetime("us", "UTC")
    assert schema["Quantity"] == pl.Int64
    assert schema["UnitPrice"] == pl.Float64
    assert schema["StockCode"] == pl.String
    assert schema["InvoiceNo"] == pl.String  # 'C536379' makes it text
    assert ev["Quantity"].to_list() == [-1, 32, 6, 6]
    assert ev["UnitPrice"].to_list() == [27.5, 1.69, 2.55, 3.39]

    # rejects go under the home (never beside the input, where the next glob finds them),
    # with the source's own columns and values, so they re-import with the same flags
    rej_path = Path(res["rejects_file"])
    assert rej_path.parent == store.home / "rejects"
    assert rej_path.name.startswith("shop-") and rej_path.name.endswith(".rejected.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "shop.csv"]
    assert f"rejected rows written to {rej_path}" in res["summary"]
    rejects = pl.read_csv(rej_path, infer_schema=False)
    assert rejects.columns == [*SHOP_CSV.splitlines()[0].split(","), "__line", "__reason"]
    assert rejects.row(0) == (
        "536366", "22633", "HAND WARMER UNION JACK", "6", "12/1/2010 8:28", "1.85", None,
        "United Kingdom", "4", "no user_id",
    )
    assert store.event_files() and len(store.event_files()) == 1  # rejects are no store data
    fixed = write(tmp_path / "fixed.csv", rej_path.read_text().replace(",,United", ",99,United"))
    again = ingest(store, "events", [fixed], mapping=SHOP_MAP, event="charged")
    assert again["rows_imported"] == 1 and "new columns" not in again["summary"]
    assert events_of(store).filter(pl.col("user_id") == "99").select(
        "Description", "ts", "UnitPrice"
    ).rows() == [("HAND WARMER UNION JACK", utc(2010, 12, 1, 8, 28), 1.85)]


def test_timezones_are_normalised_to_utc(store: Store, tmp_path: Path) -> None:
    src = write(
        tmp_path / "tz.csv",
        "user_id,event,ts\n"
        "u1,a,2026-03-01T10:00:00+02:00\n"
        "u2,a,2026-03-01T10:00:00Z\n"
        "u3,a,2026-03-01 10:00:00\n"
        "u4,a,2026-03-01\n"
        "u5,a,2026-03-01T10:00:00.5-05:30\n"
        "u6,a,2026-03-01T23:30:00-0100\n",
    )
    ingest(store, "events", [src])
    got = dict(events_of(store).select("user_id", "ts").iter_rows())
    assert got == {
        "u1": utc(2026, 3, 1, 8),
        "u2": utc(2026, 3, 1, 10),
        "u3": utc(2026, 3, 1, 10),
        "u4": utc(2026, 3, 1),
        "u5": utc(2026, 3, 1, 15, 30, 0, 500000),
        "u6": utc(2026, 3, 2, 0, 30),
    }


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["1767225600", "1767225660"], [utc(2026, 1, 1), utc(2026, 1, 1, 0, 1)]),
        (["1767225600000", "1767225600500"], [utc(2026, 1, 1), utc(2026, 1, 1, 0, 0, 0, 500000)]),
    ],
)
def test_epoch_seconds_and_millis(store, tmp_path, values, expected) -> None:
    body = "".join(f"u{i},a,{v}\n" for i, v in enumerate(values))
    ingest(store, "events", [write(tmp_path / "e.csv", "user_id,event,ts\n" + body)])
    assert events_of(store)["ts"].to_list() == expected


def test_ids_keep_leading_zeros_and_types_are_inferred(store: Store, tmp_path: Path) -> None:
    src = write(
        tmp_path / "e.csv",
        "user_id,event,ts,event_id,zip,qty,price,flag,day\n"
        "007,view,2026-01-01,0001,02134,1,1.5,true,2026-01-05\n"
        "0042,view,2026-01-02,0002,10001,2,2,False,\n",
    )
    ingest(store, "events", [src])
    ev = events_of(store)
    assert ev["user_id"].to_list() == ["0042", "007"]
    assert ev["event_id"].to_list() == ["0002", "0001"]
    assert ev["zip"].to_list() == ["10001", "02134"]
    schema = store.events_schema()
    assert (schema["qty"], schema["price"], schema["flag"], schema["day"]) == (
        pl.Int64,
        pl.Float64,
        pl.Boolean,
        pl.Date,
    )
    assert ev["flag"].to_list() == [False, True]
    assert ev["day"].to_list() == [None, dt.date(2026, 1, 5)]


# ---------------------------------------------------------------------- Parquet / NDJSON / Segment
def test_parquet_input(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "e.parquet"
    pl.DataFrame(
        {
            "uid": [1, 2],
            "event": ["signup", "login"],
            "ts": pl.Series(
                [dt.datetime(2026, 1, 1, 12), dt.datetime(2026, 1, 2, 12)],
                dtype=pl.Datetime("ns", "Europe/Paris"),
            ),
            "plan": ["free", "pro"],
        }
    ).write_parquet(src)
    res = ingest(store, "events", [src], mapping={"user_id": "uid"})
    assert res["rows_imported"] == 2
    ev = events_of(store)
    assert ev["user_id"].to_list() == ["1", "2"]
    assert ev["ts"].to_list() == [utc(2026, 1, 1, 12), utc(2026, 1, 2, 12)]
    assert ev.schema["ts"] == pl.Datetime("us", "UTC")


def test_ndjson_flat_and_nested(store: Store, tmp_path: Path) -> None:
    flat = write(
        tmp_path / "flat.ndjson",
        '{"user_id": "u1", "event": "view", "ts": "2026-01-01T00:00:00Z", "page": "/"}\n\n'
        '{"user_id": "u2", "event": "view", "ts": "2026-01-02T00:00:00Z", "page": "/x"}\n',
    )
    nested = write(
        tmp_path / "nested.jsonl",
        '{"user_id": "u1", "event": "charged", "ts": "2026-01-03T01:00:00+01:00",'
        ' "properties": {"amount": 12.5, "currency": "EUR", "meta": {"a": 1}}}\n',
    )
    res = ingest(store, "events", [flat, nested])
    assert res["rows_imported"] == 3
    assert sorted(res["new_columns"]) == ["amount", "currency", "meta", "page"]
    ev = events_of(store)
    charged = ev.filter(pl.col("event") == "charged").row(0, named=True)
    assert charged["amount"] == 12.5
    assert charged["currency"] == "EUR"
    assert json.loads(charged["meta"]) == {"a": 1}
    assert charged["ts"] == utc(2026, 1, 3)
    assert ev.filter(pl.col("event") == "view")["page"].to_list() == ["/", "/x"]


def test_users_ndjson_traits_with_list(store: Store, tmp_path: Path) -> None:
    src = write(
        tmp_path / "u.ndjson",
        '{"user_id": "u1", "traits": {"email": "a@x.io", "tags": ["vip", "beta"], "age": 30,'
        ' "since": "2026-01-05"}}\n'
        '{"user_id": "u2", "traits": {"email": null, "tags": [], "age": 41,'
        ' "seen": "2026-02-01T10:00:00+02:00"}}\n',
    )
    ingest(store, "users", [src])
    users = store.scan_users().collect().sort("user_id")
    assert users.schema["tags"] == pl.List(pl.String)
    assert users["tags"].to_list() == [["vip", "beta"], []]
    assert users["age"].to_list() == [30, 41]
    assert users["since"].to_list() == [dt.date(2026, 1, 5), None]
    assert users["seen"].to_list() == [None, utc(2026, 2, 1, 8)]


SEGMENT = (
    "\n".join(
        json.dumps(x)
        for x in [
            {
                "type": "track",
                "userId": "u1",
                "event": "Order Completed",
                "messageId": "m1",
                "timestamp": "2026-02-01T10:00:00.000Z",
                "properties": {"revenue": 30, "coupon": "X"},
            },
            {
                "type": "track",
                "anonymousId": "anon-9",
                "event": "Product Viewed",
                "messageId": "m2",
                "timestamp": "2026-02-01T09:00:00+01:00",
                "properties": {"sku": "A1"},
            },
            {
                "type": "page",
                "userId": "u1",
                "messageId": "m3",
                "name": "Home",
                "timestamp": "2026-02-01T11:00:00Z",
                "properties": {"path": "/"},
            },
            {
                "type": "identify",
                "userId": "u1",
                "messageId": "m4",
                "timestamp": "2026-02-01T08:00:00Z",
                "traits": {"email": "u1@x.io", "plan": "pro"},
            },
            {
                "type": "identify",
                "userId": "u1",
                "messageId": "m5",
                "timestamp": "2026-02-02T08:00:00Z",
                "traits": {"plan": "team"},
            },
            {"type": "group", "userId": "u1", "groupId": "g1"},
        ]
    )
    + "\n"
)


def test_segment_track_and_identify(store: Store, tmp_path: Path) -> None:
    src = write(tmp_path / "segment.json", SEGMENT)
    res = ingest(store, "events", [src], format="segment")
    assert res["rows_imported"] == 3
    assert res["ignored_lines"] == 3  # two identify, one group
    ev = events_of(store)
    assert ev.select("user_id", "event", "ts", "event_id").rows() == [
        ("anon-9", "Product Viewed", utc(2026, 2, 1, 8), "m2"),
        ("u1", "Order Completed", utc(2026, 2, 1, 10), "m1"),
        ("u1", "page_viewed", utc(2026, 2, 1, 11), "m3"),
    ]
    assert ev["revenue"].to_list() == [None, 30, None]
    assert ev["path"].to_list() == [None, None, "/"]

    res = ingest(store, "users", [src], format="segment")
    assert res["rows_imported"] == 2
    users = store.scan_users().collect()
    assert users.select("user_id", "email", "plan").rows() == [("u1", "u1@x.io", "team")]


# ---------------------------------------------------------------------- refusal
def _good_events(tmp_path: Path) -> Path:
    return write(tmp_path / "good.csv", "user_id,event,ts\nu1,a,2026-01-01\nu2,b,2026-01-02\n")


BAD_FILES = {
    "missing_column.csv": (
        "user,event,ts\nu1,a,2026-01-01\n",
        "missing required column 'user_id' (columns: user, event, ts); "
        "map one with --map user_id=COLUMN",
    ),
    "bad_ts.csv": (
        "user_id,event,ts\nu1,a,2026-01-01\nu2,a,2026-01-02\nu3,a,yesterday\n",
        "line 4: unparseable ts 'yesterday'",
    ),
    "broken.ndjson": (
        '{"user_id": "u1", "event": "a", "ts": "2026-01-01"}\n\n{"user_id": "u2", "event": \n',
        "line 3: broken JSON",
    ),
    "empty.csv": ("", "file is empty"),
    "header_only.csv": ("user_id,event,ts\n", "file has a header but no rows"),
    "garbage.csv": (bytes(range(256)) * 4, "line 1: binary data (NUL byte), not a text file"),
    "latin1.csv": (
        "user_id,event,ts\nu1,café,2026-01-01\n".encode("latin-1"),
        "line 2: not UTF-8 text (byte 0xe9); re-save the file as UTF-8 or pass --encoding",
    ),
    "ragged.csv": (
        "user_id,event,ts\nu1,a,2026-01-01\nu2,a,2026-01-01,extra\n",
        "line 3: 4 fields where the header has 3",
    ),
    "no_event.csv": ("user_id,event,ts\nu1,,2026-01-01\n", "line 2: no event name"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_refused_and_store_unchanged(store: Store, tmp_path: Path, name: str) -> None:
    ingest(store, "events", [_good_events(tmp_path)])
    before = snapshot(store.home)
    content, problem = BAD_FILES[name]
    bad = write(tmp_path / name, content)
    with pytest.raises(IngestError) as err:
        ingest(store, "events", [_good_events(tmp_path), bad])
    msg = str(err.value)
    assert msg.startswith(f"{bad}: ")
    assert problem in msg
    assert "\n" not in msg
    assert snapshot(store.home) == before


def test_truncated_parquet_refused(store: Store, tmp_path: Path) -> None:
    full = tmp_path / "full.parquet"
    pl.DataFrame(
        {"user_id": ["u1"] * 100, "event": ["a"] * 100, "ts": [utc(2026, 1, 1)] * 100}
    ).write_parquet(full)
    cut = write(tmp_path / "cut.parquet", full.read_bytes()[:-40])
    with pytest.raises(IngestError, match=r"cut\.parquet: not a valid Parquet file"):
        ingest(store, "events", [cut])
    assert store.is_empty()


def test_parquet_errors_name_the_row(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "e.parquet"
    pl.DataFrame(
        {"user_id": ["u1", None], "event": ["a", "a"], "ts": ["2026-01-01", "2026-01-02"]}
    ).write_parquet(src)
    with pytest.raises(IngestError) as err:
        ingest(store, "events", [src])
    assert str(err.value) == f"{src}: row 2: no user_id"


def test_skip_invalid_mixed_reasons(store: Store, tmp_path: Path) -> None:
    src = write(
        tmp_path / "mixed.ndjson",
        '{"user_id": "u1", "event": "a", "ts": "2026-01-01"}\n'
        '{"user_id": null, "event": "a", "ts": "2026-01-01"}\n'
        '{"user_id": "u3", "event": "a", "ts": "31st of June"}\n'
        "{oops\n"
        '{"event": "a", "ts": "2026-01-01"}\n',
    )
    rejects = tmp_path / "out" / "rej.csv"
    res = ingest(store, "events", [src], skip_invalid=True, rejects_path=rejects)
    assert res["rows_imported"] == 1
    assert res["rows_rejected"] == 4
    assert res["rejects_file"] == str(rejects)
    assert res["summary"] == (
        "imported 1 of 5 rows into events. 2 of 5 rows had no user_id; "
        "1 of 5 rows had an unparseable ts; 1 of 5 rows were broken lines; "
        f"rejected rows written to {rejects}"
    )
    rej = pl.read_csv(rejects, infer_schema=False)
    assert rej.columns == ["user_id", "event", "ts", "__raw", "__line", "__reason"]
    assert rej["__line"].to_list() == ["2", "3", "4", "5"]
    assert rej["__reason"].to_list()[:2] == ["no user_id", "unparseable ts '31st of June'"]
    assert rej["__reason"][2].startswith("broken JSON")
    assert rej["__raw"].to_list() == [None, None, "{oops", None]
    assert rej["ts"].to_list() == ["2026-01-01", "31st of June", None, "2026-01-01"]
    # by default, JSON input gives NDJSON rejects under the home: the lines as read
    res = ingest(store, "events", [src], skip_invalid=True, if_imported="again")
    assert Path(res["rejects_file"]).parent == store.home / "rejects"
    assert res["rejects_file"].endswith(".rejected.ndjson")
    lines = [json.loads(x) for x in Path(res["rejects_file"]).read_text().splitlines()]
    assert lines[0] == {
        "user_id": None, "event": "a", "ts": "2026-01-01", "__raw": None, "__line": 2,
        "__reason": "no user_id",
    }
    assert lines[2]["__raw"] == "{oops"


# ---------------------------------------------------------------------- dedup, schema
def test_event_id_dedup_on_reimport(store: Store, tmp_path: Path) -> None:
    src = write(
        tmp_path / "e.csv",
        "user_id,event,ts,event_id\nu1,a,2026-01-01,e1\nu1,a,2026-01-01,e1\nu2,a,2026-01-02,e2\n"
        "u3,a,2026-01-03,\n",
    )
    res = ingest(store, "events", [src])
    assert (res["rows_imported"], res["duplicates_skipped"]) == (3, 1)
    res = ingest(store, "events", [src], if_imported="again")  # one row has no id
    # e1, e2 are stored; the row without event_id is never deduplicated
    assert (res["rows_imported"], res["duplicates_skipped"]) == (1, 3)
    ev = events_of(store)
    assert ev.height == 4
    assert ev["event_id"].drop_nulls().sort().to_list() == ["e1", "e2"]


def test_new_columns_extend_schema_and_types_are_cast(store: Store, tmp_path: Path) -> None:
    ingest(
        store, "events", [write(tmp_path / "a.csv", "user_id,event,ts,amount\nu1,c,2026-01-01,5\n")]
    )
    res = ingest(
        store,
        "events",
        [
            write(
                tmp_path / "b.ndjson",
                '{"user_id": "u2", "event": "c", "ts": "2026-01-02", "amount": 7.0, "coupon": "Z"}\n',
            )
        ],
    )
    assert res["new_columns"] == ["coupon"]
    ev = events_of(store)
    assert ev.schema["amount"] == pl.Int64
    assert ev["amount"].to_list() == [5, 7]
    assert ev["coupon"].to_list() == [None, "Z"]
    assert len(store.event_files()) == 2


def test_type_clash_is_an_error(store: Store, tmp_path: Path) -> None:
    ingest(
        store, "events", [write(tmp_path / "a.csv", "user_id,event,ts,amount\nu1,c,2026-01-01,5\n")]
    )
    before = snapshot(store.home)
    bad = write(
        tmp_path / "b.csv", "user_id,event,ts,amount\nu2,c,2026-01-02,7\nu3,c,2026-01-02,lots\n"
    )
    with pytest.raises(IngestError) as err:
        ingest(store, "events", [bad])
    assert str(err.value) == (
        f"{bad}: line 3: column 'amount' is Int64 in the store but the value 'lots' is not Int64"
    )
    res = ingest(store, "events", [bad], skip_invalid=True)
    assert res["rows_imported"] == 1
    assert pl.read_csv(res["rejects_file"], infer_schema=False)["amount"].to_list() == ["lots"]
    before = snapshot(store.home)
    frac = write(tmp_path / "c.csv", "user_id,event,ts,amount\nu2,c,2026-01-02,7.5\n")
    with pytest.raises(
        IngestError, match="line 2: column 'amount' is Int64 in the store but the value '7.5'"
    ):
        ingest(store, "events", [frac])
    assert snapshot(store.home) == before


# ---------------------------------------------------------------------- users
def test_users_upsert(store: Store, tmp_path: Path) -> None:
    first = write(tmp_path / "u1.csv", "user_id,country,age\n001,FR,30\n002,DE,40\n")
    res = ingest(store, "users", [first])
    assert (res["users_inserted"], res["users_updated"]) == (2, 0)
    second = write(tmp_path / "u2.csv", "user_id,country,plan\n002,US,pro\n003,,free\n")
    res = ingest(store, "users", [second])
    assert (res["users_inserted"], res["users_updated"]) == (1, 1)
    assert res["new_columns"] == ["plan"]
    users = store.scan_users().collect().sort("user_id")
    assert users.rows() == [
        ("001", "FR", 30, None),
        ("002", "US", 40, "pro"),
        ("003", None, None, "free"),
    ]
    assert [p.name for p in store.user_files()] == ["users.parquet"]


def test_users_replace_older_files(store: Store, tmp_path: Path) -> None:
    store.users_dir.mkdir(parents=True)
    pl.DataFrame({"user_id": ["a"], "score": [1]}).write_parquet(store.users_dir / "part-0.parquet")
    ingest(store, "users", [write(tmp_path / "u.csv", "user_id,score\nb,2\n")])
    assert [p.name for p in store.user_files()] == ["users.parquet"]
    assert store.scan_users().collect().sort("user_id").rows() == [("a", 1), ("b", 2)]


# ---------------------------------------------------------------------- store problems, progress
def test_unwritable_store_is_a_store_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "events").write_text("not a folder")
    with pytest.raises(StoreError, match="cannot create"):
        ingest(Store(home), "events", [_good_events(tmp_path)])


def test_progress_reports_fractions(store: Store, tmp_path: Path) -> None:
    seen: list[tuple[float, str]] = []
    ingest(store, "events", [_good_events(tmp_path)], progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    assert seen[0][1] == "reading good.csv"


# ---------------------------------------------------------------------- CLI
def test_cli_main(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    src = write(tmp_path / "shop.csv", SHOP_CSV)
    args = [
        "ingest",
        "events",
        str(src),
        "--home",
        str(home),
        "--map",
        "user_id=CustomerID",
        "--map",
        "ts=InvoiceDate",
        "--event",
        "charged",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == f"error: {src}: line 4: no user_id\n"
    assert main([*args, "--skip-invalid", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows_imported"] == 4
    assert out["rows_rejected"] == 1
    assert main(["ingest", "events", str(src), "--home", str(home), "--map", "user_id"]) == 2
    assert "bad --map 'user_id'" in capsys.readouterr().err


def test_cli_subprocess(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.csv", "user_id,event,ts\nu1,a,not-a-date\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "segcore",
            "ingest",
            "events",
            str(bad),
            "--home",
            str(tmp_path / "h"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr == f"error: {bad}: line 2: unparseable ts 'not-a-date'\n"
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "h" / "events").exists()


# ---------------------------------------------------------------------- messy inputs
def test_csv_line_numbers_count_quoted_newlines_and_blank_lines(store, tmp_path) -> None:
    src = write(
        tmp_path / "notes.csv",
        'user_id, event ,ts,note\nu1,a,2026-01-01,"two\nlines"\n\nu2,a,2026-01-02,x\nu3,a,never,y\n',
    )
    with pytest.raises(IngestError) as err:
        ingest(store, "events", [src])
    assert str(err.value) == f"{src}: line 6: unparseable ts 'never'"
    res = ingest(store, "events", [src], skip_invalid=True)
    assert (res["rows_read"], res["rows_imported"]) == (3, 2)
    assert events_of(store)["note"].to_list() == ["two\nlines", "x"]


def test_duplicate_csv_header_refused(store, tmp_path) -> None:
    src = write(tmp_path / "d.csv", "user_id,event,ts,ts\nu1,a,2026-01-01,2026-01-02\n")
    with pytest.raises(IngestError) as err:
        ingest(store, "events", [src])
    assert str(err.value) == f"{src}: line 1: duplicate column 'ts'"


def test_json_array_file(store, tmp_path) -> None:
    src = write(
        tmp_path / "events.json",
        json.dumps(
            [
                {"user_id": "u1", "event": "a", "ts": "2026-01-01T00:00:00Z"},
                {"user_id": "u2", "event": "a", "ts": "later"},
            ]
        ),
    )
    with pytest.raises(IngestError) as err:
        ingest(store, "events", [src])
    assert str(err.value) == f"{src}: record 2: unparseable ts 'later'"


def test_float_ids_and_datetime_attributes(store, tmp_path) -> None:
    src = tmp_path / "u.parquet"
    pl.DataFrame({"CustomerID": [17850.0, 13047.0], "x": [1, 2]}).write_parquet(src)
    ingest(store, "users", [src], mapping={"user_id": "CustomerID"})
    assert store.scan_users().collect()["user_id"].to_list() == ["13047", "17850"]
    csv = write(tmp_path / "u.csv", "user_id,signup_at\n13047,2026-01-01T10:00:00+01:00\n")
    ingest(store, "users", [csv])
    users = store.scan_users().collect().sort("user_id")
    assert users.schema["signup_at"] == pl.Datetime("us", "UTC")
    assert users["signup_at"].to_list() == [utc(2026, 1, 1, 9), None]
    assert users["x"].to_list() == [2, 1]


def test_semicolon_csv_and_one_source_mapped_twice(store, tmp_path) -> None:
    src = write(tmp_path / "eu.csv", "id;what;when;price\n0042;buy;2026-01-01;3.5\n")
    ingest(
        store,
        "events",
        [src],
        mapping={"user_id": "id", "event_id": "id", "event": "what", "ts": "when"},
    )
    row = events_of(store).row(0, named=True)
    assert (row["user_id"], row["event_id"], row["event"], row["price"]) == (
        "0042",
        "0042",
        "buy",
        3.5,
    )
    assert "id" not in store.events_schema()


def test_boolean_into_integer_column_is_a_clash(store, tmp_path) -> None:
    ingest(store, "users", [write(tmp_path / "a.csv", "user_id,score\nu1,5\n")])
    bad = write(tmp_path / "b.ndjson", '{"user_id": "u2", "score": true}\n')
    with pytest.raises(IngestError) as err:
        ingest(store, "users", [bad])
    assert str(err.value) == (
        f"{bad}: line 1: column 'score' is Int64 in the store but the value 'true' is not Int64"
    )


def test_utf16_refused(store, tmp_path) -> None:
    src = write(tmp_path / "x.csv", "user_id,event,ts\nu1,a,2026-01-01\n".encode("utf-16"))
    with pytest.raises(IngestError) as err:
        ingest(store, "events", [src])
    assert str(err.value) == (
        f"{src}: line 1: UTF-16 text; re-save the file as UTF-8 or pass --encoding utf-16"
    )
    ingest(store, "events", [src], encoding="utf-16")
    assert events_of(store).select("user_id", "event").rows() == [("u1", "a")]


def test_latin1_with_encoding_option(tmp_path, capsys) -> None:
    src = write(
        tmp_path / "l.csv", "user_id,event,ts,city\nu1,a,2026-01-01,Zürich\n".encode("latin-1")
    )
    home = tmp_path / "h"
    assert main(["ingest", "events", str(src), "--home", str(home)]) == 2
    assert capsys.readouterr().err == (
        f"error: {src}: line 2: not UTF-8 text (byte 0xfc); re-save the file as UTF-8 "
        "or pass --encoding (e.g. latin-1)\n"
    )
    assert main(["ingest", "events", str(src), "--home", str(home), "--encoding", "latin-1"]) == 0
    assert Store(home).scan_events().collect()["city"].to_list() == ["Zürich"]


def test_full_disk_is_a_store_error_and_leaves_no_trace(store, tmp_path, monkeypatch) -> None:
    ingest(store, "events", [_good_events(tmp_path)])
    before = snapshot(store.home)

    def no_space(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", no_space)
    src = write(tmp_path / "more.csv", "user_id,event,ts\nu9,a,2026-01-09\n")
    with pytest.raises(StoreError) as err:
        ingest(store, "events", [src])
    assert str(err.value).startswith(
        f"no space left on device while writing {store.events_dir}/part-"
    )
    assert str(err.value).endswith(".parquet; the store is unchanged")
    assert snapshot(store.home) == before


def test_stale_temp_files_are_cleaned(store, tmp_path) -> None:
    store.events_dir.mkdir(parents=True)
    stale = store.events_dir / ".tmp-0123-part-x.parquet"
    stale.write_bytes(b"half a file")
    ingest(store, "events", [_good_events(tmp_path)])
    assert not stale.exists()
    assert len(store.event_files()) == 1


def test_cli_rejects_option_and_summary(tmp_path, capsys) -> None:
    src = write(tmp_path / "e.csv", "user_id,event,ts\nu1,a,2026-01-01\n,a,2026-01-02\n")
    rej = tmp_path / "bad_rows.csv"
    code = main(
        [
            "ingest",
            "events",
            str(src),
            "--home",
            str(tmp_path / "h"),
            "--skip-invalid",
            "--rejects",
            str(rej),
        ]
    )
    assert code == 0
    assert capsys.readouterr().out == (
        f"imported 1 of 2 rows into events. 1 of 2 rows had no user_id; "
        f"rejected rows written to {rej}\n"
    )
    assert rej.read_text().splitlines() == [
        "user_id,event,ts,__line,__reason",
        ",a,2026-01-02,3,no user_id",
    ]


def test_compact_dates_and_small_numbers(store, tmp_path) -> None:
    ok = write(tmp_path / "d.csv", "user_id,event,ts\nu1,a,20260131\nu2,a,20251201\n")
    ingest(store, "events", [ok])
    assert events_of(store)["ts"].to_list() == [utc(2026, 1, 31), utc(2025, 12, 1)]
    serial = write(tmp_path / "s.csv", "user_id,event,ts\nu1,a,1767225600\nu2,a,45292\n")
    with pytest.raises(IngestError) as err:
        ingest(store, "events", [serial])
    assert str(err.value) == f"{serial}: line 3: unparseable ts '45292'"


def test_mixed_formats_in_one_import(store, tmp_path) -> None:
    pq = tmp_path / "m1.parquet"
    pl.DataFrame(
        {"user_id": ["a"], "event": ["x"], "ts": [dt.datetime(2026, 1, 1, 6)], "n": [1]}
    ).write_parquet(pq)
    csv = write(tmp_path / "m2.csv", "user_id,event,ts,n\nb,x,2026-01-02T00:00:00-03:00,2.5\n")
    nd = write(tmp_path / "m3.ndjson", '{"user_id": "c", "event": "x", "ts": 1767225600, "n": 7}\n')
    res = ingest(store, "events", [pq, csv, nd])
    assert res["rows_imported"] == 3
    ev = events_of(store)
    assert ev.select("user_id", "ts", "n").rows() == [
        ("a", utc(2026, 1, 1, 6), 1.0),
        ("b", utc(2026, 1, 2, 3), 2.5),
        ("c", utc(2026, 1, 1), 7.0),
    ]
    assert ev.schema["n"] == pl.Float64


def test_concurrent_imports_do_not_duplicate(store, tmp_path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    body = "".join(f"u{i % 7},a,2026-01-01T00:00:{i % 60:02d}Z,e{i}\n" for i in range(300))
    src = write(tmp_path / "e.csv", "user_id,event,ts,event_id\n" + body)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: ingest(store, "events", [src]), range(4)))
    assert sorted(r["rows_imported"] for r in results) == [0, 0, 0, 300]
    assert events_of(store).height == 300


# ---------------------------------------------------------------------- fidelity (issue 18)
PADDED_CSV = (
    "user_id,event,ts,Description,code\n"
    'u1,buy,2026-01-01,"  WHITE HEART  ", 007\n'
    "u2,buy,2026-01-02,  LANTERN ,x \n"
)
PADDED_ROWS = [
    {"user_id": "u1", "event": "buy", "ts": "2026-01-01", "Description": "  WHITE HEART  ",
     "code": " 007"},
    {"user_id": "u2", "event": "buy", "ts": "2026-01-02", "Description": "  LANTERN ",
     "code": "x "},
]


def _stored_text(home: Path, files: list[Path], **kw) -> list[dict]:
    store = Store(home)
    ingest(store, "events", files, **kw)
    return store.scan_events().select("Description", "code").sort("Description").collect().to_dicts()


def test_values_stored_exactly_in_every_format(tmp_path: Path) -> None:
    """Spaces inside and outside quotes are data: CSV, NDJSON and Parquet store the same."""
    csv = write(tmp_path / "p.csv", PADDED_CSV)
    nd = write(tmp_path / "p.ndjson", "\n".join(json.dumps(r) for r in PADDED_ROWS) + "\n")
    pq = tmp_path / "p.parquet"
    pl.DataFrame(PADDED_ROWS).write_parquet(pq)
    expected = [
        {"Description": "  LANTERN ", "code": "x "},
        {"Description": "  WHITE HEART  ", "code": " 007"},
    ]
    assert _stored_text(tmp_path / "a", [csv]) == expected
    assert _stored_text(tmp_path / "b", [nd]) == expected
    assert _stored_text(tmp_path / "c", [pq]) == expected
    trimmed = [{"Description": "LANTERN", "code": "x"}, {"Description": "WHITE HEART", "code": "007"}]
    assert _stored_text(tmp_path / "d", [csv], trim=True) == trimmed
    assert _stored_text(tmp_path / "e", [pq], trim=True) == trimmed


def test_padded_numbers_are_still_numbers(store: Store, tmp_path: Path) -> None:
    src = write(tmp_path / "n.csv", "user_id,event,ts,q,price\nu1,a,2026-01-01, 6 ,2.5 \nu2,a,2026-01-01,-1, 3\n")
    ingest(store, "events", [src])
    ev = events_of(store)
    assert ev.schema["q"] == pl.Int64 and ev.schema["price"] == pl.Float64
    assert ev["q"].to_list() == [6, -1] and ev["price"].to_list() == [2.5, 3.0]


def test_one_id_rule_in_every_format(tmp_path: Path) -> None:
    """CSV text 17850.0, a Parquet float and JSON numbers are one user, 17850."""
    csv = write(tmp_path / "e.csv", "user_id,event,ts\n17850.0,a,2026-01-01\n 007 ,a,2026-01-01\n17850.5,a,2026-01-01\n")
    pq = tmp_path / "e.parquet"
    pl.DataFrame({"user_id": [17850.0, 13047.0], "event": ["a", "a"], "ts": ["2026-01-02"] * 2}).write_parquet(pq)
    nd = write(tmp_path / "e.ndjson", '{"user_id": 17850, "event": "a", "ts": "2026-01-03"}\n'
               '{"user_id": "17850.00", "event": "a", "ts": "2026-01-04"}\n')
    store = Store(tmp_path / "home")
    res = ingest(store, "events", [csv, pq, nd])
    ids = store.scan_events().select("user_id").collect()["user_id"].to_list()
    assert sorted(ids) == ["007", "13047", "17850", "17850", "17850", "17850", "17850.5"]
    assert res["user_ids"] == 4 and res["user_ids_without_user"] is None
    users = write(tmp_path / "u.csv", "user_id,plan\n17850,pro\n99,free\n")
    res = ingest(store, "users", [users])
    assert res["users_without_events"] == 1 and res["user_ids"] == 2
    assert res["summary"].endswith("1 of 2 imported users have no events")
    more = write(tmp_path / "e2.csv", "user_id,event,ts\n17850.0,b,2026-01-05\n555,b,2026-01-05\n")
    res = ingest(store, "events", [more])
    assert (res["user_ids"], res["user_ids_without_user"]) == (2, 1)
    assert res["summary"].endswith("1 of 2 user ids match no user")
    # static segment ids follow the same rule
    from segcore.store.catalog import parse_ids_text

    assert parse_ids_text("user_id\n17850.0\n 007 \n17850\n")[0] == ["17850", "007"]


def _retail(folder: Path) -> Path:
    (folder / "sub").mkdir(parents=True)
    write(folder / "a.csv", SHOP_CSV)
    rows = [
        {"InvoiceNo": "536370", "StockCode": "22728", "Description": "ALARM CLOCK", "Quantity": 24,
         "InvoiceDate": "12/1/2010 8:45", "UnitPrice": 3.75, "CustomerID": 12583.0,
         "Country": "France"},
    ]
    write(folder / "sub" / "b.ndjson", json.dumps(rows[0]) + "\n")
    write(folder / "README.txt", "not data")
    write(folder / ".hidden.csv", "junk")
    write(folder / "a.rejected.csv", "junk")
    return folder


def test_folder_and_glob_inputs(tmp_path: Path) -> None:
    folder = _retail(tmp_path / "retail")
    store = Store(tmp_path / "h1")
    res = ingest(store, "events", [folder], mapping=SHOP_MAP, event="charged", skip_invalid=True)
    assert res["files"] == [str(folder / "a.csv"), str(folder / "sub" / "b.ndjson")]
    assert (res["rows_read"], res["rows_imported"]) == (6, 5)
    assert " from 2 files" in res["summary"]
    store2 = Store(tmp_path / "h2")
    res = ingest(store2, "events", [str(folder / "**" / "*.ndjson")], mapping=SHOP_MAP, event="x")
    assert res["files"] == [str(folder / "sub" / "b.ndjson")]
    assert store2.scan_events().collect()["user_id"].to_list() == ["12583"]
    with pytest.raises(IngestError, match=r"\*\.csv: no file with a known extension matches"):
        ingest(store2, "events", [str(tmp_path / "nothing" / "*.csv")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(IngestError, match="folder holds no files with a known extension"):
        ingest(store2, "events", [tmp_path / "empty"])


def test_folder_import_is_all_or_nothing(tmp_path: Path) -> None:
    folder = _retail(tmp_path / "retail")
    write(folder / "sub" / "c.csv", "InvoiceNo,InvoiceDate\n1,12/1/2010 8:45\n")
    home = tmp_path / "home"
    with pytest.raises(IngestError, match=r"c\.csv: column 'CustomerID' \(mapped to user_id\)"):
        ingest(Store(home), "events", [folder], mapping=SHOP_MAP, event="x", skip_invalid=True)
    assert not (home / "events").exists() or not list((home / "events").glob("*.parquet"))


def test_derived_columns(store: Store, tmp_path: Path) -> None:
    src = write(tmp_path / "shop.csv", SHOP_CSV)
    res = ingest(
        store, "events", [src], mapping=SHOP_MAP, skip_invalid=True,
        derive=[
            "event = CASE WHEN InvoiceNo LIKE 'C%' THEN 'cancelled' ELSE 'purchased' END",
            "amount = Quantity * UnitPrice",
            "big = amount > 10",
        ],
    )
    assert res["rows_imported"] == 4
    ev = store.scan_events().sort("ts").collect()
    assert ev["event"].to_list() == ["purchased", "purchased", "purchased", "cancelled"]
    assert ev["amount"].to_list() == pytest.approx([6 * 2.55, 6 * 3.39, 32 * 1.69, -27.5])
    assert ev["big"].to_list() == [True, True, True, False]
    # the stored column types are used on the next import (InvoiceNo is text in the store)
    more = write(tmp_path / "more.csv", "InvoiceNo,Quantity,UnitPrice,InvoiceDate,CustomerID\n"
                 "536400,2,1.5,12/2/2010 9:00,17850\n")
    ingest(store, "events", [more], mapping=SHOP_MAP,
           derive=["event = CASE WHEN InvoiceNo LIKE 'C%' THEN 'cancelled' ELSE 'purchased' END",
                   "amount = Quantity * UnitPrice"])
    last = store.scan_events().filter(pl.col("InvoiceNo") == "536400").collect().row(0, named=True)
    assert (last["event"], last["amount"]) == ("purchased", 3.0)


@pytest.mark.parametrize(
    "spec,message",
    [
        ("amount", "bad derived column 'amount': write NAME = EXPRESSION"),
        ("amount = Quantity *", "derived column 'amount = Quantity *': syntax error"),
        ("amount = Quantty * 2", "unknown event column 'Quantty' (did you mean 'Quantity'?)"),
        ("x = Description * 2", "cannot compute a text * an integer"),
        ("x = did('a')", "did() cannot be used inside an event filter"),
    ],
)
def test_bad_derive_is_one_clear_error(store: Store, tmp_path: Path, spec: str, message: str) -> None:
    src = write(tmp_path / "shop.csv", SHOP_CSV)
    with pytest.raises(IngestError) as err:
        ingest(store, "events", [src], mapping=SHOP_MAP, event="x", derive=[spec])
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert not store.event_files()


def test_key_makes_event_ids_and_skips_reimports(store: Store, tmp_path: Path) -> None:
    src = write(tmp_path / "shop.csv", SHOP_CSV)
    kw = dict(mapping=SHOP_MAP, event="charged", skip_invalid=True, key="InvoiceNo,StockCode")
    res = ingest(store, "events", [src], **kw)
    assert (res["rows_imported"], res["identical_rows"]) == (4, 0)
    ids = store.scan_events().sort("ts").collect()["event_id"].to_list()
    assert ids[0] == '{"InvoiceNo":"536365","StockCode":"85123A"}'
    # the same rows again, as Parquet with float ids: all skipped, all counted
    pq = tmp_path / "shop.parquet"
    store.scan_events().collect().drop("event_id").rename(
        {"user_id": "CustomerID", "ts": "InvoiceDate"}
    ).with_columns(pl.col("CustomerID").cast(pl.Float64)).write_parquet(pq)
    res = ingest(store, "events", [pq], **kw)
    # 014527 as a float is 14527: that row is not identical, but its key is stored
    assert (res["rows_imported"], res["duplicates_skipped"], res["identical_rows"]) == (0, 4, 3)
    assert "3 rows are identical to rows already stored" in res["summary"]
    assert store.scan_events().select(pl.len()).collect().item() == 4


def test_identical_rows_reported_without_key(store: Store, tmp_path: Path) -> None:
    src = write(tmp_path / "shop.csv", SHOP_CSV)
    kw = dict(mapping=SHOP_MAP, event="charged", skip_invalid=True)
    assert ingest(store, "events", [src], **kw)["identical_rows"] == 0
    res = ingest(store, "events", [src], **kw, if_imported="again")
    assert (res["rows_imported"], res["identical_rows"]) == (4, 4)
    assert ("4 rows are identical to rows already stored and were imported again; "
            "use --key to skip them") in res["summary"]
    with pytest.raises(IngestError, match="--key column 'Nope' not found"):
        ingest(store, "events", [src], **{**kw, "key": "InvoiceNo,Nope"})
    with pytest.raises(IngestError, match="--key only applies to events"):
        ingest(store, "users", [src], mapping={"user_id": "CustomerID"}, key="InvoiceNo")


def test_cli_folder_derive_key_and_eval_all(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _retail(tmp_path / "retail")
    home = str(tmp_path / "home")
    args = ["ingest", "events", str(folder), "--home", home, "--map", "user_id=CustomerID",
            "--map", "ts=InvoiceDate", "--skip-invalid", "--key", "InvoiceNo,StockCode",
            "--derive", "event = CASE WHEN InvoiceNo LIKE 'C%' THEN 'cancelled' ELSE 'purchased' END"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("imported 5 of 6 rows into events (new columns:")
    assert main(args) == 0
    assert capsys.readouterr().out.startswith(
        "imported 0 of 6 rows into events (5 duplicates skipped) from 2 files. "
        "5 rows are identical to rows already stored."
    )
    assert main(["ingest", "events", str(folder), "--home", home, "--derive", "bad"]) == 2
    assert "error: bad derived column 'bad'" in capsys.readouterr().err
    assert main(["eval", "--rule", "did('purchased')", "--home", home, "--json", "--all"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert sorted(payload["sample"]) == ["12583", "13047", "17850"] and payload["complete"]
    assert main(["eval", "--rule", "did('purchased')", "--home", home, "--json", "--limit", "1"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert len(payload["sample"]) == 1 and payload["complete"] is False
