"""Writing validated rows into the store, atomically.

- events: one new file ``events/part-<UTC timestamp>-<short uuid>.parquet`` per import,
  sorted by ``event, ts, user_id`` (``segcore.store.events.EVENT_SORT``); events whose
  ``event_id`` is already stored or repeats within the import are skipped (rows without
  ``event_id`` are never deduplicated).
- users: the whole table is rewritten as ``users/users.parquet`` (``os.replace`` of a
  complete temporary file), then any other, older user files are removed. A killed
  import leaves either the old or the new complete table.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from segcore.errors import StoreError
from segcore.store.events import (
    EVENT_ID,
    REQUIRED_EVENT_COLUMNS,
    EventStore,
    write_events_file,
)
from segcore.store.files import clean_stale_temp, write_parquet_atomic

USERS_FILE = "users.parquet"
UNCHANGED = "the store is unchanged"  # how a failed write ends its error line


@contextlib.contextmanager
def store_lock(home: Path) -> Iterator[None]:
    """Serialise writers of one store (two imports at once would race on dedup/upsert).

    An exclusive ``flock`` on the home folder itself where the OS has it (no lock file:
    a refused or failed import leaves the home exactly as it was); readers never take it.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks, writers are not serialised
        yield
        return
    try:
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(home, os.O_RDONLY)  # closed in the finally below
    except OSError as exc:
        raise StoreError(f"cannot write to the store {home}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def prepare_dir(folder: Path) -> None:
    """Create ``folder`` (refusing a read-only store) and clear stale temporary files."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {folder}: {exc.strerror or exc}") from None
    if not os.access(folder, os.W_OK):
        raise StoreError(f"the store is read-only: cannot write to {folder}")
    clean_stale_temp(folder)


def dedup_events(store: EventStore, df: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Drop events whose ``event_id`` repeats in ``df`` or is already stored."""
    if df.select(pl.col(EVENT_ID).is_not_null().any()).item() is not True:
        return df, 0
    before = df.height
    no_id = pl.col(EVENT_ID).is_null()
    df = df.filter(no_id | pl.col(EVENT_ID).is_first_distinct())
    if store.event_files() and EVENT_ID in store.events_schema():
        stored = (
            store.scan_events()
            .select(pl.col(EVENT_ID).cast(pl.String))
            .filter(pl.col(EVENT_ID).is_not_null())
            .unique()
        )
        with_id = df.lazy().filter(~no_id).join(stored, on=EVENT_ID, how="anti")
        df = pl.concat([df.lazy().filter(no_id), with_id]).collect()
    return df, before - df.height


def event_file_name() -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return f"part-{stamp}-{uuid.uuid4().hex[:8]}.parquet"


def write_events(store: EventStore, df: pl.DataFrame) -> Path:
    """Write ``df`` (already in the events contract) as one new file; its path."""
    first = [*REQUIRED_EVENT_COLUMNS, EVENT_ID]
    df = df.select(*first, *[c for c in df.columns if c not in first])
    target = store.events_dir / event_file_name()
    write_events_file(df, target, left=UNCHANGED)
    return target


def merge_users(store: EventStore, incoming: pl.DataFrame) -> tuple[pl.DataFrame, int, int]:
    """Upsert ``incoming`` into the stored users: the new table, inserted and updated counts.

    Within the import, the last non-NULL value per user and column wins; NULL (an empty
    cell, an absent trait) never erases a stored value.
    """
    cols = [c for c in incoming.columns if c != "user_id"]
    incoming = incoming.group_by("user_id", maintain_order=True).agg(
        [pl.col(c).drop_nulls().last() for c in cols]
    )
    current = store.scan_users().collect() if store.user_files() else None
    if current is None:
        return incoming, incoming.height, 0
    existing = current.select("user_id")
    inserted = incoming.join(existing, on="user_id", how="anti").height
    updated = incoming.height - inserted
    new = "\x00new"  # no column name of a file can end with it
    merged = current.join(incoming, on="user_id", how="full", coalesce=True, suffix=new)
    fixes = [
        pl.coalesce(pl.col(f"{c}{new}"), pl.col(c)).alias(c) for c in cols if c in current.columns
    ]
    merged = merged.with_columns(fixes).drop([f"{c}{new}" for c in cols if c in current.columns])
    order = current.columns + [c for c in cols if c not in current.columns]
    return merged.select(order), inserted, updated


def write_users(store: EventStore, users: pl.DataFrame) -> Path:
    """Replace the users table with ``users`` (sorted by ``user_id``); its path."""
    target = store.users_dir / USERS_FILE
    old = [p for p in store.user_files() if p != target]
    write_parquet_atomic(users.sort("user_id"), target, left=UNCHANGED)
    for p in old:  # ok-loop: a few files
        try:
            p.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StoreError(
                f"wrote {target} but could not remove the old users file {p}: "
                f"{exc.strerror or exc}; remove it by hand"
            ) from None
    return target
