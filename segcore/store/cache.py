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
import logging
import os
import threading
from collections.abc import Callable

import numpy as np
import polars as pl

LOG = logging.getLogger(__name__)

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


class _Block:
    """One event name's rows: columns in Parquet scan order until the block is read a
    second time, then sorted by ``ts`` (``perm`` maps scan order to that order)."""

    def __init__(self, cols: dict[str, pl.Series]):
        self.cols = cols
        self.perm: pl.Series | None = None
        self.reads = 0

    def add(self, name: str, values: pl.Series) -> None:
        """Add a column read in scan order."""
        self.cols[name] = values if self.perm is None else values.gather(self.perm)

    def sort(self) -> None:
        perm = self.cols["ts"].arg_sort()
        self.cols = {c: v.gather(perm) for c, v in self.cols.items()}
        self.perm = perm


class EventCache:
    """Event columns of one store in memory, per event name, rebuilt per data version.

    Only what queries read is built: an event name's block the first time a query reads
    that event, a column of it the first time a query reads that column. A block is read
    from Parquet with ``event = name`` pushed down (event files are sorted by event name,
    so row-group statistics skip the rest) and user ids are coded once (``USER_CODE``):
    the first answer in a new process costs one filtered scan of the events it reads,
    as without the cache. When a block is read again it is sorted by ``ts``; from then on
    a time range is a binary search and a zero-copy slice. ``version``, ``scan`` and
    ``names`` are the store's data version, events LazyFrame and event names; the cache
    reads nothing else of the store.
    """

    def __init__(self, version: Callable[[], str], scan: Callable[[], pl.LazyFrame],
                 names: Callable[[], list[str]]):
        self._version = version
        self._scan = scan
        self._names = names
        self.enabled = True
        self._lock = threading.Lock()
        self._key: str | None = None
        self._blocks: dict[str, _Block] = {}
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
        """``columns`` of ``events`` (all if None) with ``since <= ts < until`` from memory,
        or None when the store is too large to cache (the caller scans Parquet instead)."""
        blocks = self._read(columns, events)
        if blocks is None:
            return None
        parts = []
        for block, is_sorted in blocks:  # ok-loop: one slice per event name
            if not is_sorted:
                conds = []
                if since is not None:
                    conds.append(pl.col("ts") >= pl.lit(since, dtype=block["ts"].dtype))
                if until is not None:
                    conds.append(pl.col("ts") < pl.lit(until, dtype=block["ts"].dtype))
                parts.append(block.filter(*conds) if conds else block)
                continue
            a, b = 0, block.height
            if since is not None:
                a = int(block["ts"].search_sorted(since, side="left"))
            if until is not None:
                b = int(block["ts"].search_sorted(until, side="left"))
            if b > a:
                parts.append(block.slice(a, b - a) if b - a < block.height else block)
        parts = [p for p in parts if p.height]
        if not parts:
            return self._empty(columns).lazy()
        return pl.concat(parts, rechunk=False).lazy().select(columns)

    def _empty(self, columns: list[str]) -> pl.DataFrame:
        schema = self._scan().collect_schema()
        types = {c: (pl.Categorical() if c in ("event", USER_CODE) else schema[c])
                 for c in columns}
        return pl.DataFrame(schema=types)

    def _read(self, columns: list[str],
              events: list[str] | None) -> list[tuple[pl.DataFrame, bool]] | None:
        key = self._version()
        with self._lock:
            if key != self._key:
                self._blocks, self._key = {}, key
                total = self._scan().select(pl.len()).collect().item()
                if total > max_cached_rows():
                    LOG.warning("segcore: %s events exceed SEGCORE_EVENT_CACHE_MAX_ROWS (%s): "
                                "answering from Parquet scans with filters pushed down, "
                                "not the in-memory cache", f"{total:,}", f"{max_cached_rows():,}")
                    self.enabled = False
                    return None
            names = list(events) if events is not None else self._names()
            wanted = ["ts", *(c for c in columns if c not in ("event", "ts", USER_CODE))]
            if USER_CODE in columns and "user_id" not in wanted:
                wanted.append("user_id")
            todo = []
            for name in names:  # ok-loop: one entry per event name
                block = self._blocks.get(name)
                have = block.cols if block is not None else {}
                cols = [c for c in wanted if c not in have
                        and not (c == "user_id" and USER_CODE in have)]
                if cols:
                    todo.append((name, cols))
            if todo:  # one filtered scan per event, run together
                scan = self._scan()
                got = pl.collect_all([scan.filter(pl.col("event") == n).select(cols)
                                      for n, cols in todo])
                for (name, _), df in zip(todo, got, strict=True):  # ok-loop: one block per event
                    self._load(name, df)
            out = []
            keep = list(dict.fromkeys(["ts", *columns]))
            for name in names:  # ok-loop: one frame per event name
                block = self._blocks[name]
                block.reads += 1
                if block.perm is None and block.reads > 1 and block.cols["ts"].len() > 1:
                    block.sort()
                for c in keep:  # ok-loop: columns derived on request
                    if c == "event" and c not in block.cols:
                        block.cols[c] = pl.Series("event", [name], pl.Categorical()).new_from_index(
                            0, block.cols["ts"].len())
                    elif c == "user_id" and c not in block.cols:
                        block.cols[c] = block.cols[USER_CODE].cast(pl.String).alias("user_id")
                out.append((pl.DataFrame([block.cols[c] for c in keep]),
                            block.perm is not None or block.cols["ts"].len() < 2))
            return out

    def _load(self, name: str, df: pl.DataFrame) -> None:
        """Keep the columns of ``df`` (one event's rows, scan order) in its block; user ids
        are kept as ``USER_CODE`` codes (strings are derived from them on request)."""
        cols = {c: df[c] for c in df.columns if c != "user_id"}
        if "user_id" in df.columns:
            cols[USER_CODE] = df["user_id"].cast(pl.Categorical).alias(USER_CODE)
        block = self._blocks.get(name)
        if block is None:
            self._blocks[name] = _Block(cols)
            return
        for c, values in cols.items():  # ok-loop: one column each
            block.add(c, values)
