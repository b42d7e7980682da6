"""The store: Parquet events and users under a home folder, plus the SQLite catalog.

Layout (see docs/architecture.md, "The store")::

    <home>/events/**/*.parquet   user_id, event, ts (UTC, us), event_id, properties...
    <home>/users/**/*.parquet    user_id + attribute columns
    <home>/catalog.sqlite        saved segments, static members, channels, funnels

``EventStore`` is the data layer every engine reads: the file layout, schemas and scans,
data versions and the catalog; the in-memory event-column cache is
:class:`segcore.store.cache.EventCache`. ``segcore.Store``
(:mod:`segcore.api`) adds the Python API on top of it (docs/architecture.md).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from segcore.lang.dates import DefaultAsOf, default_as_of
from segcore.store import stats
from segcore.store.cache import USER_CODE, USER_KEY, EventCache
from segcore.store.files import TMP_PREFIX
from segcore.store.parquet_schema import union_schema
from segcore.store.sources import (
    Source,
    read_sources,
    scan_source,
    source_schema,
    source_version,
    spark_event_counts,
)

if TYPE_CHECKING:  # the catalog (sqlite3) is imported when a store first opens it
    from segcore.store.catalog import Catalog

REQUIRED_EVENT_COLUMNS: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "event": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
}
EVENT_ID = "event_id"

# Event files are sorted by event name, then time, in small row groups: Parquet statistics
# then let every engine skip the row groups of events a query does not read (behavioural
# rules each read one or a few event names) and, within an event, those outside a query's
# time window ("in the last 7 days" reads about 7/180 of a 180-day event's row groups).
EVENT_SORT = ("event", "ts", "user_id")
EVENT_ROW_GROUP = 100_000


def write_events_file(df: pl.DataFrame, target: Path, *,
                      left: str = "nothing was written") -> None:
    """Write one events Parquet file atomically in the store's layout (see EVENT_SORT)."""
    from segcore.store.files import write_parquet_atomic

    write_parquet_atomic(df.sort(list(EVENT_SORT), maintain_order=True), target,
                         row_group_size=EVENT_ROW_GROUP, left=left)


# per thread: home -> (event files, user files) pinned by ``Store.pinned()``
_PINNED = threading.local()


def default_home() -> Path:
    """``SEGCORE_HOME`` if set, else ``./data``."""
    return Path(os.environ.get("SEGCORE_HOME") or "data")


def _parquet_files(folder: Path) -> list[Path]:
    if not folder.exists():
        return []
    return sorted(
        p
        for p in folder.rglob("*.parquet")
        if not any(part.startswith((TMP_PREFIX, ".")) for part in p.relative_to(folder).parts)
    )


class EventStore:
    """The data of a store rooted at ``home`` (default: ``SEGCORE_HOME`` or ``./data``).

    ``memo`` holds what other modules derive from this store's data (the rule schema,
    parsed rules), keyed so that a new data version misses. ``background_cache``: a
    long-lived process (the dashboard, the service) builds the event cache in a daemon
    thread from the first read on, while that read is answered from Parquet.
    """

    def __init__(self, home: str | os.PathLike[str] | None = None, *,
                 cache_events: bool | None = None, background_cache: bool = False):
        self.home = Path(home) if home is not None else default_home()
        if cache_events is None:
            cache_events = os.environ.get("SEGCORE_EVENT_CACHE", "1") not in ("0", "false", "no")
        self.cache_events = cache_events
        self.cache = EventCache(self.data_version, lambda: self.scan_events(), self.event_names,
                                background=background_cache, total=self.event_total)
        self.memo: dict[Any, Any] = {}
        # frames events_frame served from the cache (by id; see ``in_memory``)
        self._served: weakref.WeakValueDictionary[int, pl.LazyFrame] = \
            weakref.WeakValueDictionary()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.home)!r})"

    # ------------------------------------------------------------------ layout
    @property
    def events_dir(self) -> Path:
        return self.home / "events"

    @property
    def users_dir(self) -> Path:
        return self.home / "users"

    @property
    def catalog_path(self) -> Path:
        return self.home / "catalog.sqlite"

    def event_files(self) -> list[Path]:
        """The complete (non-temporary) event Parquet files."""
        pin = getattr(_PINNED, "files", {}).get(str(self.home))
        return list(pin[0]) if pin else _parquet_files(self.events_dir)

    def user_files(self) -> list[Path]:
        """The complete (non-temporary) user Parquet files."""
        pin = getattr(_PINNED, "files", {}).get(str(self.home))
        return list(pin[1]) if pin else _parquet_files(self.users_dir)

    @contextlib.contextmanager
    def pinned(self) -> Iterator[None]:
        """Within this block (in this thread) every scan sees the files present at its
        start, so one evaluation never mixes the store before and after an import."""
        files = _PINNED.__dict__.setdefault("files", {})
        key = str(self.home)
        if key in files:  # nested: the outer snapshot holds
            yield
            return
        files[key] = (_parquet_files(self.events_dir), _parquet_files(self.users_dir))
        try:
            yield
        finally:
            del files[key]

    def is_empty(self) -> bool:
        """True when the store has neither events nor users."""
        return not self.event_files() and not self.user_files() and not self.sources()

    # ------------------------------------------------------------------ connected sources
    def sources(self) -> dict[str, Source]:
        """The connected sources of ``<home>/sources.toml`` (segcore/store/sources.py)."""
        path = self.home / "sources.toml"
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):  # no file, or no store folder
            return {}
        key = ("sources", st.st_size, st.st_mtime_ns)
        if key not in self.memo:
            self.memo[key] = read_sources(self.home)
        return self.memo[key]

    def source(self, kind: str) -> Source | None:
        """The connected source of ``events`` or ``users``, or None (the store's files)."""
        return self.sources().get(kind)

    def _source_frame(self, kind: str) -> pl.LazyFrame | None:
        """The connected source of ``kind`` in the store's columns, one plan per version
        of its files (a DuckDB table is read once per version)."""
        src = self.source(kind)
        if src is None:
            return None
        key = ("source", kind, source_version(self.home, src))
        if key not in self.memo:
            lf = scan_source(self.home, src)
            self.memo[key] = lf.collect().lazy() if src.duckdb is not None else lf
        return self.memo[key]

    def _source_scan(self, kind: str) -> pl.LazyFrame | None:
        lf = self._source_frame(kind)
        if lf is None:
            return None
        schema = self.events_schema() if kind == "events" else self.users_schema()
        have = lf.collect_schema()
        return lf.select([pl.col(c) if c in have else pl.lit(None, dtype=t).alias(c)
                          for c, t in schema.items()])

    def _source_schema(self, kind: str) -> dict[str, pl.DataType] | None:
        src = self.source(kind)
        if src is not None and src.spark_table is not None:  # its columns, from Spark
            key = ("spark-schema", kind, src.to_toml())
            if key not in self.memo:
                self.memo[key] = dict(source_schema(self.home, src))
            return dict(self.memo[key])
        lf = self._source_frame(kind)
        return None if lf is None else dict(lf.collect_schema())

    # ------------------------------------------------------------------ schema
    def _files_key(self, files: list[Path]) -> tuple:
        out = []
        for f in files:
            try:
                st = f.stat()
            except FileNotFoundError:
                continue
            out.append((str(f), st.st_size, st.st_mtime_ns))
        return tuple(out)

    def events_schema(self) -> dict[str, pl.DataType]:
        """Column name -> dtype over all event files (the required columns first)."""
        files = self.event_files()
        key = self._files_key(files)
        cache = self.memo
        connected = self._source_schema("events")
        if connected is not None:
            key = ("source", *connected.items())
        if ("events", key) not in cache:
            found = connected if connected is not None else union_schema(files)
            schema = dict(REQUIRED_EVENT_COLUMNS)
            schema[EVENT_ID] = pl.String()
            for name, dtype in found.items():
                if name not in schema:
                    schema[name] = dtype
            cache[("events", key)] = schema
        return dict(cache[("events", key)])

    def users_schema(self) -> dict[str, pl.DataType]:
        """Column name -> dtype of the users table (``user_id`` first)."""
        files = self.user_files()
        key = self._files_key(files)
        cache = self.memo
        connected = self._source_schema("users")
        if connected is not None:
            key = ("source", *connected.items())
        if ("users", key) not in cache:
            found = connected if connected is not None else union_schema(files)
            schema: dict[str, pl.DataType] = {"user_id": pl.String()}
            schema.update({k: v for k, v in found.items() if k != "user_id"})
            cache[("users", key)] = schema
        return dict(cache[("users", key)])

    # ------------------------------------------------------------------ scans
    def scan_events(self) -> pl.LazyFrame:
        """All events as one LazyFrame with the unified schema (empty frame if none)."""
        connected = self._source_scan("events")
        if connected is not None:
            return connected
        schema = self.events_schema()
        files = self.event_files()
        if not files:
            return pl.LazyFrame(schema=schema)
        return pl.scan_parquet(
            files, schema=schema, missing_columns="insert", extra_columns="ignore", glob=False
        )

    def scan_users(self) -> pl.LazyFrame:
        """The users table as a LazyFrame (empty frame with ``user_id`` if none).

        With the event cache on, a long-lived store also keeps the users table in
        memory per version of its files (it is small next to the events): attribute
        rules then filter memory, not Parquet.
        """
        connected = self._source_scan("users")
        if connected is not None:
            return connected
        schema = self.users_schema()
        files = self.user_files()
        if not files:
            return pl.LazyFrame(schema=schema)
        scan = pl.scan_parquet(
            files, schema=schema, missing_columns="insert", extra_columns="ignore", glob=False
        )
        if not self.cache_events:
            return scan
        return self.cache.users(self._files_key(files), scan)

    def events_frame(self, columns: list[str],
                     events: Iterable[str] | Mapping[str, dt.datetime | None] | None = None,
                     since: dt.datetime | None = None,
                     until: dt.datetime | None = None) -> pl.LazyFrame:
        """The events' ``columns`` (optionally only ``events`` with ``since <= ts < until``)
        for evaluation: from the event-column cache (:mod:`segcore.store.cache`), where
        ``event`` is Categorical, or else a filtered Parquet scan. ``USER_CODE`` may be
        asked for: ``user_id`` as a Categorical; ``USER_KEY``: the cheapest user key to
        group or join by (``USER_CODE`` from the cache, the ``user_id`` strings from
        Parquet, where coding them would cost more than it saves). ``events`` may map each
        name to its own earliest instant (None: unbounded; ``since`` is then unused): a
        Parquet read is then one scan per name with its own window, so the reader's
        statistics and pre-filtered decode see one simple ``event = name`` and ``ts``
        range each. The cache is off with ``Store(cache_events=False)`` or
        ``SEGCORE_EVENT_CACHE=0``, and for stores of more than
        ``SEGCORE_EVENT_CACHE_MAX_ROWS`` events (default 100M).
        """
        columns = list(dict.fromkeys(columns))
        windows = dict(events) if isinstance(events, Mapping) else None
        if windows is not None:
            since = None if any(s is None for s in windows.values()) else min(
                windows.values(), default=None)  # type: ignore[type-var]
        names = sorted(set(events)) if events is not None else None
        if self.cache_events and self.cache.enabled:
            asked = [USER_CODE if c == USER_KEY else c for c in columns]
            frame = self.cache.frame(list(dict.fromkeys(asked)), names, since, until, windows)
            if frame is not None:
                if USER_KEY in columns and USER_CODE not in columns:
                    frame = frame.rename({USER_CODE: USER_KEY})
                elif USER_KEY in columns:
                    frame = frame.with_columns(pl.col(USER_CODE).alias(USER_KEY)).select(columns)
                self._served[id(frame)] = frame
                return frame
        if windows is not None and names:
            return pl.concat([self._events_scan(columns, [n], windows[n], until)
                              for n in names])  # ok-loop: one scan per event name
        return self._events_scan(columns, names, since, until)

    def in_memory(self, frame: pl.LazyFrame) -> bool:
        """Whether ``frame`` (as :meth:`events_frame` returned it) is a slice of the
        in-memory cache rather than a Parquet scan."""
        return self._served.get(id(frame)) is frame

    def _events_scan(self, columns: list[str], names: list[str] | None,
                     since: dt.datetime | None, until: dt.datetime | None) -> pl.LazyFrame:
        """``events_frame`` from Parquet: predicates in forms the reader pushes down."""
        lf = self.scan_events()
        if USER_CODE in columns:
            lf = lf.with_columns(pl.col("user_id").cast(pl.Categorical).alias(USER_CODE))
        if USER_KEY in columns:
            lf = lf.with_columns(pl.col("user_id").alias(USER_KEY))
        conds = []
        if names is not None:
            conds.append(pl.col("event") == names[0] if len(names) == 1
                         else pl.col("event").is_in(names))
        if since is not None:
            conds.append(pl.col("ts") >= pl.lit(since, dtype=pl.Datetime("us", "UTC")))
        if until is not None:
            conds.append(pl.col("ts") < pl.lit(until, dtype=pl.Datetime("us", "UTC")))
        return (lf.filter(pl.all_horizontal(conds)) if conds else lf).select(columns)

    def event_total(self) -> int:
        """The number of events: from :meth:`event_counts` when this process already has
        them (a rule's event names are checked against them), else counted from the
        files' metadata."""
        if ("event_counts", self.data_version()) in self.memo:
            return int(self.event_counts()["count"].sum())
        return int(self.scan_events().select(pl.len()).collect().item())

    def event_names(self) -> list[str]:
        """Distinct event names, sorted (cached per store version)."""
        return self.event_counts()["event"].to_list()

    def last_event_time(self) -> dt.datetime | None:
        """The latest event's time (None: no events; cached per version)."""
        key = ("last_event", self.data_version())
        cache = self.memo
        if key not in cache:
            entries = self._file_stats()
            if entries is not None:  # the store's own files: their statistics, no scan
                cache[key] = stats.time_range(entries)[1]
            else:
                cache[key] = self.scan_events().select(pl.col("ts").max()).collect().item()
        return cache[key]

    def default_as_of(self, now: dt.datetime | None = None) -> DefaultAsOf:
        """The instant the CLI and the dashboard use when none is given, in the current
        report zone (:data:`segcore.lang.dates.DEFAULT_AS_OF_RULE`)."""
        return default_as_of(self.last_event_time(), now)

    def event_counts(self) -> pl.DataFrame:
        """Event name and number of events, most frequent first (cached per version; for
        the store's own files, from per-file statistics kept beside them, see
        :mod:`segcore.store.stats`, so a new process does not scan every event)."""
        key = ("event_counts", self.data_version())
        cache = self.memo
        src = self.source("events")
        if key not in cache and src is not None and src.spark_table is not None:
            cache[key] = spark_event_counts(src).sort(["count", "event"],
                                                      descending=[True, False])
        if key not in cache:
            entries = self._file_stats()
            if entries is not None:
                cache[key] = stats.event_counts(entries)
            else:
                cache[key] = (
                    self.scan_events()
                    .group_by("event")
                    .agg(pl.len().alias("count"))
                    .sort(["count", "event"], descending=[True, False])
                    .collect()
                )
        return cache[key]

    def _file_stats(self) -> dict[str, dict[str, Any]] | None:
        """Per-file statistics of the event files (None for a connected events source)."""
        if self.source("events") is not None:
            return None
        return stats.EventStats(self.home, self.events_dir).files(self.event_files())

    def _users_with_events(self) -> int:
        """Distinct users over all events, once per data version (memo and stats file)."""
        key = ("users_with_events", self.data_version())
        if key not in self.memo:
            self.memo[key] = stats.EventStats(self.home, self.events_dir).per_version(
                key[1], "users_with_events",
                lambda: int(self.scan_events().select(pl.col("user_id").n_unique()).collect().item()))
        return self.memo[key]

    # ------------------------------------------------------------------ versions
    def data_version(self) -> str:
        """A short hash that changes whenever an event or user file changes."""
        key = self._files_key(self.event_files()) + self._files_key(self.user_files())
        key += tuple(source_version(self.home, s) for s in self.sources().values())
        return hashlib.sha1(repr(key).encode()).hexdigest()[:16]

    def version(self) -> str:
        """A hash of the data and the catalog: the dashboard's cache key."""
        cat = self.catalog_path
        extra = ""
        if cat.exists():
            st = cat.stat()
            extra = f"{st.st_size}:{st.st_mtime_ns}"
            wal = cat.with_name(cat.name + "-wal")
            if wal.exists():
                st = wal.stat()
                extra += f":{st.st_size}:{st.st_mtime_ns}"
        return hashlib.sha1((self.data_version() + extra).encode()).hexdigest()[:16]

    # ------------------------------------------------------------------ catalog
    @cached_property
    def catalog(self) -> Catalog:
        """The SQLite catalog of saved segments, channels and funnels."""
        from segcore.store.catalog import Catalog

        return Catalog(self.catalog_path)

    # ------------------------------------------------------------------ info
    def info(self) -> dict[str, Any]:
        """Summary of the store: sizes, date range, event names, columns.

        Event counts and the date range come from per-file statistics, and the number of
        distinct users with events is computed once per data version
        (:mod:`segcore.store.stats`); a connected events source is scanned.
        """
        entries = self._file_stats()
        if entries is None:
            ev = self.scan_events()
            stats_row = ev.select(
                pl.len().alias("events"),
                pl.col("ts").min().alias("first"),
                pl.col("ts").max().alias("last"),
                pl.col("user_id").n_unique().alias("event_users"),
            ).collect().row(0, named=True)
        else:
            first, last = stats.time_range(entries)
            stats_row = {"events": int(self.event_counts()["count"].sum()), "first": first,
                         "last": last, "event_users": self._users_with_events()}
        users = self.scan_users().select(pl.len()).collect().item()

        def iso(x: dt.datetime | None) -> str | None:
            return x.isoformat().replace("+00:00", "Z") if x is not None else None

        return {
            "home": str(self.home),
            "users": int(users),
            "events": int(stats_row["events"]),
            "users_with_events": int(stats_row["event_users"]),
            "first_event": iso(stats_row["first"]),
            "last_event": iso(stats_row["last"]),
            "event_names": [
                {"event": e, "count": int(c)} for e, c in self.event_counts().iter_rows()  # ok-loop: one row per event name
            ],
            "event_columns": {k: str(v) for k, v in self.events_schema().items()},
            "user_columns": {k: str(v) for k, v in self.users_schema().items()},
            "event_files": len(self.event_files()),
            "user_files": len(self.user_files()),
        }
