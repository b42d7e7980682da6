"""Reachability channels: a name and an attribute rule each."""

from __future__ import annotations

import sqlite3

from segcore.errors import CatalogError, NotFoundError
from segcore.store.catalog.names import check_name, suggest
from segcore.store.catalog.records import Channel
from segcore.store.catalog.schema import DEFAULT_CHANNELS


class ChannelsMixin:
    """Reachability channels: a name and an attribute rule each."""

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
                raise NotFoundError(f"no channel named '{name}'{suggest(name, names)}")
            return Channel(**dict(row))

    def set_channel(self, name: str, rule_text: str, description: str = "") -> Channel:
        """Add a channel (at the end) or change an existing one's rule and description."""
        name = check_name(name, "channel")
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
                raise NotFoundError(f"no channel named '{name}'{suggest(name, names)}")

    def reset_channels(self) -> list[Channel]:
        """Replace all channels by the four defaults."""
        with self._write() as con:
            con.execute("DELETE FROM channels")
            self._seed_channels(con)
        return self.channels()

