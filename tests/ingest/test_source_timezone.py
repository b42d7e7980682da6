"""``--source-tz``: naive timestamps as wall-clock times of a zone, with the documented
rule at clock changes (ambiguous: first occurrence; nonexistent: forward by the gap),
counted in the summary; the CLI's ``--tz`` and ``config``."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from segcore.api import Store
from segcore.cli import main
from segcore.errors import UsageError
from segcore.ingest import ingest
from segcore.ingest.timestamps import parse_timestamps, source_zone

CSV = """user_id,event,ts
u1,x,2026-03-29 02:30
u2,x,2026-10-25 02:30:00
u3,x,2026-10-25T01:00:00Z
u4,x,2026-06-01 12:00
u5,x,2026-06-01
"""


def Z(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_parse_in_a_source_zone():
    values = pl.Series(CSV.splitlines()[1:]).str.split(",").list.get(2)
    with source_zone("Europe/Berlin") as zone:
        got = parse_timestamps(values).to_list()
    assert got == [
        Z("2026-03-29T01:30:00Z"),  # skipped 02:30 -> 03:30 CEST
        Z("2026-10-25T00:30:00Z"),  # repeated 02:30 -> the first (CEST)
        Z("2026-10-25T01:00:00Z"),  # has an offset: as written
        Z("2026-06-01T10:00:00Z"),  # CEST
        Z("2026-05-31T22:00:00Z"),  # a date: local midnight
    ]
    assert (zone.ambiguous, zone.nonexistent) == (1, 1)
    with source_zone("Europe/Berlin"):  # epoch numbers are instants
        assert parse_timestamps(pl.Series([1780000000])).to_list() == [Z("2026-05-28T20:26:40Z")]
    assert parse_timestamps(values).to_list()[0] == Z("2026-03-29T02:30:00Z")  # naive = UTC


def test_ingest_counts_clock_changes(tmp_path):
    src = tmp_path / "shop.csv"
    src.write_text(CSV)
    store = Store(tmp_path / "store")
    result = ingest(store, "events", [src], source_tz="Europe/Berlin")
    assert (result["ambiguous_times"], result["nonexistent_times"]) == (1, 1)
    assert result["source_tz"] == "Europe/Berlin"
    assert "1 ambiguous local times (clocks went back) taken as their first occurrence" in \
        result["summary"]
    assert "1 nonexistent local times (clocks went forward) moved forward by the gap" in \
        result["summary"]
    ts = store.scan_events().sort("user_id").collect()["ts"].to_list()
    assert ts[0] == Z("2026-03-29T01:30:00Z")
    with pytest.raises(UsageError, match="unknown time zone"):
        ingest(store, "events", [src], source_tz="Europe/Atlantis")


def test_cli_tz_and_config(tmp_path, capsys):
    src = tmp_path / "e.csv"
    src.write_text("user_id,event,ts\na,x,2026-03-08T04:30:00Z\nb,x,2026-03-08T05:30:00Z\n")
    home = str(tmp_path / "h")
    assert main(["ingest", "events", str(src), "--home", home]) == 0
    capsys.readouterr()

    def events(*extra: str) -> dict[str, int]:
        assert main(["events", "--event", "x", "--from", "2026-03-07", "--to", "2026-03-08",
                     "--home", home, "--json", *extra]) == 0
        rows = json.loads(capsys.readouterr().out)["rows"]
        return {r["period"]: r["events"] for r in rows}

    assert events() == {"2026-03-07": 0, "2026-03-08": 2}
    assert events("--tz", "America/New_York") == {"2026-03-07": 1, "2026-03-08": 1}
    assert main(["config", "set", "timezone", "America/New_York", "--home", home]) == 0
    capsys.readouterr()
    assert events() == {"2026-03-07": 1, "2026-03-08": 1}
    assert events("--tz", "UTC") == {"2026-03-07": 0, "2026-03-08": 2}
    assert main(["config", "set", "timezone", "Mars/Base", "--home", home]) == 2
    assert "unknown time zone 'Mars/Base'" in capsys.readouterr().err
    assert main(["events", "--event", "x", "--from", "2026-03-07", "--to", "2026-03-08",
                 "--home", home, "--tz", "Nowhere"]) == 2
