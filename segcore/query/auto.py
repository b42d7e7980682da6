"""The engine a query runs on when the user names none (the automatic choice).

A store whose events fit the in-memory event cache (``SEGCORE_EVENT_CACHE_MAX_ROWS``,
default 100M, :func:`segcore.store.cache.max_cached_rows`) runs every analytic on Polars.
Above that limit Polars answers from Parquet scans, and DuckDB is faster for the analytics
in :data:`ON_DUCKDB` (bench/results/engines-xlarge.md), so those run on DuckDB when it is
installed; the rest stay on Polars. The event count comes from the store's per-file
statistics (:meth:`segcore.store.events.EventStore.event_counts`), never a scan. An engine
the user names (``--engine polars``, ``engine="polars"``, ``SEGCORE_ENGINE``) is always
used as given. docs/engines.md (Automatic choice) holds the table.
"""

from __future__ import annotations

import importlib.util
import logging
import threading

from segcore.engine.choice import Engine
from segcore.store.cache import max_cached_rows
from segcore.store.events import EventStore

LOG = logging.getLogger(__name__)

AUTO = "auto"  # the engine text (and dashboard setting) that asks for this choice

# Analytics DuckDB answers faster than Polars' Parquet scans above the cache limit. Measured
# at 200M events on an idle machine (bench/results/engines-xlarge.md, Polars/DuckDB, warm
# best of 3, new process in brackets): lifecycle 1.21 (0.94), stickiness 1.14 (1.05),
# engagement 1.15 (1.07) and again 1.17 (1.02) (bench/results/engines-xlarge-engagement.md);
# Polars is faster on everything else there: members 0.62, reach 0.63, overlap 0.96, event
# report 0.68, retention 1.02 (0.96: even), trend 0.14, profile 0.39 and funnels 0.30.
# Engagement over time ("engagement_trend") is a trend: it stays on Polars.
ON_DUCKDB: frozenset[str] = frozenset({"engagement", "lifecycle", "stickiness"})

_said: set[str] = set()  # stores whose choice was announced in this process
_lock = threading.Lock()


def is_auto(engine: Engine | str | None) -> bool:
    """True when ``engine`` names no engine (None, empty or ``"auto"``)."""
    return engine is None or (isinstance(engine, str) and engine.strip().lower() in ("", AUTO))


def duckdb_installed() -> bool:
    """True when the ``duckdb`` package can be imported (it is not imported here)."""
    return importlib.util.find_spec("duckdb") is not None


def event_total(store: EventStore) -> int | None:
    """The number of events of the store's own event files, from their statistics; None
    for a connected events source (its size is not known without reading it)."""
    if store.source("events") is not None:
        return None
    counts = store.event_counts()
    return int(counts["count"].cast(int).sum()) if counts.height else 0


def out_of_core(store: EventStore) -> int | None:
    """The event count when it exceeds the cache limit and DuckDB is installed, else None."""
    total = event_total(store)
    if total is None or total <= max_cached_rows() or not duckdb_installed():
        return None
    return total


def choose_engine(store: EventStore, analytic: str, engine: Engine | str | None) -> Engine:
    """The engine ``analytic`` (a name of :data:`ON_DUCKDB` or any other) runs on: the one
    given, else DuckDB for :data:`ON_DUCKDB` on a store too large for the cache, else Polars."""
    if not is_auto(engine):
        return Engine.parse(engine)
    total = out_of_core(store)
    if total is None:
        return Engine()
    _announce(store, total)
    return Engine("duckdb") if analytic in ON_DUCKDB else Engine()


def _announce(store: EventStore, total: int) -> None:
    """Say once per process and store, on stderr (logging), which engines were chosen."""
    key = str(store.home)
    with _lock:
        if key in _said:
            return
        _said.add(key)
    LOG.warning("segcore: %s", describe_choice(total))


def describe_choice(total: int) -> str:
    """The sentence that names the automatic choice for a store of ``total`` events."""
    return (f"{total:,} events exceed SEGCORE_EVENT_CACHE_MAX_ROWS ({max_cached_rows():,}): "
            f"{', '.join(sorted(ON_DUCKDB))} run on DuckDB (faster out of core), the other "
            "analytics on Polars; --engine polars keeps Polars for all")


def describe(store: EventStore, engine: Engine | str | None) -> str:
    """What ``engine`` means on ``store``, for a caption: its name, or for the automatic
    choice ``auto: polars`` or ``auto: duckdb for ..., polars for the rest``."""
    if not is_auto(engine):
        return str(Engine.parse(engine))
    if out_of_core(store) is None:
        return f"{AUTO}: polars"
    return f"{AUTO}: duckdb for {', '.join(sorted(ON_DUCKDB))}; polars for the rest"


def reset_announcements() -> None:
    """Forget which stores were announced (tests)."""
    with _lock:
        _said.clear()

