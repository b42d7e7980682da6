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
import os
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
LOGGED_CHECK_S = 0.25  # how often requests look for a view another process logged
REFRESH_WAIT_S = 900.0  # longest wait for an import's refresh before evaluating anyway


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (on this computer)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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


@dataclasses.dataclass(frozen=True)
class View:
    """Every live saved segment's snapshot at one (data version, catalog version, T), in
    the catalog's order (segments that cannot be evaluated left out)."""

    data_version: str
    catalog_version: int
    as_of: dt.datetime
    snapshots: tuple[Snapshot, ...]

    @property
    def key(self) -> tuple[str, int, dt.datetime]:
        return self.data_version, self.catalog_version, self.as_of


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
    background
        When "now" moves to new versions or a new tick, keep answering from the last
        complete view while a thread materializes the new one (the server's mode); off,
        the request that sees them materializes them.
    """

    def __init__(self, store: EventStore, tick: float = DEFAULT_TICK_S,
                 now: str | None = None, clock: Callable[[], float] = time.time,
                 background: bool = False):
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
        self.background = background
        self._published: View | None = None
        self._publishing: tuple | None = None
        self._checking = threading.Lock()
        self._checked: tuple[tuple | None, float] = (None, -math.inf)

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
        return self.store.data_version(), self.catalog_version()

    def catalog_version(self) -> int:
        """The catalog's version counter, read again only when its files changed."""
        sig = catalog_signature(self.store.catalog_path)
        cached = self._catalog_version
        if cached is None or cached[0] != sig:
            cached = self._catalog_version = (sig, self.store.catalog.data_version())
        return cached[1]

    def segments(self, cv: int | None = None) -> list[Segment]:
        """The live saved segments (read once per catalog version)."""
        cv = self.catalog_version() if cv is None else cv
        cached = self._segments
        if cached is None or cached[0] != cv:
            cached = self._segments = (cv, self.store.catalog.list())
        return cached[1]

    def segment(self, name: str) -> Segment:
        """The live saved segment ``name``: from the segments read at this catalog version
        when spelled as saved, else the catalog's lookup (any case; its errors)."""
        if isinstance(name, str):
            for seg in self.segments():  # ok-loop: a few saved segments
                if seg.name == name.strip():
                    return seg
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
    def publish(self, dv: str, cv: int, T: dt.datetime) -> View | None:
        """Materialize and log every live saved segment at (dv, cv, T) and make that the
        view "now" answers read; None if the versions moved on meanwhile."""
        snaps = []
        for seg in self.segments(cv):  # ok-loop: one snapshot per saved segment
            try:
                snaps.append(self.snapshot(seg, T, log=True, versions=(dv, cv)))
            except (RuleError, CatalogError):
                continue
        if any((x.data_version, x.catalog_version) != (dv, cv) for x in snaps):
            return None
        return self._make_current(View(dv, cv, T, tuple(snaps)))

    def _make_current(self, view: View) -> View:
        """Make ``view`` the one "now" answers read, unless it is already behind the
        store (a slow thread never puts an older view back over a newer one)."""
        with self._lock:
            old = self._published
            if (old is None or old.key != view.key) and (
                    old is None or view.key == (*self.versions(), self.now())):
                self._published = view
        return view

    def logged_view(self, dv: str, cv: int, T: dt.datetime) -> View | None:
        """The view at (dv, cv, T) if every live saved segment's snapshot there is already
        logged (by ``segcore ingest``'s refresh or another server), else None. Reads only:
        no evaluation, no write, no lock another thread may hold for long."""
        snaps = []
        for seg in self.segments(cv):  # ok-loop: one read per saved segment
            key = (seg.id, dv, cv, iso(T))
            snap = self._index.get(key)
            if snap is None or snap.seq_end is None:
                snap = self._find(seg.id, dv, cv, T)
                if snap is None or snap.seq_end is None:
                    return None
                self._remember(key, snap)
            snaps.append(snap)
        return self._make_current(View(dv, cv, T, tuple(snaps)))

    def _try_logged(self, key: tuple[str, int, dt.datetime]) -> View | None:
        """:meth:`logged_view` from one request thread at a time: at once for a new key,
        then at most every ``LOGGED_CHECK_S``; None (never an error) when not there or not
        tried."""
        if not self._checking.acquire(blocking=False):
            return None
        try:
            last_key, last_at = self._checked
            if last_key == key and time.monotonic() - last_at < LOGGED_CHECK_S:
                return None
            self._checked = (key, time.monotonic())
            return self.logged_view(*key)
        except StoreError:
            return None
        finally:
            self._checking.release()

    def _publish_in_background(self, key: tuple[str, int, dt.datetime]) -> None:
        try:
            if self._await_refresh(key) is None:
                self.publish(*key)
        except Exception:  # noqa: BLE001 - the next request tries again
            pass
        finally:
            with self._lock:
                if self._publishing == key:
                    self._publishing = None

    def _await_refresh(self, key: tuple[str, int, dt.datetime]) -> View | None:
        """While ``segcore ingest``'s refresh of data version ``key[0]`` runs (another
        process, alive; at most ``REFRESH_WAIT_S``), wait for it to log the view instead
        of evaluating it a second time; the view, or None when there is no such refresh or
        it ended without it."""
        refreshing = self.state.refreshing()
        deadline = time.monotonic() + REFRESH_WAIT_S
        while (refreshing is not None and refreshing[1] == key[0] and _alive(refreshing[0])
               and time.monotonic() < deadline):
            view = self.logged_view(*key)
            if view is not None:
                return view
            time.sleep(LOGGED_CHECK_S)
            refreshing = self.state.refreshing()
        return self.logged_view(*key)

    def view(self) -> View:
        """The view "now" answers read: the current versions and tick once every saved
        segment is materialized and logged there. Until then, in ``background`` mode, the
        previous view: a request never waits for an evaluation, a write or another
        thread's lock (a thread materializes the new view, or waits for the import's
        refresh to log it); else it is materialized here."""
        for _ in range(RETRIES):  # ok-loop: retried only while an import lands
            dv, cv = self.versions()
            T = self.now()
            key = (dv, cv, T)
            published = self._published
            if published is not None and published.key == key:
                return published
            if self.background and published is not None:
                view = self._try_logged(key)  # the import's refresh logged it
                if view is not None:
                    return view
                with self._lock:
                    start = self._publishing is None
                    if start:
                        self._publishing = key
                if start:
                    threading.Thread(target=self._publish_in_background, args=(key,),
                                     name="segcore-publish", daemon=True).start()
                return published
            view = self.publish(dv, cv, T)
            if view is not None:
                return view
        raise StoreError("the store kept changing while the segments were evaluated; try again")

    def current(self, name: str, as_of: str | None = None) -> Snapshot:
        """The members of saved segment ``name`` at ``as_of`` (None: now, from the view)."""
        seg = self.segment(name)
        if as_of is not None:
            return self.snapshot(seg, self.instant(as_of), log=False)
        view = self.view()
        for snap in view.snapshots:  # ok-loop: a few saved segments
            if snap.segment_id == seg.id:
                return snap
        return self.snapshot(seg, self.now(), log=True)  # new since the view (or broken)

    def user_segments(self, user_ids: list[str], as_of: str | None = None
                      ) -> tuple[dict[str, list[str]], str, int, dt.datetime]:
        """``{user id: [segment names]}`` at ``as_of`` (None: now), the data and catalog
        versions and T.

        The segments are those of ``segcore user`` (:func:`segcore.query.user_segments`):
        every live saved segment, in the catalog's order; one that cannot be evaluated is
        left out."""
        if as_of is None:
            view = self.view()
        else:
            T = self.instant(as_of)
            for _ in range(RETRIES):  # ok-loop: retried only while an import lands
                dv, cv = self.versions()
                snaps = []
                for seg in self.segments(cv):  # ok-loop: one read per saved segment
                    try:
                        snaps.append(self.snapshot(seg, T, log=False, versions=(dv, cv)))
                    except (RuleError, CatalogError):
                        continue
                if all((x.data_version, x.catalog_version) == (dv, cv) for x in snaps):
                    view = View(dv, cv, T, tuple(snaps))
                    break
            else:
                raise StoreError("the store kept changing while segments were read; try again")
        out = {uid: [x.segment for x in view.snapshots if uid in x.ids]  # ok-loop: set probes
               for uid in user_ids}
        return out, view.data_version, view.catalog_version, view.as_of

    def refresh(self) -> dict[str, Any]:
        """Materialize and log every live saved segment now (the ingest command's hook)."""
        for _ in range(RETRIES):  # ok-loop: retried only while an import lands
            dv, cv = self.versions()
            view = self.publish(dv, cv, self.now())
            if view is not None:
                names = {x.segment_id for x in view.snapshots}
                return {"as_of": iso(view.as_of), "data_version": view.data_version,
                        "segments": [{"segment": x.segment, "members": x.size}
                                     for x in view.snapshots],
                        "failed": [s.name for s in self.segments(cv) if s.id not in names]}
        raise StoreError("the store kept changing while the segments were evaluated; try again")

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
    this store has a service state (``segcore serve`` ran on it); else nothing (None).
    While it runs, a server of the store waits for it instead of evaluating them too."""
    state = State(store.home)
    if not state.exists():
        return None
    with state.refreshing_as(store.data_version()):
        return Memberships.from_settings(store).refresh()
