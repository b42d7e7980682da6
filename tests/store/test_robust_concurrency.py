"""Concurrency: editors racing on one segment version, readers during imports, writers
racing each other. A stale save is refused with a conflict message; a reader sees the
store before or after an import, never in between. See docs/robustness.md.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import polars as pl
import pytest

import segcore.engine.polars.evaluate as evaluate
from segcore import Store
from segcore.errors import ConflictError
from segcore.ingest import ingest
from segcore.segments import create_segment
from segcore.store.catalog import Catalog

AS_OF = "2026-06-30"
BASE = "user_id,event,ts,event_id\nu1,a,2026-06-01,b1\nu2,x,2026-06-01,b2\n"
USERS = "user_id,country\nu1,US\nu2,FR\n"
# "NOT did('x')" is u1 before and after the big import (its users all did 'x'); a reader
# mixing the universe after the import with the behaviour before it would count them too
RULE = "NOT did('x')"
NEW_ROWS = 150_000


@pytest.fixture
def home(tmp_path) -> Path:
    home = tmp_path / "home"
    (tmp_path / "base.csv").write_text(BASE)
    (tmp_path / "users.csv").write_text(USERS)
    ingest(Store(home), "events", [tmp_path / "base.csv"])
    ingest(Store(home), "users", [tmp_path / "users.csv"])
    return home


@pytest.fixture(scope="module")
def new_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("conc") / "new.csv"
    n = NEW_ROWS
    pl.DataFrame(
        {
            "user_id": [f"n{i % 30_000}" for i in range(n)],
            "event": ["x"] * n,
            "ts": ["2026-06-02T10:00:00Z"] * n,
            "event_id": [f"new{i}" for i in range(n)],
        }
    ).write_csv(path)
    return path


def _cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "segcore", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# ---------------------------------------------------------------------- editors
def test_two_cli_edits_of_one_version_exactly_one_wins(home):
    store = Store(home)
    create_segment(store, "VIP", "country = 'US'")
    for version, country in ((1, "FR"), (2, "DE")):
        procs = [
            _cli(
                "segment",
                "edit",
                "VIP",
                "--rule",
                f"country = '{country}'",
                "--description",
                f"by {who}",
                "--expect-version",
                str(version),
                "--home",
                str(home),
            )
            for who in ("alice", "bob")
        ]
        results = [(p.wait(timeout=60), *p.communicate()) for p in procs]
        assert sorted(r[0] for r in results) == [0, 2]
        loser = next(r for r in results if r[0] == 2)
        assert loser[2] == (
            f"error: segment 'VIP' was changed by someone else (you edited version {version}, "
            f"it is now version {version + 1}); reload and try again\n"
        )
        seg = store.catalog.get("VIP")
        assert seg.version == version + 1
        assert seg.rule_text == f"country = '{country}'"
    edits = [h for h in store.catalog.history("VIP") if h["action"] == "edit"]
    assert len(edits) == 2


def test_dashboard_sessions_saving_one_stale_version_exactly_one_wins(home):
    store = Store(home)
    create_segment(store, "VIP", "country = 'US'")
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def save(i: int) -> None:
        cat = Catalog(store.catalog_path)  # each session its own handle
        barrier.wait()
        try:
            cat.edit("VIP", description=f"session {i}", expect_version=1)
            outcomes.append("saved")
        except ConflictError as err:
            assert "was changed by someone else (you edited version 1" in str(err)
            outcomes.append("conflict")

    threads = [threading.Thread(target=save, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["conflict"] * 7 + ["saved"]
    assert store.catalog.get("VIP").version == 2


# ---------------------------------------------------------------------- readers during imports
READER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import polars as pl
    from segcore import Store
    home, stop = sys.argv[1], Path(sys.argv[2])
    while not stop.exists():
        store = Store(home)
        n = store.scan_events().select(pl.len()).collect().item()
        print(n, store.count("NOT did('x')", as_of="2026-06-30"), flush=True)
    """
)


def test_readers_never_see_a_half_imported_store(home, new_csv, tmp_path):
    stop = tmp_path / "stop"
    script = tmp_path / "reader.py"
    script.write_text(READER)
    reader = subprocess.Popen(
        [sys.executable, str(script), str(home), str(stop)], stdout=subprocess.PIPE, text=True
    )
    seen: list[tuple[int, int]] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            store = Store(home)
            n = store.scan_events().select(pl.len()).collect().item()
            seen.append((n, store.count(RULE, as_of=AS_OF)))

    threads = [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    importer = _cli("ingest", "events", str(new_csv), "--home", str(home))
    assert importer.wait(timeout=120) == 0
    time.sleep(0.3)
    done.set()
    stop.write_text("")
    for t in threads:
        t.join(timeout=60)
    out, _ = reader.communicate(timeout=60)
    seen += [tuple(int(x) for x in line.split()) for line in out.splitlines()]

    assert set(seen) <= {(2, 1), (2 + NEW_ROWS, 1)}, set(seen)
    assert (2, 1) in seen and (2 + NEW_ROWS, 1) in seen
    assert len(seen) > 10


def test_one_evaluation_never_mixes_before_and_after_an_import(home, tmp_path, monkeypatch):
    """Regression: each scan used to list the files anew, so an import landing between
    the behaviour scan and the universe scan of one evaluation counted new users as
    having no events (here 51 instead of 1)."""
    src = tmp_path / "new.csv"
    src.write_text("user_id,event,ts\n" + "".join(f"n{i},x,2026-06-02\n" for i in range(50)))
    real_universe = evaluate.universe

    def universe_after_an_import(store, T):
        t = threading.Thread(target=ingest, args=(Store(home), "events", [src]),
                             kwargs={"if_imported": "again"})
        t.start()
        t.join()
        return real_universe(store, T)

    monkeypatch.setattr(evaluate, "universe", universe_after_an_import)
    store = Store(home)
    assert store.count(RULE, as_of=AS_OF) == 1
    assert store.members(RULE, as_of=AS_OF)["user_id"].to_list() == ["u1"]
    monkeypatch.undo()
    assert store.scan_events().select(pl.len()).collect().item() == 2 + 100
    assert store.count(RULE, as_of=AS_OF) == 1


def test_two_processes_importing_the_same_file_store_it_once(home, new_csv):
    procs = [_cli("ingest", "events", str(new_csv), "--home", str(home)) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    events = Store(home).scan_events().collect()
    assert events.height == 2 + NEW_ROWS
    assert events["event_id"].n_unique() == 2 + NEW_ROWS


@pytest.mark.parametrize("report", ["trend", "reach", "segments_of"])
def test_store_reports_read_one_consistent_set_of_files(home, tmp_path, monkeypatch, report):
    """An import landing during a report (after its first scan) is not half seen."""
    src = tmp_path / "new.csv"
    src.write_text("user_id,event,ts\n" + "".join(f"n{i},x,2026-06-02\n" for i in range(50)))
    store = Store(home, cache_events=False)  # every read scans (a warm cache reads no files)
    create_segment(store, "quiet", RULE)
    calls = {
        "trend": lambda: store.trend(RULE, start="2026-06-28", end="2026-06-30")[
            "members"
        ].to_list(),
        "reach": lambda: store.reach(RULE, as_of=AS_OF)["members"],
        "segments_of": lambda: store.segments_of("n1", as_of=AS_OF),
    }
    before = calls[report]()
    real_scan = Store.scan_events
    fired: list[bool] = []

    def scan_then_import(self):
        frame = real_scan(self)
        if not fired:
            fired.append(True)
            t = threading.Thread(target=ingest, args=(Store(home), "events", [src]))
            t.start()
            t.join()
        return frame

    monkeypatch.setattr(Store, "scan_events", scan_then_import)
    assert calls[report]() == before
    assert fired and Store(home).scan_events().select(pl.len()).collect().item() == 52
