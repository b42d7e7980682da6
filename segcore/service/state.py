"""The service's own state: ``<home>/memberships/service.sqlite``.

Tables: ``snapshots`` (one materialized membership: a segment at a data version,
catalog version and instant, its Parquet file and, once it is part of the log, the
log position ``seq_end`` it ends at), ``changes`` (the entered/exited log, ``seq``
increasing), ``syncs`` (the last sync of each token and segment), ``token_use`` (when a
token was last used), ``meta`` (the log's id and the service's clock settings).

Writes run in ``BEGIN IMMEDIATE`` transactions (WAL mode): a killed process leaves every
table as it was before or after a whole change, never half of one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from segcore.errors import StoreError

DIR = "memberships"
DB = "service.sqlite"
BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS snapshots (
    id              INTEGER PRIMARY KEY,
    segment_id      INTEGER NOT NULL,
    segment         TEXT NOT NULL,
    data_version    TEXT NOT NULL,
    catalog_version INTEGER NOT NULL,
    as_of           TEXT NOT NULL,
    size            INTEGER NOT NULL,
    file            TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    seq_end         INTEGER,
    UNIQUE (segment_id, data_version, catalog_version, as_of)
);
CREATE INDEX IF NOT EXISTS snapshots_logged ON snapshots (segment_id, seq_end);
CREATE TABLE IF NOT EXISTS changes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    segment_id  INTEGER NOT NULL,
    snapshot_id INTEGER NOT NULL,
    user_id     TEXT NOT NULL,
    change      TEXT NOT NULL CHECK (change IN ('+', '-'))
);
CREATE INDEX IF NOT EXISTS changes_by_segment ON changes (segment_id, seq);
CREATE TABLE IF NOT EXISTS syncs (
    token    TEXT NOT NULL,
    segment  TEXT NOT NULL,
    cursor   TEXT NOT NULL,
    entered  INTEGER NOT NULL,
    left_    INTEGER NOT NULL,
    at       TEXT NOT NULL,
    PRIMARY KEY (token, segment)
);
CREATE TABLE IF NOT EXISTS token_use (
    token     TEXT PRIMARY KEY,
    last_used TEXT NOT NULL,
    requests  INTEGER NOT NULL
);
"""


def now_text() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace(
        "+00:00", "Z")


class State:
    """The service database of the store at ``home``."""

    def __init__(self, home: str | Path):
        self.dir = Path(home) / DIR
        self.path = self.dir / DB

    def exists(self) -> bool:
        return self.path.exists()

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for one call (autocommit; use :meth:`write` for a transaction)."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the service state {self.path}: {exc}") from None
        try:
            con.row_factory = sqlite3.Row
            con.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            if con.execute("PRAGMA user_version").fetchone()[0] < 1:
                con.execute("PRAGMA journal_mode = WAL").fetchone()
                con.execute("BEGIN IMMEDIATE")
                if con.execute("PRAGMA user_version").fetchone()[0] < 1:
                    for stmt in _SCHEMA.split(";"):  # ok-loop: a few statements
                        if stmt.strip():
                            con.execute(stmt)
                    con.execute("INSERT OR IGNORE INTO meta VALUES ('log_id', ?)",
                                (uuid.uuid4().hex[:12],))
                    con.execute("PRAGMA user_version = 1")
                con.execute("COMMIT")
            yield con
        except sqlite3.Error as exc:
            raise StoreError(f"service state {self.path}: {exc}") from None
        finally:
            con.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A connection inside ``BEGIN IMMEDIATE``: committed on success, else rolled back."""
        with self.connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    con.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------------ meta
    def log_id(self) -> str:
        """The id of this log (a cursor from another log is refused)."""
        with self.connect() as con:
            return str(con.execute("SELECT value FROM meta WHERE key = 'log_id'").fetchone()[0])

    def settings(self) -> dict[str, Any]:
        """The clock settings the last ``segcore serve`` wrote (``tick``, ``now``)."""
        with self.connect() as con:
            rows = con.execute("SELECT key, value FROM meta WHERE key IN ('tick', 'now')")
            return {r["key"]: r["value"] for r in rows}

    def save_settings(self, tick: float, now: str | None) -> None:
        with self.write() as con:
            con.execute("INSERT OR REPLACE INTO meta VALUES ('tick', ?)", (str(tick),))
            con.execute("INSERT OR REPLACE INTO meta VALUES ('now', ?)", (now,))

    # ------------------------------------------------------------------ an import's refresh
    @contextlib.contextmanager
    def refreshing_as(self, data_version: str) -> Iterator[None]:
        """Within the block, the state says this process refreshes ``data_version``."""
        mark = f"{os.getpid()} {data_version}"
        with self.write() as con:
            con.execute("INSERT OR REPLACE INTO meta VALUES ('refreshing', ?)", (mark,))
        try:
            yield
        finally:
            with contextlib.suppress(StoreError), self.write() as con:
                con.execute("DELETE FROM meta WHERE key = 'refreshing' AND value = ?", (mark,))

    def refreshing(self) -> tuple[int, str] | None:
        """(process id, data version) of the import refreshing the memberships, if any."""
        with self.connect() as con:
            row = con.execute("SELECT value FROM meta WHERE key = 'refreshing'").fetchone()
        if row is None:
            return None
        pid, _, dv = str(row[0]).partition(" ")
        return (int(pid), dv) if pid.isdigit() else None

    # ------------------------------------------------------------------ syncs and token use
    def record_sync(self, token: str, segment: str, cursor: str, entered: int,
                    left: int) -> None:
        with self.write() as con:
            con.execute("INSERT OR REPLACE INTO syncs VALUES (?, ?, ?, ?, ?, ?)",
                        (token, segment, cursor, entered, left, now_text()))

    def record_use(self, uses: dict[str, tuple[str, int]]) -> None:
        """Add ``{token: (last_used, requests)}`` to the token-use table."""
        with self.write() as con:
            con.executemany(
                "INSERT INTO token_use VALUES (?, ?, ?) ON CONFLICT (token) DO UPDATE SET "
                "last_used = excluded.last_used, requests = requests + excluded.requests",
                [(k, v[0], v[1]) for k, v in uses.items()])

    def syncs(self) -> list[dict[str, Any]]:
        """The last sync of every token and segment, newest first."""
        if not self.exists():
            return []
        with self.connect() as con:
            rows = con.execute("SELECT token, segment, cursor, entered, left_ AS left, at "
                               "FROM syncs ORDER BY at DESC, token, segment").fetchall()
        return [dict(r) for r in rows]

    def token_use(self) -> dict[str, dict[str, Any]]:
        """``{token name: {last_used, requests}}``."""
        if not self.exists():
            return {}
        with self.connect() as con:
            rows = con.execute("SELECT token, last_used, requests FROM token_use").fetchall()
        return {r["token"]: {"last_used": r["last_used"], "requests": r["requests"]}
                for r in rows}


def tokens_and_syncs(home: str | Path) -> dict[str, list[dict[str, Any]]]:
    """The service's tokens (with their last use, never their values) and the last syncs
    of each token and segment: what the dashboard's Settings page shows."""
    from segcore.store.tokens import Tokens

    state = State(home)
    uses = state.token_use()
    tokens = [{**t.to_dict(), **uses.get(t.name, {"last_used": None, "requests": 0})}
              for t in Tokens(Path(home) / "catalog.sqlite").list()]
    return {"tokens": tokens, "syncs": state.syncs()}
