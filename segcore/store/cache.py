"""The in-memory event-column cache: event columns sorted by (event, ts), per data version.

A process that reads an event again (the dashboard, the service, a notebook, the
benchmark) decodes its columns from Parquet once per data version and keeps them in
memory sorted by (event, ts); selecting events and a time range is then a binary search
and zero-copy slices, not a scan. A first read is a filtered Parquet scan, so a one-shot
CLI call builds nothing. ``event`` is Categorical there; ``USER_CODE`` is ``user_id``
as a Categorical. :class:`segcore.store.events.EventStore` owns one ``EventCache`` and asks
it through ``events_frame``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    import numpy as np

LOG = logging.getLogger(__name__)

# A derived column ``events_frame`` serves on request: ``user_id`` as a Categorical, so
# grouping and ``join_asof(by=...)`` on users hash 32-bit codes, not strings.
USER_CODE = "__user"
# The cheapest user key of a read (see ``EventStore.events_frame``): ``USER_CODE`` from
# the cache, the ``user_id`` strings from a Parquet scan. Cast to String for user ids.
USER_KEY = "__user_key"


def distinct_user_rows(codes: pl.Series) -> np.ndarray:
    """One row index per distinct user of a ``USER_CODE`` column (a scatter, no hashing)."""
    import numpy as np  # lazily: most processes never need it

    phys = codes.to_physical()
    n = len(phys)
    if not n:
        return np.empty(0, dtype=np.int64)
    dtype = np.int32 if n < 2**31 else np.int64  # half the memory traffic
    row = np.full(int(phys.max()) + 1, -1, dtype=dtype)
    step = 1 << 20  # slices: no copy of a column of many chunks, temporaries in cache
    for a in range(0, n, step):  # ok-loop: bounded slices
        part = phys.slice(a, step).to_numpy()
        row[part] = np.arange(a, a + len(part), dtype=dtype)  # any row of a user will do
    return row[row >= 0]


def max_cached_rows() -> int:
    """``SEGCORE_EVENT_CACHE_MAX_ROWS`` (default 100M): larger stores are scanned, not cached."""
    return int(os.environ.get("SEGCORE_EVENT_CACHE_MAX_ROWS", 100_000_000))


class _Block:
    """One event name's rows, sorted by ``ts`` (``perm`` maps Parquet scan order to it,
    for columns added later)."""

    def __init__(self, cols: dict[str, pl.Series]):
        self.perm = cols["ts"].arg_sort()
        self.cols = {c: v.gather(self.perm) for c, v in cols.items()}


class EventCache:
    """Event columns of one store in memory, per event name, rebuilt per data version.

    Only what queries read is built, and only once it is read again: the first read of
    an event name in a data version is answered by the caller's filtered Parquet scan
    (``frame`` returns None), so a one-shot process (a CLI call) never pays for a cache it
    will not reuse. The second read builds the event's block: one Parquet scan with
    ``event = name`` pushed down (event files are sorted by event name, so row-group
    statistics skip the rest), user ids coded once (``USER_CODE``), rows sorted by
    ``ts``; from then on a time range is a binary search and a zero-copy slice. A column
    first read later is added to the block the same way. With ``background`` (long-lived
    processes: the dashboard, the membership service) no read ever waits on a build: a
    read needing blocks or columns not built yet starts a daemon thread that builds them
    (coding and sorting outside the lock) and is answered from Parquet meanwhile. ``version``,
    ``scan``, ``names`` and ``total`` are the store's data version, events LazyFrame,
    event names and number of events (default: counted by ``scan``); the cache reads
    nothing else of the store.
    """

    def __init__(self, version: Callable[[], str], scan: Callable[[], pl.LazyFrame],
                 names: Callable[[], list[str]], *, background: bool = False,
                 total: Callable[[], int] | None = None):
        self._version = version
        self._scan = scan
        self._names = names
        self._total = total or (lambda: self._scan().select(pl.len()).collect().item())
        self.enabled = True
        self.background = background
        self._lock = threading.Lock()
        self._key: str | None = None
        self._blocks: dict[str, _Block] = {}
        self._asked: set[str] = set()  # event names read in this version
        self._filling: set[str] = set()  # event names a background thread is building
        self._users: tuple[tuple, pl.DataFrame | None] | None = None
        self.threads: list[threading.Thread] = []  # background builds (tests join them)

    def users(self, key: tuple, scan: pl.LazyFrame) -> pl.LazyFrame:
        """The users table in memory per version ``key`` of its files, from its second
        read on (the first is ``scan``; also ``scan`` if too big)."""
        with self._lock:
            cached = self._users
            if cached is None or cached[0] != key:
                self._users = (key, None)  # asked once: scan now, keep it next time
                if self.background:
                    self._start(self._fill_users, key, scan)
                return scan
            if cached[1] is None:
                if scan.select(pl.len()).collect().item() > max_cached_rows():
                    return scan
                cached = self._users = (key, scan.collect())
        return cached[1].lazy()

    def _fill_users(self, key: tuple, scan: pl.LazyFrame) -> None:
        if scan.select(pl.len()).collect().item() > max_cached_rows():
            return
        df = scan.collect()
        with self._lock:
            if self._users is not None and self._users[0] == key and self._users[1] is None:
                self._users = (key, df)

    def frame(self, columns: list[str], events: list[str] | None,
              since: dt.datetime | None, until: dt.datetime | None,
              windows: dict[str, dt.datetime | None] | None = None) -> pl.LazyFrame | None:
        """``columns`` of ``events`` (all if None) with ``since <= ts < until`` from memory
        (``windows``: each name's own ``since``), or None when the caller should scan
        Parquet instead (a first read, or a store too large to cache)."""
        blocks = self._read(columns, events)
        if blocks is None:
            return None
        parts = []
        for name, block in blocks:  # ok-loop: one slice per event
            a, b = 0, block.height
            lo = windows.get(name) if windows is not None else since
            if lo is not None:
                a = int(block["ts"].search_sorted(lo, side="left"))
            if until is not None:
                b = int(block["ts"].search_sorted(until, side="left"))
            if b > a:
                part = block.slice(a, b - a) if b - a < block.height else block
                if "event" in columns:  # one value per block: a literal, never materialised
                    part = part.with_columns(pl.lit(name, pl.Categorical()).alias("event"))
                parts.append(part)
        if not parts:
            return self._empty(columns).lazy()
        return pl.concat(parts, rechunk=False).lazy().select(columns)

    def _empty(self, columns: list[str]) -> pl.DataFrame:
        schema = self._scan().collect_schema()
        types = {c: (pl.Categorical() if c in ("event", USER_CODE) else schema[c])
                 for c in columns}
        return pl.DataFrame(schema=types)

    def _read(self, columns: list[str],
              events: list[str] | None) -> list[tuple[str, pl.DataFrame]] | None:
        key = self._version()
        with self._lock:
            if key != self._key:
                self._blocks, self._asked, self._filling, self._key = {}, set(), set(), key
                total = self._total()
                if total > max_cached_rows():
                    LOG.warning("segcore: %s events exceed SEGCORE_EVENT_CACHE_MAX_ROWS (%s): "
                                "answering from Parquet scans with filters pushed down, "
                                "not the in-memory cache", f"{total:,}", f"{max_cached_rows():,}")
                    self.enabled = False
                    return None
            names = list(events) if events is not None else self._names()
            todo = self._missing(names, columns)
            if todo:
                todo_names = {n for n, _ in todo}
                if self.background or not todo_names <= self._asked:
                    # a first read, or any read of a long-lived process while the blocks
                    # (or a column new to them) are built behind it: the caller scans
                    if self.background and not todo_names & self._filling:
                        self._filling |= todo_names
                        self._start(self._fill, key, todo, self._queries(todo))
                    self._asked |= todo_names
                    return None
                got = pl.collect_all(self._queries(todo))  # read again: build the blocks
                for (name, _), df in zip(todo, got, strict=True):  # ok-loop: one block per event
                    self._load(name, df)
            return [(name, self._frame(name, columns)) for name in names]  # ok-loop: per event

    def _missing(self, names: list[str], columns: list[str]) -> list[tuple[str, list[str]]]:
        """(event name, Parquet columns its block still lacks) for each of ``names``."""
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
        return todo

    def _queries(self, todo: list[tuple[str, list[str]]]) -> list[pl.LazyFrame]:
        """One filtered scan per event (run together by ``collect_all``)."""
        scan = self._scan()
        # user ids coded inside the scan: the strings of a whole event are never held
        return [scan.filter(pl.col("event") == n).select(
                    pl.col(c).cast(pl.Categorical) if c == "user_id" else pl.col(c) for c in cols)
                for n, cols in todo]

    def _start(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=self._quietly, args=(target, *args), daemon=True,
                                  name="segcore-event-cache")
        self.threads.append(thread)
        thread.start()

    @staticmethod
    def _quietly(target: Callable[..., None], *args: object) -> None:
        try:
            target(*args)
        except Exception:  # a failed background build only means reads keep scanning
            LOG.debug("segcore: background event-cache build failed", exc_info=True)

    def _fill(self, key: str, todo: list[tuple[str, list[str]]],
              queries: list[pl.LazyFrame]) -> None:
        """Build ``todo``'s blocks from ``queries`` (a daemon thread of a long-lived process)."""
        try:
            got: list[pl.DataFrame] | None = pl.collect_all(queries)
        except Exception:
            got = None  # reads keep scanning Parquet, and build on their next read
            LOG.debug("segcore: background event-cache build failed", exc_info=True)
        # coded and sorted outside the lock: reads go on (from Parquet) meanwhile
        built = []
        for (name, cols), df in zip(todo, got or [], strict=False):  # ok-loop: one per event
            with self._lock:
                block = self._blocks.get(name) if key == self._key else None
            if block is None or not any(c in block.cols for c in cols):
                built.append((name, block, self._prepare(df, block)))
        with self._lock:
            if key != self._key:
                return  # a new data version came meanwhile
            self._filling -= {n for n, _ in todo}
            for name, block, part in built:  # ok-loop: one per event
                self._insert(name, block, part)

    def _frame(self, name: str, columns: list[str]) -> pl.DataFrame:
        """The block of ``name`` as a frame of ``ts`` and ``columns`` but ``event`` (the
        caller adds it as a literal); ``user_id`` strings are derived on request."""
        block = self._blocks[name]
        wanted = [c for c in dict.fromkeys(["ts", *columns]) if c != "event"]
        if "user_id" in wanted and "user_id" not in block.cols:
            block.cols["user_id"] = block.cols[USER_CODE].cast(pl.String).alias("user_id")
        return pl.DataFrame([block.cols[c] for c in wanted])

    def _load(self, name: str, df: pl.DataFrame) -> None:
        """Keep the columns of ``df`` (one event's rows, scan order) in its block."""
        block = self._blocks.get(name)
        self._insert(name, block, self._prepare(df, block))

    @staticmethod
    def _prepare(df: pl.DataFrame, block: _Block | None) -> _Block | dict[str, pl.Series]:
        """``df``'s columns as a new block, or as columns in ``block``'s order; user ids
        are kept as ``USER_CODE`` codes (strings are derived from them on request)."""
        cols = {c: df[c] for c in df.columns if c != "user_id"}
        if "user_id" in df.columns:
            cols[USER_CODE] = df["user_id"].cast(pl.Categorical).alias(USER_CODE)
        if block is None:
            return _Block(cols)
        return {c: values.gather(block.perm) for c, values in cols.items()}

    def _insert(self, name: str, block: _Block | None,
                part: _Block | dict[str, pl.Series]) -> None:
        """Store what :meth:`_prepare` built (caller holds the lock); a part built for a
        block that has since been replaced is dropped (the next read builds it again)."""
        current = self._blocks.get(name)
        if isinstance(part, _Block):
            if current is None:
                self._blocks[name] = part
        elif current is block and block is not None:
            for c, values in part.items():  # ok-loop: one column each
                block.cols.setdefault(c, values)
