"""Deterministic demo data (docs/architecture.md, "Sample data"): a B2C shop with a SaaS side.

``generate`` writes ``<home>/users/`` and ``<home>/events/`` as Parquet. The same
arguments give the same files, bit for bit. Users are generated in chunks so that
200k+ users and tens of millions of events fit in memory; every chunk becomes one
event file.

Examples
--------
>>> from segcore.sample import generate
>>> generate("data", users=1000, days=120, end="2026-06-30", seed=7)  # doctest: +SKIP
{'users': 1000, 'events': ..., 'seconds': ..., ...}
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from segcore.errors import StoreError, UsageError
from segcore.lang.dates import parse_date
from segcore.sample.events import EVENT_COLUMNS, generate_chunk
from segcore.sample.limits import check_size
from segcore.sample.users import DAY_US, UserPlan, Window, build_users, plan_users, user_ids
from segcore.store import stats
from segcore.store.events import write_events_file
from segcore.store.files import (
    clean_stale_temp,
    new_build_dir,
    replace_dir_atomic,
    write_parquet_atomic,
)

__all__ = ["generate", "EVENT_COLUMNS", "CHUNK_USERS"]

CHUNK_USERS = 10_000
_EPOCH = dt.date(1970, 1, 1)


def _window(end: str | dt.date | None, days: int) -> Window:
    end_date = (
        dt.datetime.now(dt.timezone.utc).date() if end is None else parse_date(end, "end date")
    )
    end_days = (end_date - _EPOCH).days
    return Window(
        start=(end_days - days + 1) * DAY_US, stop=(end_days + 1) * DAY_US, end_date_days=end_days
    )


def _slice(p: UserPlan, lo: int, hi: int) -> UserPlan:
    return UserPlan(**{k: v[lo:hi] for k, v in vars(p).items()})


def generate(
    home: str | Path,
    users: int = 10_000,
    days: int = 180,
    end: str | dt.date | None = None,
    seed: int = 42,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, Any]:
    """Write a complete demo store under ``home``, replacing its events and users.

    Parameters
    ----------
    home
        The store folder (created if missing).
    users, days
        Number of users; number of days of events, ending with ``end`` (included).
    end
        Last day of data (``YYYY-MM-DD`` or a date); default today (UTC).
    seed
        Seed of the random generator: same arguments, same files.
    progress
        Called with (fraction done, message) after each chunk.

    Returns
    -------
    dict
        ``users``, ``events``, ``event_files``, ``first_day``, ``last_day``, ``seconds``,
        ``events_per_second``.
    """
    check_size(users, days, CHUNK_USERS)
    if seed < 0:
        raise UsageError(f"--seed must be 0 or more, got {seed}")
    t0 = time.perf_counter()
    w = _window(end, days)
    home = Path(home)
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the store folder {home}: {exc.strerror or exc}") from None
    clean_stale_temp(home)
    rng_users = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    plan, codes = plan_users(rng_users, users, w)
    ids = user_ids(users)

    events_build = new_build_dir(home, "events")
    users_build = new_build_dir(home, "users")
    try:
        total_cents = np.zeros(users, dtype=np.int64)
        summaries: dict[str, dict[str, Any]] = {}  # file name -> its event statistics
        n_events = 0
        n_chunks = (users + CHUNK_USERS - 1) // CHUNK_USERS
        # write chunk c in a background thread while chunk c+1 is generated
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending: Future | None = None
            for c in range(n_chunks):  # ok-loop: one iteration per chunk of users
                lo, hi = c * CHUNK_USERS, min(users, (c + 1) * CHUNK_USERS)
                rng = np.random.default_rng(np.random.SeedSequence([seed, 1, c]))
                df, cents = generate_chunk(rng, _slice(plan, lo, hi), w, ids[lo:hi], n_events)
                total_cents[lo:hi] = cents
                n_events += df.height
                summaries[f"part-{c:05d}.parquet"] = stats.summarize(df)
                if pending is not None:
                    pending.result()
                pending = pool.submit(
                    write_events_file, df, events_build / f"part-{c:05d}.parquet"
                )
                del df
                if progress is not None:
                    progress((c + 1) / (n_chunks + 1), f"{n_events:,} events")
            udf = build_users(rng_users, plan, codes, w, total_cents)
            if pending is not None:
                pending.result()
        write_parquet_atomic(udf, users_build / "users.parquet")
        replace_dir_atomic(events_build, home / "events")
        replace_dir_atomic(users_build, home / "users")
        # the statistics a first query reads (as ingest keeps them): no scan of every event
        stats.EventStats(home, home / "events").add(
            {home / "events" / name: v for name, v in summaries.items()})
    finally:
        clean_stale_temp(home)
    if progress is not None:
        progress(1.0, f"{n_events:,} events")
    seconds = time.perf_counter() - t0
    first_day = _EPOCH + dt.timedelta(days=w.start // DAY_US)
    last_day = _EPOCH + dt.timedelta(days=w.end_date_days)
    return {
        "home": str(home),
        "users": users,
        "events": n_events,
        "event_files": n_chunks,
        "first_day": first_day.isoformat(),
        "last_day": last_day.isoformat(),
        "seed": seed,
        "seconds": round(seconds, 3),
        "events_per_second": round(n_events / seconds) if seconds > 0 else None,
    }
