"""Re-importing a file (issue 19, item 12): its content hash is in the store's import
records, and a repeat whose rows have no event_id is refused unless skipped or forced."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from segcore import Store
from segcore.cli import main
from segcore.errors import IngestError
from segcore.ingest import ingest
from segcore.ingest.records import RECORDS_FILE

CSV = "user_id,event,ts\nu1,a,2026-01-01T10:00:00Z\nu2,b,2026-01-02T10:00:00Z\n"


def events(store: Store) -> int:
    return store.scan_events().select(pl.len()).collect().item()


def test_a_repeated_file_is_refused_skipped_or_imported_again(tmp_path: Path) -> None:
    store = Store(tmp_path / "home")
    src = tmp_path / "a.csv"
    src.write_text(CSV)
    first = ingest(store, "events", [src])
    assert first["rows_imported"] == 2 and first["imported_before"] == []
    rec = json.loads((store.home / RECORDS_FILE).read_text().splitlines()[0])
    assert (rec["file"], rec["rows"], len(rec["sha256"])) == ("a.csv", 2, 64)
    renamed = tmp_path / "copy of a.csv"  # the same content under another name
    renamed.write_text(CSV)
    with pytest.raises(IngestError) as err:
        ingest(store, "events", [renamed])
    assert str(err.value).startswith(
        f"already imported: copy of a.csv (imported {rec['at']} as a.csv); importing the same "
        "content again would store its events twice. Choose --if-imported skip")
    assert events(store) == 2  # nothing written
    other = tmp_path / "b.csv"
    other.write_text("user_id,event,ts\nu3,c,2026-01-03T10:00:00Z\n")
    res = ingest(store, "events", [renamed, other], if_imported="skip")
    assert (res["rows_imported"], res["skipped_files"]) == (1, [str(renamed)])
    assert "skipped, imported before: copy of a.csv" in res["summary"]
    res = ingest(store, "events", [src], if_imported="skip")
    assert res["rows_imported"] == 0 and res["summary"].startswith(
        "imported nothing: every file was imported before (a.csv (imported")
    res = ingest(store, "events", [src], if_imported="again")
    assert res["rows_imported"] == 2 and res["imported_before"] == [str(src)]
    assert "imported before (same content): a.csv" in res["summary"]
    assert events(store) == 5
    with pytest.raises(IngestError, match="bad if_imported 'maybe'"):
        ingest(store, "events", [src], if_imported="maybe")


def test_files_with_event_ids_are_deduplicated_without_asking(tmp_path: Path) -> None:
    store = Store(tmp_path / "home")
    src = tmp_path / "ids.csv"
    src.write_text("user_id,event,ts,event_id\nu1,a,2026-01-01T10:00:00Z,e1\n")
    ingest(store, "events", [src])
    res = ingest(store, "events", [src])
    assert (res["rows_imported"], res["duplicates_skipped"]) == (0, 1)
    assert res["imported_before"] == [str(src)]
    keyed = tmp_path / "k.csv"
    keyed.write_text(CSV)
    ingest(store, "events", [keyed], key="user_id,ts")
    assert ingest(store, "events", [keyed], key="user_id,ts")["duplicates_skipped"] == 2
    users = tmp_path / "u.csv"  # users are upserted: a repeat changes nothing, never asked
    users.write_text("user_id,country\nu1,DE\n")
    ingest(store, "users", [users])
    assert ingest(store, "users", [users])["users_updated"] == 1


def test_cli_warns_and_offers_the_two_choices(tmp_path: Path, capsys) -> None:
    home, src = str(tmp_path / "home"), tmp_path / "a.csv"
    src.write_text(CSV)
    assert main(["ingest", "events", str(src), "--home", home]) == 0
    capsys.readouterr()
    assert main(["ingest", "events", str(src), "--home", home]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: already imported: a.csv (imported ") and err.count("\n") == 1
    assert "--if-imported skip" in err and "--if-imported again" in err
    assert main(["ingest", "events", str(src), "--home", home, "--if-imported", "skip"]) == 0
    assert capsys.readouterr().out.startswith("imported nothing: every file was imported before")
    assert main(["ingest", "events", str(src), "--home", home, "--if-imported", "again"]) == 0
    assert "imported before (same content): a.csv" in capsys.readouterr().out
    assert events(Store(home)) == 4
