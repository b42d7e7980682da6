"""Bearer tokens of the membership service (``segcore token ...``, docs/service.md).

Tokens live in the store's catalog file (``<home>/catalog.sqlite``) in a table of their
own, ``service_tokens``: only the SHA-256 of a token is stored, so a token is shown once,
when it is created, and cannot be read back. A token has a ``scope``: ``read`` (every
lookup) or ``admin`` (also the service's own settings: tokens, refreshes). Revoking a
token deletes its row; a revoked token stops working on the next request.

The table is created on first use; the catalog's own schema and data version are not
touched, so creating a token never invalidates cached segment results. Checking a token
only reads (the service records when a token was last used in its own state database,
``segcore.service.state``), so requests never change the catalog file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import hmac
import secrets
import sqlite3
from collections.abc import Iterator
from typing import Any

from segcore.errors import CatalogError, NotFoundError, UsageError
from segcore.store.catalog import Catalog

SCOPES = ("read", "admin")
PREFIX = "sgc_"  # tokens are recognisable in logs and secret scanners
MAX_NAME = 100

_SCHEMA = """
CREATE TABLE IF NOT EXISTS service_tokens (
    name       TEXT PRIMARY KEY COLLATE NOCASE,
    hash       TEXT NOT NULL UNIQUE,
    scope      TEXT NOT NULL CHECK (scope IN ('read', 'admin')),
    created_at TEXT NOT NULL
)
"""


@dataclasses.dataclass(frozen=True)
class Token:
    """A token's record (never the token itself)."""

    name: str
    scope: str
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace(
        "+00:00", "Z")


def token_hash(token: str) -> str:
    """The stored form of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Tokens(Catalog):
    """The tokens kept in the catalog at ``path`` (the catalog's connections: WAL, busy
    timeout, read-only stores and clear errors; writes do not bump its data version)."""

    @contextlib.contextmanager
    def _db(self, *, write: bool = False) -> Iterator[sqlite3.Connection | None]:
        """A connection; None when there are no tokens yet and ``write`` is off (reading
        never creates the table, so it works on a read-only store)."""
        with self._connect() as con:
            if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'service_tokens'"
                           ).fetchone() is None:
                if not write:
                    yield None
                    return
                con.execute(_SCHEMA)
            yield con

    def create(self, name: str, scope: str = "read") -> str:
        """Create token ``name`` and return the token (shown once; only its hash is kept)."""
        name = (name or "").strip()
        if not name or len(name) > MAX_NAME:
            raise UsageError(f"a token name must be 1 to {MAX_NAME} characters")
        if scope not in SCOPES:
            raise UsageError(f"bad scope {scope!r}: use read or admin")
        token = PREFIX + secrets.token_urlsafe(32)
        with self._db(write=True) as con:
            assert con is not None
            if con.execute("SELECT 1 FROM service_tokens WHERE name = ?", (name,)).fetchone():
                raise CatalogError(f"a token named {name!r} exists; revoke it first")
            con.execute("INSERT INTO service_tokens (name, hash, scope, created_at) "
                        "VALUES (?, ?, ?, ?)", (name, token_hash(token), scope, _now()))
        return token

    def list(self) -> list[Token]:
        """Every token's record, by name."""
        with self._db() as con:
            if con is None:
                return []
            rows = con.execute("SELECT name, scope, created_at FROM service_tokens "
                               "ORDER BY name COLLATE NOCASE").fetchall()
        return [Token(r["name"], r["scope"], r["created_at"]) for r in rows]

    def revoke(self, name: str) -> None:
        """Delete token ``name`` (NotFoundError if there is none)."""
        with self._db() as con:
            if con is None or con.execute("DELETE FROM service_tokens WHERE name = ?",
                                          (name,)).rowcount == 0:
                raise NotFoundError(f"no token named {name!r}")

    def check(self, token: str) -> Token | None:
        """The record of ``token`` if it is valid, else None (a read only)."""
        digest = token_hash(token)
        with self._db() as con:
            row = None if con is None else con.execute(
                "SELECT name, hash, scope, created_at FROM service_tokens WHERE hash = ?",
                (digest,)).fetchone()
        if row is None or not hmac.compare_digest(row["hash"], digest):
            return None
        return Token(row["name"], row["scope"], row["created_at"])
