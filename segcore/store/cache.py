"""The in-memory event-column cache: event columns sorted by (event, ts), per data version.

A long-lived process (the dashboard, a notebook, the benchmark) decodes each event column
from Parquet once per data version and keeps it in memory sorted by (event, ts), with each
event name's row range; selecting events and a time range is then a binary search and
zero-copy slices, not a scan. ``event`` is Categorical there; ``USER_CODE`` is ``user_id``
as a Categorical. :class:`segcore.store.events.EventStore` owns one ``EventCache`` and asks
it through ``events_frame``.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable

import numpy as np
import polars as pl

# A derived column ``events_frame`` serves on request: ``user_id`` as a Categorical, so
# grouping and ``join_asof(by=...)`` on users hash 32-bit codes, not strings.
USER_CODE = "__user"


def distinct_user_rows(codes: pl.Series) -> np.ndarray:
    """One row index per distinct user of a ``USER_CODE`` column (a scatter, no hashing)."""
    phys = codes.to_physical().to_numpy()
    if not len(phys):
        return np.empty(0, dtype=np.int64)
    dtype = np.int32 if len(phys) < 2**31 else np.int64  # half the memory traffic
    row = np.full(int(phys.max()) + 1, -1, dtype=dtype)
    row[phys] = np.arange(len(phys), dtype=dtype)  # any row of a user will do
    return row[row >= 0]


def max_cached_rows() -> int:
    """``SEGCORE_EVENT_CACHE_MAX_ROWS`` (default 100M): larger stores are scanned, not cached."""
    return int(os.environ.get("SEGCORE_EVENT_CACHE_MAX_ROWS", 100_000_000))


class EventCache:
    """Event columns of one store in memory, rebuilt when its data version changes.

    ``version`` returns the store's data version and ``scan`` its events as a LazyFrame;
    the cache reads nothing else of the store.
    """

    def __init__(self, version: Callable[[], str], scan: Callable[[], pl.LazyFrame]):
        self._version = version
        self._scan = scan
        self.enabled = True
        self._lock = threading.Lock()
        self._key: str | None = None
        self._cols: dict[str, pl.Series] = {}
        self._perm: pl.Series | None = None
        self._ranges: dict[str, tuple[int, int]] | None = None
        self._users: tuple[tuple, pl.DataFrame] | None = None

    def users(self, key: tuple, scan: pl.LazyFrame) -> pl.LazyFrame:
        """The users table in memory per version ``key`` of its files (``scan`` if too big)."""
        with self._lock:
            cached = self._users
            if cached is None or cached[0] != key:
                if scan.select(pl.len()).collect().item() > max_cached_rows():
                    return scan
                cached = self._users = (key, scan.collect())
        return cached[1].lazy()

    def frame(self, columns: list[str], events: list[str] | None,
              since: dt.datetime | None, until: dt.datetime | None) -> pl.LazyFrame | None:
        """``columns`` of ``events`` with ``since <= ts < until`` from memory, or None when
        the store is too large to cache (the caller scans Parquet instead)."""
        built = self._columns(columns)
        if built is None:
            return None
        df, ranges = built
        if events is None and since is None and until is None:
            return df.lazy().select(columns)
        names = events if events is not None else sorted(ranges)
        ts = df["ts"]
        parts = []
        for name in names:  # ok-loop: one slice per event name
            if name not in ranges:
                continue
            a, b = ranges[name]
            if since is not None or until is not None:
                block = ts.slice(a, b - a)
                lo = block.search_sorted(since, side="left") if since is not None else 0
                hi = block.search_sorted(until, side="left") if until is not None else b - a
                a, b = a + int(lo), a + int(hi)
            if b > a:
                parts.append(df.slice(a, b - a))
        if not parts:
            return df.clear().lazy().select(columns)
        return pl.concat(parts, rechunk=False).lazy().select(columns)

    def _columns(self, columns: list[str]) -> tuple[pl.DataFrame, dict[str, tuple[int, int]]] | None:
        key = self._version()
        with self._lock:
            if key != self._key:
                self._cols, self._key = {}, key
                self._perm = self._ranges = None
            scan = self._scan()
            if self._perm is None:
                if scan.select(pl.len()).collect().item() > max_cached_rows():
                    self.enabled = False
                    return None
                base = (scan.select("event", "ts").with_row_index("__row")
                        .sort(["event", "ts"]).collect())
                base = base.rechunk()  # contiguous columns: slices read zero-copy by numpy
                self._perm = base["__row"]
                self._cols = {"event": base["event"].cast(pl.Categorical), "ts": base["ts"]}
                bounds = (base.select("event").with_row_index("i").group_by("event")
                          .agg(pl.col("i").min().alias("a"), pl.col("i").max().alias("b")))
                self._ranges = {e: (int(a), int(b) + 1) for e, a, b in bounds.iter_rows()}  # ok-loop: one row per event name
            missing = [c for c in columns if c not in self._cols and c != USER_CODE]
            if USER_CODE in columns and "user_id" not in [*self._cols, *missing]:
                missing.append("user_id")
            if missing:
                loaded = scan.select(missing).collect()
                for c in missing:  # ok-loop: one gather per column
                    self._cols[c] = loaded[c].gather(self._perm).rechunk()
            if USER_CODE in columns and USER_CODE not in self._cols:
                codes = self._cols["user_id"].cast(pl.Categorical)
                self._cols[USER_CODE] = codes.alias(USER_CODE).rechunk()
            keep = list(dict.fromkeys(["event", "ts", *columns]))
            df = pl.DataFrame([self._cols[c] for c in keep])
            return df, dict(self._ranges)
