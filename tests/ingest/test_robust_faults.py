"""Faults: imports killed with SIGKILL, crashes inside catalog writes, full disks and
read-only stores. Nothing half-done is ever visible; errors are clear ``StoreError`` lines.

See docs/robustness.md for the guarantees these tests stand behind.
"""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from segcore import Store
from segcore.errors import StoreError
from segcore.ingest import ingest
from segcore.segments import create_segment
from segcore.store.catalog import Catalog
from segcore.store.files import TMP_PREFIX
from segcore.store.stats import STATS_FILE

BIG_ROWS = 200_000
BASE = (
    "user_id,event,ts,event_id,amount\n"
    "u1,charged,2026-06-01T10:00:00Z,base1,5.5\n"
    "u2,viewed,2026-06-02T10:00:00Z,base2,7.25\n"
)
BASE_USERS = "user_id,country\nu1,US\nu2,FR\n"


def snapshot(home: Path) -> dict[str, str]:
    return {
        str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(home.rglob("*"))
        if p.is_file()
    }


def _events_frame(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    secs = rng.integers(1_760_000_000, 1_780_000_000, n) * 1_000_000
    return pl.DataFrame(
        {
            "user_id": pl.Series(rng.integers(0, 20_000, n)).cast(pl.String),
            "event": pl.Series(rng.choice(["a", "b", "charged"], n)),
            "ts": pl.Series(secs).cast(pl.Datetime("us", "UTC")).dt.to_string("%Y-%m-%dT%H:%M:%SZ"),
            "event_id": pl.Series(np.arange(n)).cast(pl.String),
            "amount": rng.random(n),
        }
    )


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.csv"
    _events_frame(BIG_ROWS, 1).write_csv(path)
    return path


@pytest.fixture(scope="module")
def big_users_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bigu") / "users.csv"
    n = 200_000
    pl.DataFrame(
        {"user_id": [f"n{i}" for i in range(n)], "country": ["DE"] * n, "score": range(n)}
    ).write_csv(path)
    return path


@pytest.fixture
def home(tmp_path) -> Path:
    home = tmp_path / "home"
    (tmp_path / "base.csv").write_text(BASE)
    (tmp_path / "users.csv").write_text(BASE_USERS)
    ingest(Store(home), "events", [tmp_path / "base.csv"])
    ingest(Store(home), "users", [tmp_path / "users.csv"])
    return home


def _ingest_proc(home: Path, kind: str, src: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "segcore", "ingest", kind, str(src), "--home", str(home),
         *(["--if-imported", "again"] if kind == "events" else [])],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _kill_when(proc: subprocess.Popen, home: Path, point: float | str) -> None:
    """SIGKILL ``proc`` after ``point`` seconds, or once a temporary file shows up."""
    if point == "mid-write":
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if any(p.name.startswith(TMP_PREFIX) for p in home.rglob("*")):
                break
            time.sleep(0.002)
    else:
        time.sleep(point)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def _visible_files(store: Store) -> list[Path]:
    return store.event_files() + store.user_files()


@pytest.fixture(scope="module")
def import_seconds(big_csv, tmp_path_factory) -> float:
    """Wall time of one whole ``segcore ingest`` of the big file (start-up included)."""
    home = tmp_path_factory.mktemp("timing") / "home"
    start = time.monotonic()
    _ingest_proc(home, "events", big_csv).wait(timeout=120)
    return time.monotonic() - start


# kill points as fractions of a whole import's wall time, plus "once a temp file exists"
KILL_POINTS = [0.02, 0.25, 0.5, 0.75, 0.9, 1.3, "mid-write"]


@pytest.mark.parametrize("point", KILL_POINTS)
def test_sigkill_during_event_import_leaves_old_or_new(home, big_csv, import_seconds, point):
    old = snapshot(home)
    old_count = Store(home).scan_events().select(pl.len()).collect().item()
    proc = _ingest_proc(home, "events", big_csv)
    _kill_when(proc, home, point if isinstance(point, str) else point * import_seconds)

    store = Store(home)
    assert not any(TMP_PREFIX in str(p) for p in _visible_files(store))
    count = store.scan_events().select(pl.len()).collect().item()
    assert count in (old_count, old_count + BIG_ROWS)
    assert store.count("did('charged')", as_of="2026-07-01") >= 1
    for name, digest in old.items():  # files that were there are untouched
        if name not in (".ingest.lock", STATS_FILE, "imports.ndjson"):  # a lock, a derived cache, the import records
            assert snapshot(home).get(name) == digest, name

    if point not in ("mid-write", 0.9):
        return
    # importing again after the crash gives exactly old + new (dedup by event_id)
    again = ingest(store, "events", [big_csv])
    assert again["rows_imported"] + again["duplicates_skipped"] == BIG_ROWS
    assert store.scan_events().select(pl.len()).collect().item() == old_count + BIG_ROWS
    assert not any(p.name.startswith(TMP_PREFIX) for p in store.events_dir.iterdir())


@pytest.mark.parametrize("point", [0.3, 1.0, "mid-write"])
def test_sigkill_during_users_import_leaves_old_or_new_table(home, big_users_csv, point):
    proc = _ingest_proc(home, "users", big_users_csv)
    _kill_when(proc, home, point)
    store = Store(home)
    assert not any(TMP_PREFIX in str(p) for p in _visible_files(store))
    users = store.scan_users().collect()
    assert users.height in (2, 2 + 200_000)
    assert users.filter(pl.col("user_id") == "u1")["country"].to_list() == ["US"]


CATALOG_WRITER = textwrap.dedent(
    """
    import sys
    from segcore import Store
    from segcore.segments import create_segment
    store = Store(sys.argv[1])
    cat = store.catalog
    i = 0
    while True:
        i += 1
        cat.create(f"static {i}", kind="static", members=[f"u{j}" for j in range(20000)])
        create_segment(store, f"dyn {i}", "country = 'US'", description="d")
        cat.edit(f"dyn {i}", description=f"edited {i}", expect_version=1)
        cat.set_members(f"static {i}", [f"u{j}" for j in range(5000)])
        cat.delete(f"dyn {i}")
        cat.restore(f"dyn {i}")
    """
)


@pytest.mark.parametrize("delay", [0.9, 1.3, 1.8])
def test_sigkill_during_catalog_writes_never_corrupts_it(home, tmp_path, delay):
    script = tmp_path / "writer.py"
    script.write_text(CATALOG_WRITER)
    store = Store(home)
    create_segment(store, "keep", "country = 'US'")
    proc = subprocess.Popen([sys.executable, str(script), str(home)])
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    con = sqlite3.connect(store.catalog_path)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        con.close()
    cat = Catalog(store.catalog_path)
    segments = cat.list(include_deleted=True)
    assert "keep" in [s.name for s in segments]
    for seg in segments:
        history = cat.history(seg.name)
        assert max(h["version"] for h in history) == seg.version
        if seg.is_static:  # all of a members write, or none of it
            assert len(cat.members(seg.name)) == seg.member_count
            assert seg.member_count in (20_000, 5_000)
        elif seg.deleted_at is None:
            assert store.count(segment=seg.name, as_of="2026-07-01") == 1  # u1 is US


# ---------------------------------------------------------------------- full disk, read-only
def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_on_rename_is_a_store_error_with_no_partial_file(home, tmp_path, monkeypatch):
    src = tmp_path / "more.csv"
    src.write_text("user_id,event,ts\nu9,x,2026-06-05\n")
    before = snapshot(home)
    monkeypatch.setattr(os, "replace", _enospc)
    with pytest.raises(StoreError) as err:
        ingest(Store(home), "events", [src])
    assert str(err.value).startswith(
        f"no space left on device while writing {Store(home).events_dir}/part-"
    )
    assert str(err.value).endswith(".parquet; the store is unchanged")
    assert snapshot(home) == before


def test_full_disk_half_way_through_a_write_leaves_no_partial_file(home, tmp_path, monkeypatch):
    src = tmp_path / "more.csv"
    src.write_text("user_id,country\nu9,JP\n")
    before = snapshot(home)
    real = pl.DataFrame.write_parquet

    def half_then_full(self, file, *args, **kwargs):
        real(self, file, *args, **kwargs)
        data = Path(file).read_bytes()
        Path(file).write_bytes(data[: len(data) // 2])
        _enospc()

    monkeypatch.setattr(pl.DataFrame, "write_parquet", half_then_full)
    with pytest.raises(StoreError) as err:
        ingest(Store(home), "users", [src])
    assert str(err.value) == (
        f"no space left on device while writing {home}/users/users.parquet; "
        "the store is unchanged"
    )
    assert snapshot(home) == before
    assert Store(home).scan_users().collect().height == 2


def test_full_catalog_disk_is_a_store_error_and_changes_nothing(home, monkeypatch):
    store = Store(home)
    store.catalog.create("keep", rule_text="country = 'US'")
    real_open = Catalog._open

    def small_disk(self):
        con = real_open(self)
        pages = con.execute("PRAGMA page_count").fetchone()[0]
        con.execute(f"PRAGMA max_page_count = {pages + 2}")
        return con

    monkeypatch.setattr(Catalog, "_open", small_disk)
    with pytest.raises(StoreError) as err:
        store.catalog.create("huge", kind="static", members=[f"user-{i}" for i in range(50_000)])
    assert str(err.value) == f"the disk is full: cannot write the catalog {store.catalog_path}"
    monkeypatch.undo()
    assert [s.name for s in store.catalog.list(include_deleted=True)] == ["keep"]


def test_store_under_a_regular_file_is_a_clear_store_error(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    src = tmp_path / "e.csv"
    src.write_text("user_id,event,ts\nu1,x,2026-06-01\n")
    store = Store(blocker / "home")
    with pytest.raises(StoreError, match="cannot write to the store .*: Not a directory"):
        ingest(store, "events", [src])
    with pytest.raises(StoreError, match="for the catalog: Not a directory"):
        store.catalog.create("a", rule_text="TRUE")
    assert blocker.read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.csv", "not_a_folder"]


def test_read_only_store_is_a_clear_store_error(home, tmp_path, monkeypatch):
    # permission bits do not stop root (tests may run as root): simulate with os.access
    store = Store(home)
    create_segment(store, "keep", "country = 'US'")
    before = snapshot(home)
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode, **kw: False if mode & os.W_OK else real_access(p, mode, **kw)
    )
    src = tmp_path / "more.csv"
    src.write_text("user_id,event,ts\nu9,x,2026-06-05\n")
    with pytest.raises(StoreError, match="the store is read-only: cannot write to"):
        ingest(store, "events", [src])
    with pytest.raises(StoreError, match="is read-only"):
        store.catalog.create("new", rule_text="TRUE")
    assert store.catalog.get("keep").rule_text == "country = 'US'"  # reads still work
    assert store.count(segment="keep", as_of="2026-07-01") == 1
    monkeypatch.undo()
    after = snapshot(home)
    assert {k: v for k, v in after.items() if "catalog" not in k} == {
        k: v for k, v in before.items() if "catalog" not in k
    }
