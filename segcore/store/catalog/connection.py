"""The catalog's connections: one short-lived SQLite connection per call, transactions,
the schema and its migrations, the reference check on every write, data versions."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from segcore.errors import CatalogError, RuleError, StoreError
from segcore.lang.references import (
    name_key,
    new_problem,
    problems,
    rename_reference,
    rule_references,
)
from segcore.store.catalog.schema import (
    BUSY_TIMEOUT_S,
    FULL_DISK_BYTES,
    MEMBER_CHANGES,
    REFS_LIKE,
    SCHEMA_V1,
    SCHEMA_VERSION,
)


# ---------------------------------------------------------------------- catalog
class CatalogConnection:
    """The SQLite catalog at ``path`` (created with its schema on first use).

    Parameters
    ----------
    path
        The database file, normally ``<home>/catalog.sqlite``.
    busy_timeout
        Seconds to wait for another writer before giving up with a StoreError.
    """

    def __init__(self, path: str | os.PathLike[str], busy_timeout: float = BUSY_TIMEOUT_S):
        self.path = Path(path)
        self.busy_timeout = float(busy_timeout)

    def __repr__(self) -> str:
        return f"Catalog({str(self.path)!r})"

    # ------------------------------------------------------------------ plumbing
    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn sqlite3/OS failures into StoreError with a clear message."""
        try:
            yield
        except sqlite3.IntegrityError as exc:
            raise CatalogError(f"the catalog refused the change: {exc}") from None
        except sqlite3.OperationalError as exc:
            msg = str(exc).lower()
            if "locked" in msg or "busy" in msg:
                raise StoreError(
                    f"the catalog {self.path} is busy (another process held it for more "
                    f"than {self.busy_timeout:g} s); try again"
                ) from None
            if ("readonly" in msg or "read-only" in msg) and _disk_full(self.path.parent):
                raise StoreError(f"the disk is full: cannot write the catalog {self.path}") from None
            if "readonly" in msg or "read-only" in msg:
                raise StoreError(
                    f"the store is read-only: cannot change the catalog {self.path} "
                    f"(read-only file system, or no write permission on {self.path.parent})"
                ) from None
            if "full" in msg:
                raise StoreError(
                    f"the disk is full: cannot write the catalog {self.path}"
                ) from None
            if "unable to open" in msg:
                raise StoreError(
                    f"cannot open the catalog {self.path}: the folder is missing or not writable"
                ) from None
            if "disk i/o" in msg:
                raise StoreError(f"disk I/O error on the catalog {self.path}") from None
            raise StoreError(f"catalog {self.path}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path} is not a usable catalog ({exc}); move it away to start afresh"
            ) from None
        except OSError as exc:
            raise StoreError(f"catalog {self.path}: {exc.strerror or exc}") from None

    def _open(self) -> sqlite3.Connection:
        parent = self.path.parent
        if parent.exists() and not parent.is_dir():
            raise StoreError(
                f"cannot open the catalog {self.path}: {parent} is a file, not a folder"
            )
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the folder {parent} for the catalog: {exc.strerror or exc}"
            ) from None
        with self._errors():
            target, read_only = self._target()
            con = sqlite3.connect(
                target,
                uri=read_only,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=True,
            )
            if target == ":memory:":  # no catalog in a read-only store: an empty one
                self._ensure_schema(con)
            if read_only:  # reads work; every write fails with "readonly"
                con.execute("PRAGMA query_only = ON")
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA foreign_keys = ON")
            con.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            con.create_function("casefold", 1, _casefold, deterministic=True)
        return con

    def _target(self) -> tuple[str, bool]:
        """What to open: the file, or a read-only URI when the store cannot be written.

        A read-only store (read-only mount, no write permission) is opened with
        ``mode=ro``; if SQLite could not create the WAL side files there (``-wal``,
        ``-shm`` absent), with ``immutable=1``: the file is then read as it is. A
        read-only store without a catalog reads as an empty one (``:memory:``).
        """
        parent = self.path.parent
        writable = os.access(parent, os.W_OK)
        if not self.path.exists():
            return (str(self.path), False) if writable else (":memory:", True)
        sides = [self.path.with_name(self.path.name + s) for s in ("-wal", "-shm")]
        full = writable and not all(p.exists() for p in sides) and _disk_full(parent)
        if writable and not full and os.access(self.path, os.W_OK):
            return str(self.path), False
        uri = "file:" + urllib.parse.quote(self.path.resolve().as_posix()) + "?mode=ro"
        if not writable or full:  # SQLite could not create -wal/-shm here
            uri += "&immutable=1" if not all(p.exists() for p in sides) else ""
        return uri, True

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A fresh connection for one call (never shared between threads)."""
        con = self._open()
        try:
            with self._errors():
                self._ensure_schema(con)
                yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A connection inside one read transaction (a consistent snapshot)."""
        with self._connect() as con, self._errors():
            con.execute("BEGIN")
            try:
                yield con
            finally:
                con.execute("COMMIT")

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A connection inside ``BEGIN IMMEDIATE``: committed on success, rolled back
        on any exception. Bumps the catalog's data version.

        Every change is checked against the rules of references between segments
        (``segcore.lang.references``) over the whole catalog it would leave, before it
        commits: a change that would add a missing reference, a cycle or a chain
        nested too deeply is rolled back with a RuleError.
        """
        with self._connect() as con, self._errors():
            con.execute("BEGIN IMMEDIATE")
            try:
                before = self._reference_graph(con)
                yield con
                self._check_references(con, before)
                con.execute("UPDATE meta SET value = value + 1 WHERE key = 'data_version'")
                con.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    con.execute("ROLLBACK")
                raise

    def _ensure_schema(self, con: sqlite3.Connection) -> None:
        """Create or migrate the schema if needed (a cheap header read otherwise).

        Checked on every connection, so a catalog file removed or replaced
        behind our back is simply recreated.
        """
        version = con.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the catalog {self.path} has schema version {version}, newer than this "
                f"segcore understands ({SCHEMA_VERSION}); upgrade segcore"
            )
        if version == SCHEMA_VERSION:
            return
        # WAL: readers never block the writer; 'memory'/'delete' where unsupported
        con.execute("PRAGMA journal_mode = WAL").fetchone()
        con.execute("BEGIN IMMEDIATE")
        try:
            self._migrate(con)  # re-reads user_version: another process may have won
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                con.execute("ROLLBACK")
            raise

    def _migrate(self, con: sqlite3.Connection) -> None:
        """Bring the schema up to SCHEMA_VERSION (inside the caller's transaction)."""
        version = con.execute("PRAGMA user_version").fetchone()[0]
        if version < 1:
            for stmt in SCHEMA_V1.split(";"):
                if stmt.strip():
                    con.execute(stmt)
            con.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('data_version', 0)")
            self._seed_channels(con)
            con.execute("PRAGMA user_version = 1")
        if version < 2:
            # v2: the member count of static segments is stored (list() stays fast)
            con.execute("ALTER TABLE segments ADD COLUMN member_count INTEGER")
            con.execute(
                "UPDATE segments SET member_count = (SELECT count(*) FROM segment_members m "
                "WHERE m.segment_id = segments.id) WHERE kind = 'static'"
            )
            con.execute("PRAGMA user_version = 2")
        if version < 3:
            # v3: every change of a static segment's members is logged per version, so a
            # segment can go back to an earlier version (members logged from the version
            # it had at the migration on)
            con.execute(MEMBER_CHANGES)
            con.execute(
                "CREATE INDEX IF NOT EXISTS segment_member_changes_by_user "
                "ON segment_member_changes (segment_id, user_id, version)"
            )
            con.execute(
                "ALTER TABLE segments ADD COLUMN members_logged_from INTEGER NOT NULL DEFAULT 1"
            )
            con.execute("UPDATE segments SET members_logged_from = version")
            con.execute("PRAGMA user_version = 3")
        # a future change: `if version < 4: ...; PRAGMA user_version = 4` (and bump
        # SCHEMA_VERSION); never edit an earlier step.

    # ------------------------------------------------------------------ references
    @staticmethod
    def _reference_graph(con: sqlite3.Connection) -> dict[str, tuple[str, set[str]]]:
        """Live segments by name key: (name, names their rule refers to)."""
        rows = con.execute(
            "SELECT name, CASE WHEN rule_json LIKE ? ESCAPE '\\' THEN rule_json END "
            "FROM segments WHERE deleted_at IS NULL",
            (REFS_LIKE,),
        )
        return {name_key(r[0]): (r[0], rule_references(r[1])) for r in rows}

    def _check_references(
        self, con: sqlite3.Connection, before: dict[str, tuple[str, set[str]]]
    ) -> None:
        """Refuse a change that adds a missing reference, a cycle or a too-deep chain."""
        after = self._reference_graph(con)
        if after == before:
            return
        changed = [k for k, v in after.items() if before.get(k) != v]
        problem = new_problem(problems(before), problems(after, first=changed))
        if problem is not None:
            raise RuleError(problem.message)

    @staticmethod
    def _referrers(
        con: sqlite3.Connection, name: str, *, include_deleted: bool = False
    ) -> list[tuple[int, str, str]]:
        """(id, name, rule_json) of the segments whose rule refers to ``name``."""
        rows = con.execute(
            "SELECT id, name, rule_json FROM segments WHERE rule_json LIKE ? ESCAPE '\\'"
            + ("" if include_deleted else " AND deleted_at IS NULL")
            + " ORDER BY name COLLATE NOCASE, id",
            (REFS_LIKE,),
        )
        key = name_key(name)
        return [
            (r[0], r[1], r[2])
            for r in rows
            if key in {name_key(n) for n in rule_references(r[2])}
        ]

    def _follow_rename(self, con: sqlite3.Connection, seg_id: int, old: str, new: str) -> None:
        """Rewrite ``in_segment(old)`` as ``in_segment(new)`` in every other segment's rule
        (deleted ones too, so restoring them finds the segment), one version each."""
        for ref_id, _, rule_json in self._referrers(con, old, include_deleted=True):
            if ref_id == seg_id:
                continue
            text, tree_json = rename_reference(rule_json, old, new)
            self._bump(con, self._row(con, ref_id), None,
                       {"rule_text": text, "rule_json": tree_json})
            self._log(con, ref_id, "edit", f"in_segment('{old}') now in_segment('{new}')")

    # ------------------------------------------------------------------ versions
    def schema_version(self) -> int:
        """The catalog's schema version (``PRAGMA user_version``)."""
        with self._connect() as con:
            return int(con.execute("PRAGMA user_version").fetchone()[0])

    def data_version(self) -> int:
        """A counter bumped by every write (from any process): a cache key."""
        with self._connect() as con:
            row = con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()
            return int(row[0]) if row else 0


def _disk_full(folder: Path) -> bool:
    """Whether ``folder``'s filesystem has no room left for the catalog's WAL files
    (then the catalog is opened read-only: reads work, writes say the disk is full)."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):  # no statvfs (Windows): assume room
        return False
    return st.f_bavail * st.f_frsize < FULL_DISK_BYTES


def _casefold(value: Any) -> str | None:
    return value.casefold() if isinstance(value, str) else None

