"""Event statistics kept beside the event files (``<home>/.event_stats.json``).

Per event file (keyed by its size and modification time): its rows per event name and
its first and last ``ts``; per data version: the number of distinct users with events.
A new process (every CLI call) reads these instead of scanning every event to learn the
event names a rule is checked against or what ``segcore info`` prints; a file's entry is
recomputed when the file changes, entries of removed files are dropped. The file is a
cache: a store that cannot be written to computes the same values on each call, and the
values are always those of a scan (``EventStore.event_counts`` and ``info``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from segcore.store.files import TMP_PREFIX

STATS_FILE = ".event_stats.json"  # in the store folder: ``events/`` holds only Parquet
UTC_US = pl.Datetime("us", "UTC")


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, data: dict[str, Any]) -> None:
    """Replace the stats file atomically; a read-only store just keeps no stats."""
    tmp = path.with_name(f"{TMP_PREFIX}{os.getpid()}-{path.name}")
    try:
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


class EventStats:
    """Per-file statistics of the event files under ``folder`` (kept in ``home``)."""

    def __init__(self, home: Path, folder: Path):
        self.path = home / STATS_FILE
        self.folder = folder

    def files(self, files: list[Path]) -> dict[str, dict[str, Any]] | None:
        """The entry of every file in ``files`` (computing the missing or stale ones in
        one pass over those files only): ``counts`` [[event, rows]], ``first``/``last``
        ``ts`` in microseconds. None when a file cannot be read: the caller's own scan then
        reports it, naming the file."""
        data = _read(self.path)
        known: dict[str, Any] = data.get("files", {}) if isinstance(data.get("files"), dict) else {}
        out, stale = {}, []
        for f in files:  # ok-loop: one stat per file
            try:
                st = f.stat()
            except FileNotFoundError:
                continue
            rel = f.relative_to(self.folder).as_posix()
            entry = known.get(rel)
            if (isinstance(entry, dict) and entry.get("size") == st.st_size
                    and entry.get("mtime_ns") == st.st_mtime_ns):
                out[rel] = entry
            else:
                stale.append((f, rel, st))
        if stale:
            try:
                got = pl.collect_all([_grouped(pl.scan_parquet(f, glob=False))
                                      for f, _, _ in stale])
            except (pl.exceptions.PolarsError, OSError):
                return None
            for (_, rel, st), df in zip(stale, got, strict=True):  # ok-loop: one entry per file
                out[rel] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, **_entry(df)}
        if stale or set(known) != set(out):
            _write(self.path, {**data, "files": out})
        return out

    def add(self, summaries: dict[Path, dict[str, Any]]) -> None:
        """Record the entries of files just written from their :func:`summarize` values
        (the writer had their events in memory: no file is read again)."""
        data = _read(self.path)
        known = data.get("files", {}) if isinstance(data.get("files"), dict) else {}
        for f, summary in summaries.items():  # ok-loop: one stat per file
            try:
                st = f.stat()
            except FileNotFoundError:
                continue
            known[f.relative_to(self.folder).as_posix()] = {
                "size": st.st_size, "mtime_ns": st.st_mtime_ns, **summary}
        _write(self.path, {**data, "files": known})

    def per_version(self, version: str, name: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per data ``version`` (kept in the stats file)."""
        data = _read(self.path)
        cached = data.get("version_values")
        if isinstance(cached, dict) and cached.get("version") == version and name in cached:
            return cached[name]
        value = compute()
        values = cached if isinstance(cached, dict) and cached.get("version") == version else {}
        _write(self.path, {**_read(self.path), "version_values":
                           {**values, "version": version, name: value}})
        return value


def _grouped(lf: pl.LazyFrame) -> pl.LazyFrame:
    return (lf.select("event", pl.col("ts").cast(UTC_US).dt.epoch("us"))
            .group_by("event").agg(pl.len().alias("count"), pl.col("ts").min().alias("first"),
                                   pl.col("ts").max().alias("last")))


def _entry(df: pl.DataFrame) -> dict[str, Any]:
    return {"counts": [[e, int(n)] for e, n in zip(  # ok-loop: event names
                df["event"].to_list(), df["count"].to_list(), strict=True)],
            "first": df["first"].min(), "last": df["last"].max()}


def summarize(events: pl.DataFrame) -> dict[str, Any]:
    """A file's statistics (rows per event name, first and last ``ts``) from its events in
    memory, for :meth:`EventStats.add`."""
    return _entry(_grouped(events.lazy()).collect())


def event_counts(entries: dict[str, dict[str, Any]]) -> pl.DataFrame:
    """Event name and number of events over all ``entries``, most frequent first."""
    rows = [(e, n) for entry in entries.values() for e, n in entry["counts"]]  # ok-loop: tiny
    df = pl.DataFrame(rows, schema={"event": pl.String(), "count": pl.UInt32()}, orient="row")
    return (df.group_by("event").agg(pl.col("count").sum().cast(pl.UInt32))
            .sort(["count", "event"], descending=[True, False]))


def time_range(entries: dict[str, dict[str, Any]]) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The first and last ``ts`` over all ``entries`` (UTC), None if there are none."""
    firsts = [e["first"] for e in entries.values() if e.get("first") is not None]
    lasts = [e["last"] for e in entries.values() if e.get("last") is not None]

    def at(us: int) -> dt.datetime:
        return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=us)

    return (at(min(firsts)) if firsts else None, at(max(lasts)) if lasts else None)
