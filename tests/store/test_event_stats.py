"""Event statistics beside the event files (segcore/store/stats.py, in the store folder): event counts and
``info()`` equal a full scan's, are kept per file across processes, follow new and
removed files, and a read-only store still answers."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl

from segcore import Store
from segcore.store.stats import STATS_FILE
from tests.conftest import make_store

UTC = dt.timezone.utc


def _events(n: int = 40, day: int = 1) -> list[tuple]:
    t0 = dt.datetime(2026, 1, day, tzinfo=UTC)
    return [(f"u{i % 5}", ("a", "b", "c", "a")[i % 4], t0 + dt.timedelta(hours=i)) for i in range(n)]


def _scanned(store: Store) -> dict:
    """What info() reports, computed by scanning every event (the old way)."""
    ev = store.scan_events()
    row = ev.select(pl.len(), pl.col("ts").min().alias("a"), pl.col("ts").max().alias("b"),
                    pl.col("user_id").n_unique()).collect().row(0)
    counts = (ev.group_by("event").agg(pl.len().alias("count"))
              .sort(["count", "event"], descending=[True, False]).collect())
    iso = [x.isoformat().replace("+00:00", "Z") for x in row[1:3]]
    return {"events": row[0], "first_event": iso[0], "last_event": iso[1],
            "users_with_events": row[3],
            "event_names": [{"event": e, "count": c} for e, c in counts.iter_rows()]}


def _info(store: Store) -> dict:
    info = store.info()
    return {k: info[k] for k in ("events", "first_event", "last_event", "users_with_events",
                                 "event_names")}


def test_info_and_event_counts_equal_a_full_scan_and_persist(tmp_path):
    store = make_store(tmp_path, _events())
    assert _info(store) == _scanned(store)
    saved = json.loads((tmp_path / STATS_FILE).read_text())
    assert saved["files"]["part-0.parquet"]["counts"]
    assert saved["version_values"]["users_with_events"] == 5
    fresh = Store(tmp_path)  # a new process: read from the stats file
    assert _info(fresh) == _scanned(fresh)
    assert fresh.event_counts().equals(store.event_counts())
    assert fresh.event_counts().schema == {"event": pl.String(), "count": pl.UInt32()}
    assert Store(tmp_path).scan_events().collect().height == 40  # never read as events
    assert pl.scan_parquet(tmp_path / "events").collect().height == 40  # only Parquet there


def test_new_and_removed_files_update_the_stats(tmp_path):
    store = make_store(tmp_path, _events())
    store.info()
    extra = pl.DataFrame({"user_id": ["new", "u1"], "event": ["d", "a"], "event_id": ["x", "y"],
                          "ts": [dt.datetime(2026, 3, 1, tzinfo=UTC)] * 2})
    extra.write_parquet(tmp_path / "events" / "part-1.parquet")
    after = Store(tmp_path)
    assert _info(after) == _scanned(after)
    assert _info(after)["users_with_events"] == 6
    (tmp_path / "events" / "part-0.parquet").unlink()
    gone = Store(tmp_path)
    assert _info(gone) == _scanned(gone)
    saved = json.loads((tmp_path / STATS_FILE).read_text())
    assert list(saved["files"]) == ["part-1.parquet"]


def test_a_read_only_store_computes_the_stats(tmp_path, monkeypatch):
    store = make_store(tmp_path, _events())

    def refuse(*args, **kwargs):
        raise PermissionError("read-only")

    monkeypatch.setattr("pathlib.Path.write_text", refuse)
    assert _info(store) == _scanned(store)
    assert not (tmp_path / STATS_FILE).exists()


def test_a_damaged_stats_file_is_recomputed(tmp_path):
    make_store(tmp_path, _events())
    (tmp_path / STATS_FILE).write_text("{not json")
    store = Store(tmp_path)
    assert _info(store) == _scanned(store)


def test_last_event_time_comes_from_the_statistics(tmp_path, monkeypatch):
    """The default instant's last event (segcore/lang/dates.py ``default_as_of``) is read
    from the per-file statistics in a new process, equal to a scan's maximum."""
    make_store(tmp_path, _events(30, day=3))
    scanned = Store(tmp_path).scan_events().select(pl.col("ts").max()).collect().item()
    fresh = Store(tmp_path)
    fresh.info()  # statistics written

    def no_scan(*a, **k):
        raise AssertionError("scanned the events")

    other = Store(tmp_path)
    monkeypatch.setattr(other, "scan_events", no_scan)
    assert other.last_event_time() == scanned == dt.datetime(2026, 1, 4, 5, tzinfo=UTC)
    assert other.default_as_of(dt.datetime(2026, 2, 1, tzinfo=UTC)).instant \
        == dt.datetime(2026, 1, 5, tzinfo=UTC)


def test_sample_stores_carry_the_stats_of_a_scan(tmp_path):
    """``segcore sample`` writes each file's statistics from its events in memory: a first
    query reads them instead of scanning every event, and they equal a scan's."""
    from segcore.sample import generate
    from segcore.store import stats

    generate(tmp_path / "s", users=300, days=20, end="2026-06-30", seed=5)
    home = tmp_path / "s"
    written = json.loads((home / STATS_FILE).read_text())["files"]
    assert set(written) == {p.name for p in (home / "events").glob("*.parquet")}
    (home / STATS_FILE).unlink()
    store = Store(home)
    scanned = stats.EventStats(home, store.events_dir).files(store.event_files())
    norm = {k: {**v, "counts": sorted(v["counts"])} for k, v in written.items()}
    assert norm == {k: {**v, "counts": sorted(v["counts"])} for k, v in scanned.items()}
    assert _info(Store(home)) == _scanned(store)
