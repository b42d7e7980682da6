"""The catalog: saved segments, static members, channels and funnels in SQLite.

The catalog lives at ``<home>/catalog.sqlite`` (see docs/architecture.md, "The store").
It is safe to use from several threads and several processes at once:

- every call opens its own short-lived ``sqlite3`` connection (never shared
  between threads), in WAL mode with a busy timeout and foreign keys on;
- every write runs in one ``BEGIN IMMEDIATE`` transaction: it is applied
  completely or not at all (an exception or a crash leaves the catalog as it was);
- a segment carries a ``version`` (1 at creation, +1 on every change). An edit
  given ``expect_version`` is checked and applied atomically
  (``UPDATE ... WHERE version = ?``): of two edits made from the same stale
  version, exactly one wins and the other gets a :class:`ConflictError`.

Names of segments, channels and funnels are unique without regard to (ASCII)
case. A deleted segment is kept (with its history) until purged; its name may
be reused by a new segment, and restoring it then needs a new name.

References between segments (``in_segment``) stay sound through every change
(``segcore.lang.references``): a rename rewrites the rules that refer to the segment,
a referenced segment cannot be deleted, and no change may leave a missing
reference, a cycle or a chain deeper than ``MAX_SEGMENT_DEPTH``. The member
changes of static segments are logged per version, so :meth:`Catalog.revert`
can bring back any earlier version.

Examples
--------
>>> cat = Catalog("data/catalog.sqlite")                      # doctest: +SKIP
>>> cat.create("vip", rule_text="sum('purchase', 'amount') > 1000")  # doctest: +SKIP
>>> cat.edit("vip", description="big spenders", expect_version=1)    # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import difflib
import json
import os
import sqlite3
import unicodedata
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import polars as pl

from segcore.errors import CatalogError, ConflictError, NotFoundError, RuleError, StoreError
from segcore.lang.references import (
    name_key,
    new_problem,
    problems,
    rename_reference,
    rule_references,
)
from segcore.store.ids import id_series

SCHEMA_VERSION = 3
FULL_DISK_BYTES = 256 * 1024  # less free space than this: the catalog opens read-only
BUSY_TIMEOUT_S = 10.0
MAX_NAME_LENGTH = 200
EXAMPLES = 5

DEFAULT_CHANNELS: tuple[tuple[str, str, str], ...] = (
    ("email", "email IS NOT NULL AND email_opt_in", "E-mail, opted in"),
    ("sms", "phone IS NOT NULL AND sms_opt_in", "Text messages, opted in"),
    ("push", "push_token IS NOT NULL AND push_opt_in", "Push notifications, opted in"),
    ("whatsapp", "phone IS NOT NULL AND whatsapp_opt_in", "WhatsApp, opted in"),
)

#: A LIKE pattern matching the rule JSON of every rule that has an ``in_segment`` term
#: (a cheap filter before the rules are read as trees).
_REFS_LIKE = '%"in\\_segment"%'

#: Header names (case-insensitive) recognised as the id column of an uploaded file.
ID_HEADERS = ("user_id", "userid", "user id", "id", "user", "customer_id")

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS segments (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL COLLATE NOCASE,
    description TEXT NOT NULL DEFAULT '',
    kind        TEXT NOT NULL CHECK (kind IN ('dynamic', 'static')),
    rule_text   TEXT,
    rule_json   TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    deleted_at  TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS segments_live_name
    ON segments (name) WHERE deleted_at IS NULL;
CREATE TABLE IF NOT EXISTS segment_versions (
    segment_id   INTEGER NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL,
    kind         TEXT NOT NULL,
    rule_text    TEXT,
    rule_json    TEXT,
    member_count INTEGER,
    saved_at     TEXT NOT NULL,
    action       TEXT NOT NULL
        CHECK (action IN ('create', 'edit', 'delete', 'restore', 'rename', 'members')),
    note         TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (segment_id, version)
);
CREATE TABLE IF NOT EXISTS segment_members (
    segment_id INTEGER NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    PRIMARY KEY (segment_id, user_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS channels (
    name        TEXT PRIMARY KEY COLLATE NOCASE,
    rule_text   TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    position    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS funnels (
    name       TEXT PRIMARY KEY COLLATE NOCASE,
    spec_json  TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""

_MEMBER_CHANGES = """
CREATE TABLE IF NOT EXISTS segment_member_changes (
    segment_id INTEGER NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    user_id    TEXT NOT NULL,
    change     TEXT NOT NULL CHECK (change IN ('+', '-')),
    PRIMARY KEY (segment_id, version, user_id)
) WITHOUT ROWID
"""


# ---------------------------------------------------------------------- records
@dataclasses.dataclass(frozen=True)
class Segment:
    """A saved segment as stored in the catalog.

    Attributes
    ----------
    id
        Internal row id (stable across renames).
    name, description
        As given; ``name`` is unique among live segments (case-insensitive).
    kind
        ``'dynamic'`` (members from ``rule_text`` / ``rule_json``) or ``'static'``
        (members stored in the catalog).
    rule_text, rule_json
        The rule as text and as the condition tree's JSON; the catalog reads only the
        JSON's ``in_segment`` references (``segcore.lang.references``).
    created_at, updated_at, deleted_at
        UTC ISO-8601 strings (``...Z``); ``deleted_at`` is None unless deleted.
    version
        1 at creation, +1 on every change (edit, rename, members, delete, restore).
    member_count
        Number of stored members for a static segment, None for a dynamic one.
    """

    id: int
    name: str
    description: str
    kind: str
    rule_text: str | None
    rule_json: str | None
    created_at: str
    updated_at: str
    version: int
    deleted_at: str | None = None
    member_count: int | None = None

    @property
    def is_static(self) -> bool:
        return self.kind == "static"

    def to_dict(self) -> dict[str, Any]:
        """The segment as a JSON-ready dict (the internal ``id`` left out)."""
        out = dataclasses.asdict(self)
        del out["id"]
        return out


@dataclasses.dataclass(frozen=True)
class Channel:
    """A reachability channel: a named attribute-only rule (docs/analytics.md, Reachability)."""

    name: str
    rule_text: str
    description: str
    position: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class MembersReport:
    """What adding or removing ids did to a static segment.

    Attributes
    ----------
    segment, version, member_count
        The segment's name, new version and number of stored members after the change.
    action
        ``'add'`` or ``'remove'``.
    rows, ids, duplicates
        Ids given (empty values skipped), distinct ids, extra occurrences.
    added, already_members
        ``add``: ids stored now / ids that were members already (left alone).
    removed, not_members
        ``remove``: ids taken out / ids that were not members (ignored).
    unknown
        Ids the store does not know (no user row, no event). ``add`` stores them (they
        may arrive with a later import); None when the store was not asked.
    """

    segment: str
    version: int
    member_count: int
    action: str
    rows: int
    ids: int
    duplicates: int
    added: int = 0
    already_members: int = 0
    removed: int = 0
    not_members: int = 0
    unknown: int | None = None
    examples: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------- helpers
def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _check_name(name: Any, what: str = "segment") -> str:
    """A stripped, valid name, or CatalogError."""
    if not isinstance(name, str):
        raise CatalogError(f"a {what} name must be text, got {type(name).__name__}")
    clean = name.strip()
    if not clean:
        raise CatalogError(f"a {what} name cannot be empty")
    if len(clean) > MAX_NAME_LENGTH:
        raise CatalogError(
            f"a {what} name can have at most {MAX_NAME_LENGTH} characters "
            f"(got {len(clean)}: {clean[:30]!r}...)"
        )
    bad = [c for c in clean if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]
    if bad:
        raise CatalogError(
            f"a {what} name cannot contain control characters (found {bad[0]!r} in {clean!r})"
        )
    return clean


def _quote_list(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _suggest(name: str, candidates: list[str]) -> str:
    """'; did you mean ...?' with close names, or ''."""
    lower = {c.casefold(): c for c in candidates}
    close = difflib.get_close_matches(name.casefold(), list(lower), n=3, cutoff=0.6)
    extra = [c for k, c in lower.items() if name.casefold() in k and k not in close]
    found = [lower[k] for k in close] + extra
    found = list(dict.fromkeys(found))[:3]
    return f"; did you mean {_quote_list(found)}?" if found else ""


def _id_series(values: Iterable[Any]) -> pl.Series:
    """Ids as a String Series under the id rule (``segcore.store.ids``), missing ids dropped."""
    if isinstance(values, pl.Series):
        s = values.rename("user_id")
    else:
        s = pl.Series("user_id", list(values), dtype=pl.String, strict=False)
    s = id_series(s)
    return s.filter(s.is_not_null())


def _dedup_report(ids: pl.Series) -> tuple[list[str], dict[str, Any]]:
    """Unique ids in first-seen order and a duplicate report."""
    unique = ids.unique(maintain_order=True)
    dup_mask = ids.is_duplicated()
    dup_values = ids.filter(dup_mask).unique(maintain_order=True)
    report = {
        "rows": ids.len(),
        "members": unique.len(),
        "duplicates": ids.len() - unique.len(),
        "duplicate_ids": dup_values.len(),
        "duplicate_examples": dup_values.head(EXAMPLES).to_list(),
    }
    return unique.to_list(), report


def _unknown(
    ids: list[str], known_ids: set[str] | pl.Series | None
) -> tuple[int, list[str]] | None:
    """(number, examples) of ``ids`` not among ``known_ids``; None if not asked."""
    if known_ids is None:
        return None
    known = (
        known_ids if isinstance(known_ids, pl.Series)
        else pl.Series(list(known_ids), dtype=pl.String)
    )
    s = pl.Series("user_id", ids, dtype=pl.String)
    missing = s.filter(~s.is_in(known.cast(pl.String).implode()))
    return missing.len(), missing.head(EXAMPLES).to_list()


def _read_source(source: Any) -> tuple[str, str]:
    """(text, where) from a path, bytes, text stream or binary stream."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, where = bytes(source), "the uploaded data"
    elif isinstance(source, str) and ("\n" in source or "\r" in source):
        return source.lstrip("\ufeff"), "the pasted text"  # a path has no line break
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CatalogError(f"ids file {path} does not exist") from None
        except IsADirectoryError:
            raise CatalogError(f"ids file {path} is a folder, not a file") from None
        except OSError as exc:
            raise CatalogError(f"cannot read ids file {path}: {exc.strerror or exc}") from None
        where = str(path)
    elif hasattr(source, "read"):
        data = source.read()
        where = getattr(source, "name", None) or "the uploaded data"
        if isinstance(data, str):
            return data.lstrip("\ufeff"), str(where)
    else:
        raise CatalogError(
            f"cannot read ids from a {type(source).__name__}; give a path, bytes or text"
        )
    try:
        return data.decode("utf-8-sig"), str(where)
    except UnicodeDecodeError as exc:
        raise CatalogError(
            f"{where} is not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8 CSV"
        ) from None


def _pick_separator(line: str) -> str | None:
    counts = {sep: line.count(sep) for sep in (",", ";", "\t", "|")}
    sep, n = max(counts.items(), key=lambda kv: kv[1])
    return sep if n else None


def _norm_header(h: str) -> str:
    return h.strip().strip('"').strip().casefold()


def parse_ids_text(text: str, where: str = "the pasted text") -> tuple[list[str], dict[str, Any]]:
    """Parse user ids from CSV text or a plain list (one id per line).

    Parameters
    ----------
    text
        A CSV with a header (the id column is ``user_id`` or ``id``, any case;
        a single column may have any header), or ids one per line with no header.
    where
        Named in error messages.

    Returns
    -------
    (ids, report)
        ``ids``: the unique ids as strings (leading zeros kept, whitespace
        stripped, empty values skipped), in first-seen order. ``report``:
        ``rows`` (ids read), ``members`` (unique), ``duplicates`` (extra
        occurrences), ``duplicate_ids``, ``duplicate_examples``, ``header``
        (the id column's name, or None for a plain list), ``column``.
    """
    lines = text.splitlines()
    first_idx = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first_idx is None:
        ids, report = _dedup_report(pl.Series("user_id", [], dtype=pl.String))
        return ids, {**report, "header": None, "column": None}
    first = lines[first_idx]
    sep = _pick_separator(first)
    if sep is None:
        # one column: a header if it is a known id name, or if it has no digit
        # while the values below it do (e.g. "customer" above "00123").
        col = pl.Series("user_id", lines[first_idx:], dtype=pl.String)
        col = col.str.strip_chars().str.strip_chars('"').str.strip_chars()
        head = col[0]
        rest = col.slice(1)
        is_header = _norm_header(head) in ID_HEADERS or (
            not any(ch.isdigit() for ch in head) and bool(rest.str.contains(r"\d").any())
        )
        values = rest if is_header else col
        ids, report = _dedup_report(_id_series(values))
        return ids, {
            **report,
            "header": head if is_header else None,
            "column": head if is_header else None,
        }
    try:
        frame = pl.read_csv(
            "\n".join(lines[first_idx:]).encode(),
            separator=sep,
            infer_schema=False,
            truncate_ragged_lines=True,
            empty_string_is_null=False,
        )
    except Exception as exc:  # polars raises several types on malformed CSV
        raise CatalogError(f"cannot read {where} as CSV: {str(exc).splitlines()[0]}") from None
    by_norm = {_norm_header(c): c for c in frame.columns}
    column = next((by_norm[h] for h in ID_HEADERS if h in by_norm), None)
    if column is None:
        found = ", ".join(repr(c) for c in frame.columns)
        raise CatalogError(
            f"{where} has no user id column: expected a column named 'user_id' or 'id', "
            f"found {found}"
        )
    ids, report = _dedup_report(_id_series(frame.get_column(column)))
    return ids, {**report, "header": column, "column": column}


def parse_ids_csv(source: Any) -> tuple[list[str], dict[str, Any]]:
    """Parse user ids from a CSV file or a plain list of ids.

    Parameters
    ----------
    source
        A path (``str`` or ``Path``), the file's bytes, an open file (text or
        binary), or pasted text (a ``str`` with a line break; for a single
        pasted id use :func:`parse_ids_text`).

    Returns
    -------
    (ids, report)
        See :func:`parse_ids_text`.
    """
    text, where = _read_source(source)
    ids, report = parse_ids_text(text, where)
    if not ids:  # an empty upload is a mistake (wrong file, lost export), not a segment
        what = f"under its {report['header']!r} column" if report["header"] else "in it"
        raise CatalogError(f"{where} has no user ids {what}: nothing to import")
    return ids, report


# ---------------------------------------------------------------------- catalog
class Catalog:
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
            for stmt in _SCHEMA_V1.split(";"):
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
            con.execute(_MEMBER_CHANGES)
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
            (_REFS_LIKE,),
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
            (_REFS_LIKE,),
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

    # ------------------------------------------------------------------ segment rows
    _SEGMENT_COLS = (
        "s.id, s.name, s.description, s.kind, s.rule_text, s.rule_json, s.created_at, "
        "s.updated_at, s.version, s.deleted_at, s.member_count"
    )

    def _row(self, con: sqlite3.Connection, seg_id: int) -> Segment:
        row = con.execute(
            f"SELECT {self._SEGMENT_COLS} FROM segments s WHERE s.id = ?", (seg_id,)
        ).fetchone()
        return Segment(**dict(row))

    def _live(self, con: sqlite3.Connection, name: str) -> Segment:
        """The live segment named ``name`` or NotFoundError with suggestions."""
        if not isinstance(name, str):
            raise CatalogError(f"a segment name must be text, got {type(name).__name__}")
        row = con.execute(
            f"SELECT {self._SEGMENT_COLS} FROM segments s "
            "WHERE s.name = ? AND s.deleted_at IS NULL",
            (name.strip(),),
        ).fetchone()
        if row is not None:
            return Segment(**dict(row))
        deleted = con.execute(
            "SELECT deleted_at FROM segments WHERE name = ? AND deleted_at IS NOT NULL "
            "ORDER BY deleted_at DESC LIMIT 1",
            (name.strip(),),
        ).fetchone()
        if deleted is not None:
            raise NotFoundError(
                f"segment '{name}' was deleted at {deleted[0]}; restore it to use it again"
            )
        names = [r[0] for r in con.execute("SELECT name FROM segments WHERE deleted_at IS NULL")]
        raise NotFoundError(f"no segment named '{name}'{_suggest(name, names)}")

    def _taken(self, con: sqlite3.Connection, name: str, except_id: int | None = None) -> None:
        row = con.execute(
            "SELECT id, name FROM segments WHERE name = ? AND deleted_at IS NULL", (name,)
        ).fetchone()
        if row is not None and row[0] != except_id:
            raise CatalogError(f"a segment named '{row[1]}' already exists")

    def _log(self, con: sqlite3.Connection, seg_id: int, action: str, note: str = "") -> None:
        """Recount the members of a static segment; append its definition to its history."""
        con.execute(
            "UPDATE segments SET member_count = (SELECT count(*) FROM segment_members m "
            "WHERE m.segment_id = segments.id) WHERE id = ? AND kind = 'static'",
            (seg_id,),
        )
        con.execute(
            "INSERT INTO segment_versions (segment_id, version, name, description, kind, "
            "rule_text, rule_json, member_count, saved_at, action, note) "
            "SELECT id, version, name, description, kind, rule_text, rule_json, member_count, "
            "updated_at, ?, ? FROM segments WHERE id = ?",
            (action, note, seg_id),
        )

    def _bump(
        self,
        con: sqlite3.Connection,
        seg: Segment,
        expect_version: int | None,
        sets: dict[str, Any] | None = None,
    ) -> None:
        """Atomically check ``expect_version`` and apply ``sets`` with version + 1."""
        sets = dict(sets or {})
        sets["updated_at"] = _now()
        assign = ", ".join(f"{k} = ?" for k in sets)
        expected = seg.version if expect_version is None else int(expect_version)
        cur = con.execute(
            f"UPDATE segments SET {assign}, version = version + 1 WHERE id = ? AND version = ?",
            (*sets.values(), seg.id, expected),
        )
        if cur.rowcount != 1:
            now = con.execute("SELECT version FROM segments WHERE id = ?", (seg.id,)).fetchone()
            raise ConflictError(
                f"segment '{seg.name}' was changed by someone else (you edited version "
                f"{expected}, it is now version {now[0] if now else '?'}); reload and try again"
            )

    @staticmethod
    def _check_expect(seg: Segment, expect_version: int | None) -> None:
        if expect_version is not None and int(expect_version) != seg.version:
            raise ConflictError(
                f"segment '{seg.name}' was changed by someone else (you edited version "
                f"{int(expect_version)}, it is now version {seg.version}); reload and try again"
            )

    # ------------------------------------------------------------------ segments
    def create(
        self,
        name: str,
        *,
        kind: str = "dynamic",
        rule_text: str | None = None,
        rule_json: str | None = None,
        description: str = "",
        members: Iterable[Any] | None = None,
        note: str = "",
    ) -> Segment:
        """Save a new segment (version 1; ``note`` goes to its first history entry).

        Parameters
        ----------
        name
            Unique among live segments (case-insensitive), 1-200 characters,
            no control characters; surrounding spaces are stripped.
        kind
            ``'dynamic'`` needs ``rule_text`` or ``rule_json``; ``'static'`` takes
            ``members`` (user ids; duplicates stored once) and no rule.
        """
        name = _check_name(name)
        if kind not in ("dynamic", "static"):
            raise CatalogError(f"segment kind must be 'dynamic' or 'static', got {kind!r}")
        if kind == "dynamic":
            if rule_text is None and rule_json is None:
                raise CatalogError(f"dynamic segment '{name}' needs a rule")
            if members is not None:
                raise CatalogError(
                    f"dynamic segment '{name}' cannot take members; its rule decides them"
                )
        elif rule_text is not None or rule_json is not None:
            raise CatalogError(f"static segment '{name}' has members, not a rule")
        now = _now()
        with self._write() as con:
            self._taken(con, name)
            try:
                cur = con.execute(
                    "INSERT INTO segments (name, description, kind, rule_text, rule_json, "
                    "created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
                    (name, description or "", kind, rule_text, rule_json, now, now),
                )
            except sqlite3.IntegrityError:
                raise CatalogError(f"a segment named '{name}' already exists") from None
            seg_id = int(cur.lastrowid)
            if members is not None:
                self._insert_members(con, seg_id, members)
            self._log(con, seg_id, "create", note)
            return self._row(con, seg_id)

    def get(self, name: str) -> Segment:
        """The live segment ``name`` (case-insensitive) or NotFoundError."""
        with self._read() as con:
            return self._live(con, name)

    def exists(self, name: str) -> bool:
        """True if a live segment has this name."""
        with self._read() as con:
            return (
                con.execute(
                    "SELECT 1 FROM segments WHERE name = ? AND deleted_at IS NULL",
                    (str(name).strip(),),
                ).fetchone()
                is not None
            )

    def list(self, search: str | None = None, include_deleted: bool = False) -> list[Segment]:
        """Segments sorted by name; ``search`` is a case-insensitive substring of the
        name or description."""
        where, params = [], []
        if not include_deleted:
            where.append("s.deleted_at IS NULL")
        if search:
            where.append("(instr(casefold(s.name), ?) OR instr(casefold(s.description), ?))")
            params += [search.casefold(), search.casefold()]
        sql = f"SELECT {self._SEGMENT_COLS} FROM segments s"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY s.name COLLATE NOCASE, s.deleted_at IS NOT NULL, s.id"
        with self._read() as con:
            return [Segment(**dict(r)) for r in con.execute(sql, params)]

    def edit(
        self,
        name: str,
        *,
        rule_text: str | None = None,
        rule_json: str | None = None,
        description: str | None = None,
        new_name: str | None = None,
        expect_version: int | None = None,
    ) -> Segment:
        """Change a segment's rule, description and/or name (version + 1).

        With ``expect_version``, a segment changed since that version raises
        ConflictError instead of being overwritten (checked atomically).
        """
        changes: dict[str, Any] = {}
        if rule_text is not None:
            changes["rule_text"] = rule_text
        if rule_json is not None:
            changes["rule_json"] = rule_json
        if description is not None:
            changes["description"] = description
        renamed = new_name is not None
        if renamed:
            changes["name"] = _check_name(new_name)
        with self._write() as con:
            seg = self._live(con, name)
            self._check_expect(seg, expect_version)
            if seg.is_static and ("rule_text" in changes or "rule_json" in changes):
                raise CatalogError(
                    f"segment '{seg.name}' is static: change its members, not a rule"
                )
            if not changes:
                return seg
            if renamed:
                self._taken(con, changes["name"], except_id=seg.id)
            try:
                self._bump(con, seg, expect_version, changes)
            except sqlite3.IntegrityError:
                raise CatalogError(f"a segment named '{changes['name']}' already exists") from None
            only_rename = renamed and set(changes) == {"name"}
            note = f"renamed from '{seg.name}'" if renamed and changes["name"] != seg.name else ""
            self._log(con, seg.id, "rename" if only_rename else "edit", note)
            if renamed and changes["name"] != seg.name:
                self._follow_rename(con, seg.id, seg.name, changes["name"])
            return self._row(con, seg.id)

    def rename(self, name: str, new_name: str, *, expect_version: int | None = None) -> Segment:
        """Rename a segment (shortcut for ``edit(name, new_name=...)``)."""
        return self.edit(name, new_name=new_name, expect_version=expect_version)

    def clone(self, name: str, new_name: str, *, description: str | None = None) -> Segment:
        """A new segment (version 1) with the same rule or members as ``name``."""
        new_name = _check_name(new_name)
        now = _now()
        with self._write() as con:
            src = self._live(con, name)
            self._taken(con, new_name)
            cur = con.execute(
                "INSERT INTO segments (name, description, kind, rule_text, rule_json, "
                "created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
                (
                    new_name,
                    src.description if description is None else description,
                    src.kind,
                    src.rule_text,
                    src.rule_json,
                    now,
                    now,
                ),
            )
            seg_id = int(cur.lastrowid)
            con.execute(
                "INSERT INTO segment_member_changes (segment_id, version, user_id, change) "
                "SELECT ?, 1, user_id, '+' FROM segment_members WHERE segment_id = ?",
                (seg_id, src.id),
            )
            self._apply_changes(con, seg_id, 1)
            self._log(con, seg_id, "create", f"cloned from '{src.name}' version {src.version}")
            return self._row(con, seg_id)

    def delete(self, name: str, *, expect_version: int | None = None) -> Segment:
        """Soft-delete a segment (kept with its history; its name becomes free).

        A segment other live segments refer to (``in_segment``) is not deleted: the
        CatalogError names them.
        """
        with self._write() as con:
            seg = self._live(con, name)
            self._check_expect(seg, expect_version)
            users = [n for _, n, _ in self._referrers(con, seg.name) if n != seg.name]
            if users:
                who = _quote_list(users).replace(" or ", " and ")
                one = len(users) == 1
                raise CatalogError(
                    f"cannot delete segment '{seg.name}': "
                    f"{'segment' if one else 'segments'} {who} "
                    f"{'refers' if one else 'refer'} to it with in_segment('{seg.name}'); "
                    f"change or delete {'it' if one else 'them'} first"
                )
            self._bump(con, seg, expect_version, {"deleted_at": _now()})
            self._log(con, seg.id, "delete")
            return self._row(con, seg.id)

    def restore(self, name: str, *, new_name: str | None = None) -> Segment:
        """Bring back the most recently deleted segment named ``name``.

        If a live segment took the name meanwhile, give ``new_name``.
        """
        with self._write() as con:
            row = con.execute(
                "SELECT id FROM segments WHERE name = ? AND deleted_at IS NOT NULL "
                "ORDER BY deleted_at DESC, id DESC LIMIT 1",
                (str(name).strip(),),
            ).fetchone()
            if row is None:
                names = [
                    r[0]
                    for r in con.execute("SELECT name FROM segments WHERE deleted_at IS NOT NULL")
                ]
                raise NotFoundError(f"no deleted segment named '{name}'{_suggest(name, names)}")
            seg = self._row(con, row[0])
            target = _check_name(new_name) if new_name is not None else seg.name
            taken = con.execute(
                "SELECT name FROM segments WHERE name = ? AND deleted_at IS NULL", (target,)
            ).fetchone()
            if taken is not None:
                raise CatalogError(
                    f"cannot restore segment '{seg.name}': a segment named '{taken[0]}' "
                    "already exists; restore it under a new name"
                )
            self._bump(con, seg, None, {"deleted_at": None, "name": target})
            note = f"restored as '{target}'" if target != seg.name else ""
            self._log(con, seg.id, "restore", note)
            return self._row(con, seg.id)

    def revert(
        self, name: str, version: int, *, expect_version: int | None = None
    ) -> Segment:
        """Bring a live segment back to an earlier version of itself (version + 1).

        The description and the rule (dynamic) or the members (static) of ``version``
        come back; the name stays (renames are undone with :meth:`rename`). A static
        segment can go back to any version since its member changes are logged (all of
        them for segments made by a catalog of schema 3 or later).
        """
        with self._write() as con:
            seg = self._live(con, name)
            self._check_expect(seg, expect_version)
            old = con.execute(
                "SELECT version, description, rule_text, rule_json FROM segment_versions "
                "WHERE segment_id = ? AND version = ?",
                (seg.id, int(version)),
            ).fetchone()
            if old is None or int(version) >= seg.version:
                raise CatalogError(
                    f"segment '{seg.name}' has no earlier version {version} "
                    f"(it is at version {seg.version})"
                )
            sets: dict[str, Any] = {"description": old["description"]}
            if seg.is_static:
                logged = con.execute(
                    "SELECT members_logged_from FROM segments WHERE id = ?", (seg.id,)
                ).fetchone()[0]
                if int(version) < logged:
                    raise CatalogError(
                        f"segment '{seg.name}' cannot go back to version {version}: its "
                        f"member changes are kept from version {logged} on"
                    )
                # an id changed after `version` was, at `version`, the opposite of its
                # first change since; log the changes that bring it back, then apply them
                con.execute(
                    "INSERT INTO segment_member_changes (segment_id, version, user_id, change) "
                    "SELECT ?, ?, c.user_id, CASE c.change WHEN '+' THEN '-' ELSE '+' END "
                    "FROM segment_member_changes c WHERE c.segment_id = ? AND c.version = ("
                    "  SELECT min(f.version) FROM segment_member_changes f "
                    "  WHERE f.segment_id = c.segment_id AND f.user_id = c.user_id "
                    "  AND f.version > ?) "
                    "AND (c.change = '+') = EXISTS (SELECT 1 FROM segment_members m "
                    "  WHERE m.segment_id = c.segment_id AND m.user_id = c.user_id)",
                    (seg.id, seg.version + 1, seg.id, int(version)),
                )
                self._apply_changes(con, seg.id, seg.version + 1)
            else:
                sets.update(rule_text=old["rule_text"], rule_json=old["rule_json"])
            self._bump(con, seg, expect_version, sets)
            self._log(con, seg.id, "members" if seg.is_static else "edit",
                      f"back to version {version}")
            return self._row(con, seg.id)

    def purge(self, name: str) -> int:
        """Remove deleted segments named ``name`` for good (with history and members).

        Returns the number of segments removed.
        """
        with self._write() as con:
            cur = con.execute(
                "DELETE FROM segments WHERE name = ? AND deleted_at IS NOT NULL",
                (str(name).strip(),),
            )
            if cur.rowcount == 0:
                raise NotFoundError(f"no deleted segment named '{name}'")
            return int(cur.rowcount)

    def history(self, name: str, *, include_deleted: bool = True) -> list[dict[str, Any]]:
        """Every saved definition of a segment, oldest first.

        Each dict has ``version, name, description, kind, rule_text, rule_json,
        member_count, saved_at, action, note``. ``name`` is the live segment, or
        (when ``include_deleted``) the most recently deleted one of that name.
        """
        with self._read() as con:
            row = con.execute(
                "SELECT id FROM segments WHERE name = ? AND deleted_at IS NULL",
                (str(name).strip(),),
            ).fetchone()
            if row is None and include_deleted:
                row = con.execute(
                    "SELECT id FROM segments WHERE name = ? ORDER BY deleted_at DESC, id DESC "
                    "LIMIT 1",
                    (str(name).strip(),),
                ).fetchone()
            if row is None:
                self._live(con, name)  # raises NotFoundError with suggestions
            rows = con.execute(
                "SELECT version, name, description, kind, rule_text, rule_json, member_count, "
                "saved_at, action, note FROM segment_versions WHERE segment_id = ? "
                "ORDER BY version",
                (row[0],),
            )
            return [dict(r) for r in rows]

    # ------------------------------------------------------------------ static members
    @staticmethod
    def _insert_members(con: sqlite3.Connection, seg_id: int, ids: Iterable[Any]) -> None:
        """Add ids to a new static segment (version 1), logged like every member change.

        Call inside the write transaction: if ``ids`` fails half-way, nothing is kept.
        """
        Catalog._change_members(con, seg_id, 1, _id_series(ids).to_list(), "add")

    @staticmethod
    def _change_members(
        con: sqlite3.Connection, seg_id: int, version: int, ids: list[str], mode: str
    ) -> tuple[int, int]:
        """Add, remove or set (``mode``) the members of a static segment, logging every
        id that changes under ``version``. Returns (added, removed)."""
        con.execute(
            "CREATE TEMP TABLE IF NOT EXISTS given_ids (user_id TEXT PRIMARY KEY) WITHOUT ROWID"
        )
        con.execute("DELETE FROM temp.given_ids")
        con.executemany(
            "INSERT OR IGNORE INTO temp.given_ids (user_id) VALUES (?)", ((i,) for i in ids)
        )
        log = "INSERT INTO segment_member_changes (segment_id, version, user_id, change) "
        member = "SELECT 1 FROM segment_members m WHERE m.segment_id = ? AND m.user_id = "
        if mode in ("add", "set"):
            con.execute(
                log + f"SELECT ?, ?, g.user_id, '+' FROM temp.given_ids g "
                f"WHERE NOT EXISTS ({member}g.user_id)",
                (seg_id, version, seg_id),
            )
        if mode == "remove":
            con.execute(
                log + f"SELECT ?, ?, g.user_id, '-' FROM temp.given_ids g "
                f"WHERE EXISTS ({member}g.user_id)",
                (seg_id, version, seg_id),
            )
        if mode == "set":
            con.execute(
                log + "SELECT ?, ?, m.user_id, '-' FROM segment_members m "
                "WHERE m.segment_id = ? AND NOT EXISTS "
                "(SELECT 1 FROM temp.given_ids g WHERE g.user_id = m.user_id)",
                (seg_id, version, seg_id),
            )
        return Catalog._apply_changes(con, seg_id, version)

    @staticmethod
    def _apply_changes(con: sqlite3.Connection, seg_id: int, version: int) -> tuple[int, int]:
        """Apply the logged member changes of ``version``; (added, removed)."""
        added = con.execute(
            "INSERT INTO segment_members (segment_id, user_id) SELECT segment_id, user_id "
            "FROM segment_member_changes WHERE segment_id = ? AND version = ? AND change = '+'",
            (seg_id, version),
        ).rowcount
        removed = con.execute(
            "DELETE FROM segment_members WHERE segment_id = ? AND user_id IN (SELECT user_id "
            "FROM segment_member_changes WHERE segment_id = ? AND version = ? AND change = '-')",
            (seg_id, seg_id, version),
        ).rowcount
        return added, removed

    def _static(self, con: sqlite3.Connection, name: str) -> Segment:
        seg = self._live(con, name)
        if not seg.is_static:
            raise CatalogError(f"segment '{seg.name}' is dynamic: its rule decides its members")
        return seg

    def _members_changed(
        self, con: sqlite3.Connection, seg: Segment, expect_version: int | None, note: str
    ) -> Segment:
        self._bump(con, seg, expect_version)
        self._log(con, seg.id, "members", note)
        return self._row(con, seg.id)

    def set_members(
        self, name: str, user_ids: Iterable[Any], *, expect_version: int | None = None
    ) -> Segment:
        """Replace the members of a static segment."""
        with self._write() as con:
            seg = self._static(con, name)
            self._check_expect(seg, expect_version)
            ids = _id_series(user_ids).unique(maintain_order=True).to_list()
            self._change_members(con, seg.id, seg.version + 1, ids, "set")
            return self._members_changed(con, seg, expect_version, f"members set ({len(ids)})")

    def _edit_members(
        self,
        action: str,
        name: str,
        user_ids: Iterable[Any],
        known_ids: set[str] | pl.Series | None,
        expect_version: int | None,
    ) -> MembersReport:
        given = _id_series(user_ids)
        ids, report = _dedup_report(given)
        unknown = _unknown(ids, known_ids) if action == "add" else None
        with self._write() as con:
            seg = self._static(con, name)
            self._check_expect(seg, expect_version)
            added, removed = self._change_members(con, seg.id, seg.version + 1, ids, action)
            note = f"{added} added" if action == "add" else f"{removed} removed"
            seg = self._members_changed(con, seg, expect_version, note)
            changed = pl.Series(
                [r[0] for r in con.execute(
                    "SELECT user_id FROM segment_member_changes WHERE segment_id = ? "
                    "AND version = ?",
                    (seg.id, seg.version),
                )],
                dtype=pl.String,
            )
        # the ids the change left alone, in the order given
        given_ids = pl.Series(ids, dtype=pl.String)
        left_alone = given_ids.filter(~given_ids.is_in(changed.implode()))
        examples = {"already_members" if action == "add" else "not_members":
                    left_alone.head(EXAMPLES).to_list()}
        if unknown is not None:
            examples["unknown"] = unknown[1]
        return MembersReport(
            segment=seg.name,
            version=seg.version,
            member_count=int(seg.member_count or 0),
            action=action,
            rows=report["rows"],
            ids=report["members"],
            duplicates=report["duplicates"],
            added=added,
            already_members=left_alone.len() if action == "add" else 0,
            removed=removed,
            not_members=left_alone.len() if action == "remove" else 0,
            unknown=unknown[0] if unknown is not None else None,
            examples=examples,
        )

    def add_members(
        self,
        name: str,
        user_ids: Iterable[Any],
        *,
        known_ids: set[str] | pl.Series | None = None,
        expect_version: int | None = None,
    ) -> MembersReport:
        """Add ids to a static segment (version + 1; ids already in it are left alone).

        Ids not in ``known_ids`` (the store's users) are stored too, like uploads do,
        and counted as ``unknown``.
        """
        return self._edit_members("add", name, user_ids, known_ids, expect_version)

    def remove_members(
        self, name: str, user_ids: Iterable[Any], *, expect_version: int | None = None
    ) -> MembersReport:
        """Remove ids from a static segment (version + 1; ids not in it are counted as
        ``not_members`` and ignored)."""
        return self._edit_members("remove", name, user_ids, None, expect_version)

    def member_of(self, user_id: str) -> list[str]:
        """Names of the live static segments that store ``user_id``, sorted."""
        with self._read() as con:
            return [
                r[0]
                for r in con.execute(
                    "SELECT s.name FROM segments s JOIN segment_members m ON m.segment_id = s.id "
                    "WHERE m.user_id = ? AND s.deleted_at IS NULL ORDER BY s.name COLLATE NOCASE",
                    (str(user_id).strip(),),
                )
            ]

    def members(self, name: str) -> list[str]:
        """The sorted member ids of a static segment."""
        with self._read() as con:
            seg = self._static(con, name)
            return [
                r[0]
                for r in con.execute(
                    "SELECT user_id FROM segment_members WHERE segment_id = ? ORDER BY user_id",
                    (seg.id,),
                )
            ]

    def members_frame(self, name: str) -> pl.DataFrame:
        """The members of a static segment as a one-column ``user_id`` DataFrame."""
        return pl.DataFrame({"user_id": self.members(name)}, schema={"user_id": pl.String})

    def upload_static(
        self,
        name: str,
        source: Any,
        *,
        known_ids: set[str] | pl.Series | None = None,
        description: str = "",
        expect_version: int | None = None,
    ) -> dict[str, Any]:
        """Create a static segment from a CSV / id list, or replace its members.

        Parameters
        ----------
        name
            A new name creates a static segment; an existing static segment has
            its members replaced (and its description, if one is given).
        source
            Path, bytes or open file (see :func:`parse_ids_csv`); a ``list`` of ids
            is taken as is.
        known_ids
            The store's user ids; ids not among them are counted as ``unknown``
            (they are still stored: they may arrive with a later import).

        Returns
        -------
        dict
            ``segment, version, created, rows, members, duplicates, duplicate_ids,
            duplicate_examples, unknown, unknown_examples, header``.
        """
        if isinstance(source, (list, tuple, pl.Series)):
            ids, report = _dedup_report(_id_series(source))
            report.update(header=None, column=None)
        else:
            ids, report = parse_ids_csv(source)
        unknown, unknown_examples = _unknown(ids, known_ids) or (0, [])
        name = _check_name(name)
        with self._write() as con:
            row = con.execute(
                "SELECT id FROM segments WHERE name = ? AND deleted_at IS NULL", (name,)
            ).fetchone()
            created = row is None
            if created:
                if expect_version is not None:
                    raise ConflictError(
                        f"segment '{name}' was deleted or renamed by someone else; reload"
                    )
                now = _now()
                cur = con.execute(
                    "INSERT INTO segments (name, description, kind, created_at, updated_at, "
                    "version) VALUES (?, ?, 'static', ?, ?, 1)",
                    (name, description or "", now, now),
                )
                seg_id = int(cur.lastrowid)
                self._insert_members(con, seg_id, ids)
                self._log(con, seg_id, "create", f"uploaded {len(ids)} ids")
                seg = self._row(con, seg_id)
            else:
                seg = self._static(con, name)
                self._check_expect(seg, expect_version)
                self._change_members(con, seg.id, seg.version + 1, ids, "set")
                self._bump(
                    con, seg, expect_version, {"description": description} if description else None
                )
                self._log(con, seg.id, "members", f"uploaded {len(ids)} ids")
                seg = self._row(con, seg.id)
        return {
            "segment": seg.name,
            "version": seg.version,
            "created": created,
            **report,
            "unknown": unknown,
            "unknown_examples": unknown_examples,
        }

    # ------------------------------------------------------------------ channels
    @staticmethod
    def _seed_channels(con: sqlite3.Connection) -> None:
        con.executemany(
            "INSERT INTO channels (name, rule_text, description, position) VALUES (?, ?, ?, ?)",
            [(n, r, d, i) for i, (n, r, d) in enumerate(DEFAULT_CHANNELS)],
        )

    def channels(self) -> list[Channel]:
        """The reachability channels in display order (the four defaults at first)."""
        with self._read() as con:
            return [
                Channel(**dict(r))
                for r in con.execute(
                    "SELECT name, rule_text, description, position FROM channels "
                    "ORDER BY position, name"
                )
            ]

    def get_channel(self, name: str) -> Channel:
        """One channel or NotFoundError."""
        with self._read() as con:
            row = con.execute(
                "SELECT name, rule_text, description, position FROM channels WHERE name = ?",
                (str(name).strip(),),
            ).fetchone()
            if row is None:
                names = [r[0] for r in con.execute("SELECT name FROM channels")]
                raise NotFoundError(f"no channel named '{name}'{_suggest(name, names)}")
            return Channel(**dict(row))

    def set_channel(self, name: str, rule_text: str, description: str = "") -> Channel:
        """Add a channel (at the end) or change an existing one's rule and description."""
        name = _check_name(name, "channel")
        if not isinstance(rule_text, str) or not rule_text.strip():
            raise CatalogError(f"channel '{name}' needs a rule")
        with self._write() as con:
            con.execute(
                "INSERT INTO channels (name, rule_text, description, position) "
                "VALUES (?, ?, ?, (SELECT coalesce(max(position), -1) + 1 FROM channels)) "
                "ON CONFLICT (name) DO UPDATE SET rule_text = excluded.rule_text, "
                "description = excluded.description",
                (name, rule_text.strip(), description or ""),
            )
            row = con.execute(
                "SELECT name, rule_text, description, position FROM channels WHERE name = ?",
                (name,),
            ).fetchone()
            return Channel(**dict(row))

    def delete_channel(self, name: str) -> None:
        """Remove a channel or NotFoundError."""
        with self._write() as con:
            cur = con.execute("DELETE FROM channels WHERE name = ?", (str(name).strip(),))
            if cur.rowcount == 0:
                names = [r[0] for r in con.execute("SELECT name FROM channels")]
                raise NotFoundError(f"no channel named '{name}'{_suggest(name, names)}")

    def reset_channels(self) -> list[Channel]:
        """Replace all channels by the four defaults."""
        with self._write() as con:
            con.execute("DELETE FROM channels")
            self._seed_channels(con)
        return self.channels()

    # ------------------------------------------------------------------ funnels
    def save_funnel(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Save (insert or replace) a funnel definition; ``spec`` must be JSON-ready."""
        name = _check_name(name, "funnel")
        try:
            spec_json = json.dumps(spec, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise CatalogError(f"funnel '{name}' cannot be saved as JSON: {exc}") from None
        now = _now()
        with self._write() as con:
            con.execute(
                "INSERT INTO funnels (name, spec_json, created_at, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "spec_json = excluded.spec_json, updated_at = excluded.updated_at",
                (name, spec_json, now, now),
            )
        return self.get_funnel(name)

    @staticmethod
    def _funnel(row: sqlite3.Row) -> dict[str, Any]:
        return {
            "name": row["name"],
            "spec": json.loads(row["spec_json"]),
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }

    def funnels(self) -> list[dict[str, Any]]:
        """Saved funnels by name: dicts ``name, spec, created_at, updated_at``."""
        with self._read() as con:
            return [
                self._funnel(r)
                for r in con.execute("SELECT * FROM funnels ORDER BY name COLLATE NOCASE")
            ]

    def get_funnel(self, name: str) -> dict[str, Any]:
        """One saved funnel (see :meth:`funnels`) or NotFoundError."""
        with self._read() as con:
            row = con.execute(
                "SELECT * FROM funnels WHERE name = ?", (str(name).strip(),)
            ).fetchone()
            if row is None:
                names = [r[0] for r in con.execute("SELECT name FROM funnels")]
                raise NotFoundError(f"no funnel named '{name}'{_suggest(name, names)}")
            return self._funnel(row)

    def delete_funnel(self, name: str) -> None:
        """Remove a saved funnel or NotFoundError."""
        with self._write() as con:
            cur = con.execute("DELETE FROM funnels WHERE name = ?", (str(name).strip(),))
            if cur.rowcount == 0:
                raise NotFoundError(f"no funnel named '{name}'")


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
