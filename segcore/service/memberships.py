"""Saved segments' members, materialized, and the entered/exited log (docs/service.md).

A *snapshot* is the sorted member ids of one saved segment at one key: (segment id, data
version of the event and user files, catalog version, instant T). It is computed once by
the members runner (:func:`segcore.query.members_actors`, the same evaluation as
``segcore eval --segment``), written as ``<home>/memberships/<hash>.parquet`` and
registered in the service database; every later lookup at that key is a read.

"Now" is the service's clock rounded down to its *tick* (default one minute; ``--now``
pins it), so time-driven changes (a window sliding past an event, a day passing midnight)
are a new key: the first request after the tick (or the ingest refresh) materializes it.

The *log*: a snapshot of "now" becomes the segment's new head when its key differs from
the head's and T does not go back; the users who entered (in the new snapshot, not in the
head) and left are appended to ``changes`` in the same transaction, with increasing
``seq``. The sync feed reads ``seq`` ranges of that log, so a client that keeps its cursor
sees every change once, in order. A snapshot computed while the files or the catalog
changed under it is retried; one whose data version is no longer the store's when it
would be logged is kept as a cache entry but not logged (no flapping).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import hashlib
import math
import sqlite3
import threading
import time
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import polars as pl

from segcore.errors import CatalogError, NotFoundError, RuleError, StoreError, UsageError
from segcore.lang.dates import UTC, resolve_as_of
from segcore.query import MembersQuery, Target, members_actors
from segcore.service.state import State, now_text
from segcore.store.catalog import Segment
from segcore.store.events import EventStore
from segcore.store.files import write_parquet_atomic

DEFAULT_TICK_S = 60.0
FRAME_CACHE = 256  # snapshots kept in memory
KEEP_FILES = 8  # newest unlogged snapshot files kept per segment
RETRIES = 5


def iso(T: dt.datetime) -> str:
    return T.isoformat().replace("+00:00", "Z")


def catalog_signature(catalog: Path) -> tuple:
    """Sizes and modification times of the catalog and its WAL: changes with every write."""
    sig = []
    for path in (catalog, catalog.with_name(catalog.name + "-wal")):  # ok-loop: two files
        try:
            st = path.stat()
            sig.append((st.st_size, st.st_mtime_ns))
        except FileNotFoundError:
            sig.append(None)
    return tuple(sig)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """One materialized membership (``members``: sorted ``user_id`` Series)."""

    id: int
    segment_id: int
    segment: str
    data_version: str
    catalog_version: int
    as_of: dt.datetime
    members: pl.Series
    seq_end: int | None = None

    @property
    def size(self) -> int:
        return self.members.len()

    @cached_property
    def ids(self) -> frozenset[str]:
        """The members as a hash set, built once per snapshot: a user lookup is then a
        few set probes (a Polars call costs far more than one probe)."""
        return frozenset(self.members.to_list())


class Memberships:
    """Materialized memberships of the saved segments of ``store``.

    Parameters
    ----------
    store
        The store (one per process: its event cache serves the evaluations).
    tick
        Seconds "now" is rounded down to.
    now
        A fixed "now" (an as-of text), for demos and tests; None: the clock.
    """

    def __init__(self, store: EventStore, tick: float = DEFAULT_TICK_S,
                 now: str | None = None, clock: Callable[[], float] = time.time):
        if not tick or tick <= 0 or math.isnan(tick):
            raise UsageError("the tick must be a positive number of seconds")
        self.store = store
        self.state = State(store.home)
        self.tick = float(tick)
        self.fixed_now = None if now is None else resolve_as_of(now)
        self.clock = clock
        self._lock = threading.Lock()
        self._key_locks: dict[tuple, threading.Lock] = {}
        self._frames: collections.OrderedDict[int, pl.Series] = collections.OrderedDict()
        self._segments: tuple[int, list[Segment]] | None = None
        self._index: collections.OrderedDict[tuple, Snapshot] = collections.OrderedDict()
        self._catalog_version: tuple[tuple, int] | None = None

    @classmethod
    def from_settings(cls, store: EventStore) -> Memberships:
        """With the clock settings the last ``segcore serve`` of this store saved."""
        settings = State(store.home).settings()
        return cls(store, float(settings.get("tick") or DEFAULT_TICK_S), settings.get("now"))

    def save_settings(self) -> None:
        self.state.save_settings(self.tick, None if self.fixed_now is None
                                 else iso(self.fixed_now))

    # ------------------------------------------------------------------ instants, versions
    def now(self) -> dt.datetime:
        """The current instant of the service: the clock rounded down to the tick."""
        if self.fixed_now is not None:
            return self.fixed_now
        t = math.floor(self.clock() / self.tick) * self.tick
        return dt.datetime.fromtimestamp(t, UTC)

    def instant(self, as_of: str | None) -> dt.datetime:
        """``as_of`` as an instant (None: :meth:`now`)."""
        return self.now() if as_of is None else resolve_as_of(as_of)

    def versions(self) -> tuple[str, int]:
        """(data version of the files, catalog version), now. The catalog's counter is
        read again only when its files (the database and its WAL) changed."""
        sig = catalog_signature(self.store.catalog_path)
        cached = self._catalog_version
        if cached is None or cached[0] != sig:
            cached = self._catalog_version = (sig, self.store.catalog.data_version())
        return self.store.data_version(), cached[1]

    def segments(self, cv: int | None = None) -> list[Segment]:
        """The live saved segments (read once per catalog version)."""
        cv = self.versions()[1] if cv is None else cv
        cached = self._segments
        if cached is None or cached[0] != cv:
            cached = self._segments = (cv, self.store.catalog.list())
        return cached[1]

    def segment(self, name: str) -> Segment:
        return self.store.catalog.get(name)

    # ------------------------------------------------------------------ snapshots
    def snapshot(self, seg: Segment, T: dt.datetime, *, log: bool,
                 versions: tuple[str, int] | None = None) -> Snapshot:
        """The members of ``seg`` at ``T`` at the store's current versions (``versions``
        if the caller just read them; materialized on first use; with ``log``, also made
        the segment's head of the log)."""
        for attempt in range(RETRIES):  # ok-loop: retried only while an import lands
            dv, cv = versions if versions is not None and attempt == 0 else self.versions()
            key = (seg.id, dv, cv, iso(T))
            hit = self._index.get(key)  # the fast path: memory, no I/O
            if hit is not None and (not log or hit.seq_end is not None):
                return hit
            found = self._find(seg.id, dv, cv, T)
            if found is not None and (not log or found.seq_end is not None):
                return self._remember(key, found)
            with self._lock:
                lock = self._key_locks.setdefault(key, threading.Lock())
            with lock:
                found = self._find(seg.id, dv, cv, T)
                if found is None:
                    members = self._evaluate(seg, T, dv, cv)
                    if members is None:
                        continue
                    found = self._register(seg, dv, cv, T, members)
                if log and found.seq_end is None:
                    found, stale = self._log(found)
                    if stale:
                        continue  # the store moved on meanwhile
                with self._lock:
                    self._key_locks.pop(key, None)
                return self._remember(key, found)
        raise StoreError("the store kept changing while the segment was evaluated; try again")

    def _remember(self, key: tuple, snap: Snapshot) -> Snapshot:
        with self._lock:
            self._index[key] = snap
            self._index.move_to_end(key)
            while len(self._index) > FRAME_CACHE:
                self._index.popitem(last=False)
        return snap

    def _evaluate(self, seg: Segment, T: dt.datetime, dv: str, cv: int) -> pl.Series | None:
        store = self.store
        with store.pinned():
            if store.data_version() != dv:
                return None
            q = MembersQuery(Target(segment=seg.name), as_of=iso(T))
            members = members_actors(store, q)["user_id"]
            if store.data_version() != dv or store.catalog.data_version() != cv:
                return None  # a users file was replaced or the catalog edited meanwhile
        return members.sort().rechunk()

    def _file(self, seg_id: int, dv: str, cv: int, T: dt.datetime) -> str:
        digest = hashlib.sha1(f"{seg_id}|{dv}|{cv}|{iso(T)}".encode()).hexdigest()[:20]
        return f"s{seg_id}-{digest}.parquet"

    def _register(self, seg: Segment, dv: str, cv: int, T: dt.datetime,
                  members: pl.Series) -> Snapshot:
        name = self._file(seg.id, dv, cv, T)
        write_parquet_atomic(members.to_frame("user_id"), self.state.dir / name)
        with self.state.write() as con:
            con.execute(
                "INSERT OR IGNORE INTO snapshots (segment_id, segment, data_version, "
                "catalog_version, as_of, size, file, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (seg.id, seg.name, dv, cv, iso(T), members.len(), name, now_text()))
        found = self._find(seg.id, dv, cv, T, members)
        assert found is not None
        return found

    def _row_snapshot(self, row: sqlite3.Row, members: pl.Series | None = None) -> Snapshot | None:
        if members is None:
            members = self._load(row["id"], row["file"])
            if members is None:
                return None
        return Snapshot(row["id"], row["segment_id"], row["segment"], row["data_version"],
                        row["catalog_version"], resolve_as_of(row["as_of"]), members,
                        row["seq_end"])

    def _find(self, seg_id: int, dv: str, cv: int, T: dt.datetime,
              members: pl.Series | None = None) -> Snapshot | None:
        with self.state.connect() as con:
            row = con.execute(
                "SELECT * FROM snapshots WHERE segment_id = ? AND data_version = ? AND "
                "catalog_version = ? AND as_of = ?", (seg_id, dv, cv, iso(T))).fetchone()
            if row is None:
                return None
            snap = self._row_snapshot(row, members)
            if snap is None and row["seq_end"] is None:  # its file was pruned: compute again
                con.execute("DELETE FROM snapshots WHERE id = ? AND seq_end IS NULL",
                            (row["id"],))
            return snap

    def _load(self, snap_id: int, file: str) -> pl.Series | None:
        with self._lock:
            if snap_id in self._frames:
                self._frames.move_to_end(snap_id)
                return self._frames[snap_id]
        try:
            members = pl.read_parquet(self.state.dir / file)["user_id"]
        except FileNotFoundError:
            return None
        with self._lock:
            self._frames[snap_id] = members
            while len(self._frames) > FRAME_CACHE:
                self._frames.popitem(last=False)
        return members

    def head(self, seg_id: int) -> Snapshot | None:
        """The segment's newest logged snapshot."""
        with self.state.connect() as con:
            row = con.execute("SELECT * FROM snapshots WHERE segment_id = ? AND seq_end IS NOT "
                              "NULL ORDER BY seq_end DESC, id DESC LIMIT 1",
                              (seg_id,)).fetchone()
        return None if row is None else self._row_snapshot(row)

    def _log(self, snap: Snapshot) -> tuple[Snapshot, bool]:
        """Make ``snap`` the head of its segment's log (in one transaction); the snapshot
        and whether it was stale (the store's versions moved on: not logged). A snapshot
        older than the head stays out of the log too (time does not go back)."""
        with self.state.write() as con:
            row = con.execute("SELECT seq_end FROM snapshots WHERE id = ?", (snap.id,)).fetchone()
            if row["seq_end"] is not None:  # another process logged it
                return dataclasses.replace(snap, seq_end=row["seq_end"]), False
            if (snap.data_version, snap.catalog_version) != self.versions():
                return snap, True  # stale: a cache entry only
            head_row = con.execute("SELECT * FROM snapshots WHERE segment_id = ? AND seq_end IS "
                                   "NOT NULL ORDER BY seq_end DESC, id DESC LIMIT 1",
                                   (snap.segment_id,)).fetchone()
            head = None if head_row is None else self._row_snapshot(head_row)
            if head_row is not None and head is None:
                raise StoreError(f"the head snapshot file {head_row['file']} is missing")
            if head is not None and snap.as_of < head.as_of:
                return snap, False  # time does not go back in the log
            old = head.members if head is not None else pl.Series("user_id", [], pl.String)
            new_df, old_df = snap.members.to_frame("user_id"), old.to_frame("user_id")
            entered = new_df.join(old_df, on="user_id", how="anti")["user_id"]
            left = old_df.join(new_df, on="user_id", how="anti")["user_id"]
            con.executemany(
                "INSERT INTO changes (segment_id, snapshot_id, user_id, change) VALUES "
                f"({snap.segment_id}, {snap.id}, ?, ?)",
                zip(pl.concat([entered, left]).to_list(),
                    ["+"] * entered.len() + ["-"] * left.len(), strict=True))
            seq_end = con.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]
            con.execute("UPDATE snapshots SET seq_end = ? WHERE id = ?", (seq_end, snap.id))
            self._prune(con, snap.segment_id, snap.id)
        return dataclasses.replace(snap, seq_end=int(seq_end)), False

    def _prune(self, con: sqlite3.Connection, seg_id: int, head_id: int) -> None:
        """Remove the files of old snapshots (the head and the newest few stay)."""
        rows = con.execute("SELECT id, file, seq_end FROM snapshots WHERE segment_id = ? AND "
                           "id != ? AND file != '' ORDER BY id DESC LIMIT -1 OFFSET ?",
                           (seg_id, head_id, KEEP_FILES)).fetchall()
        for r in rows:  # ok-loop: a few old snapshots
            (self.state.dir / r["file"]).unlink(missing_ok=True)
            if r["seq_end"] is None:
                con.execute("DELETE FROM snapshots WHERE id = ?", (r["id"],))
            else:  # logged: the row stays (its seq_end answers since_version)
                con.execute("UPDATE snapshots SET file = '' WHERE id = ?", (r["id"],))

    def by_id(self, snap_id: int) -> Snapshot:
        """A snapshot by its id (for paging through one snapshot)."""
        with self.state.connect() as con:
            row = con.execute("SELECT * FROM snapshots WHERE id = ?", (snap_id,)).fetchone()
        snap = None if row is None or not row["file"] else self._row_snapshot(row)
        if snap is None:
            raise NotFoundError(f"snapshot {snap_id} is gone; start the listing again")
        return snap

    # ------------------------------------------------------------------ lookups
    def current(self, name: str, as_of: str | None = None) -> Snapshot:
        """The members of saved segment ``name`` at ``as_of`` (None: now, logged)."""
        return self.snapshot(self.segment(name), self.instant(as_of), log=as_of is None)

    def user_segments(self, user_ids: list[str], as_of: str | None = None
                      ) -> tuple[dict[str, list[str]], str, int, dt.datetime]:
        """``{user id: [segment names]}`` at ``as_of`` (None: now), the data and catalog
        versions and T.

        The segments are those of ``segcore user`` (:func:`segcore.query.user_segments`):
        every live saved segment, in the catalog's order; one that cannot be evaluated is
        left out."""
        T = self.instant(as_of)
        for _ in range(RETRIES):  # ok-loop: retried only while an import lands
            dv, cv = self.versions()
            snaps = []
            for seg in self.segments(cv):  # ok-loop: one read per saved segment
                try:
                    snaps.append(self.snapshot(seg, T, log=as_of is None, versions=(dv, cv)))
                except (RuleError, CatalogError):
                    continue
            if any((s.data_version, s.catalog_version) != (dv, cv) for s in snaps):
                continue
            out = {uid: [s.segment for s in snaps if uid in s.ids]  # ok-loop: set probes
                   for uid in user_ids}
            return out, dv, cv, T
        raise StoreError("the store kept changing while segments were read; try again")

    def refresh(self) -> dict[str, Any]:
        """Materialize and log every live saved segment now (the ingest command's hook)."""
        T = self.now()
        done, failed = [], {}
        for seg in self.segments():  # ok-loop: one snapshot per saved segment
            try:
                snap = self.snapshot(seg, T, log=True)
                done.append({"segment": seg.name, "members": snap.size})
            except (RuleError, CatalogError) as exc:
                failed[seg.name] = str(exc)
        return {"as_of": iso(T), "data_version": self.store.data_version(),
                "segments": done, "failed": failed}

    # ------------------------------------------------------------------ the sync feed
    def cursor_text(self, seq: int) -> str:
        return f"{self.state.log_id()}.{seq}"

    def parse_cursor(self, cursor: str) -> int:
        log_id, _, seq = cursor.rpartition(".")
        if not seq.isdigit() or not log_id:
            raise UsageError(f"bad cursor {cursor!r}: pass back the cursor of the last answer")
        if log_id != self.state.log_id():
            raise UsageError(f"the cursor {cursor!r} is from another log (the service state "
                             "was reset): sync again from the start, without a cursor")
        return int(seq)

    def version_cursor(self, seg: Segment, data_version: str) -> int:
        """The log position right after the segment's last head at ``data_version``."""
        with self.state.connect() as con:
            seq = con.execute("SELECT max(seq_end) FROM snapshots WHERE segment_id = ? AND "
                              "data_version = ? AND seq_end IS NOT NULL",
                              (seg.id, data_version)).fetchone()[0]
        if seq is None:
            raise NotFoundError(f"no logged membership of {seg.name!r} at data version "
                                f"{data_version!r}")
        return int(seq)

    def changes(self, name: str, after: int, limit: int) -> dict[str, Any]:
        """Who entered and who left segment ``name`` after log position ``after``: at most
        ``limit`` log rows, netted per user, up to the head made for now (or a newer
        head, logged by a process whose clock is ahead)."""
        now = self.current(name)
        head = now if now.seq_end is not None else self.head(now.segment_id)
        if head is None:
            raise StoreError(f"the log of {name!r} has no head yet; try again")
        if after > (head.seq_end or 0):
            raise UsageError(f"the cursor is ahead of the log of {name!r}: sync again from "
                             "the start")
        with self.state.connect() as con:
            rows = con.execute("SELECT seq, user_id, change FROM changes WHERE segment_id = ? "
                               "AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                               (head.segment_id, after, head.seq_end, limit + 1)).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        log = pl.DataFrame({"seq": [r[0] for r in rows], "user_id": [r[1] for r in rows],
                            "change": [r[2] for r in rows]},
                           schema={"seq": pl.Int64, "user_id": pl.String, "change": pl.String})
        net = log.group_by("user_id").agg(pl.col("change").first().alias("first"),
                                          pl.col("change").last().alias("last"))
        entered = net.filter((pl.col("first") == "+") & (pl.col("last") == "+"))["user_id"]
        left = net.filter((pl.col("first") == "-") & (pl.col("last") == "-"))["user_id"]
        end = int(rows[-1][0]) if more else int(head.seq_end or 0)
        return {"segment": head.segment, "data_version": head.data_version,
                "catalog_version": head.catalog_version, "as_of": iso(head.as_of),
                "members": head.size, "entered": entered.sort().to_list(),
                "left": left.sort().to_list(), "more": more, "cursor": self.cursor_text(end)}


def refresh_if_served(store: EventStore) -> dict[str, Any] | None:
    """After an import: materialize and log the saved segments at the new data version, if
    this store has a service state (``segcore serve`` ran on it); else nothing (None)."""
    if not State(store.home).exists():
        return None
    return Memberships.from_settings(store).refresh()
