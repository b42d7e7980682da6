"""Saved funnels: a name and the funnel query's JSON."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from segcore.errors import CatalogError, NotFoundError
from segcore.store.catalog.names import check_name, now_text, suggest


class FunnelsMixin:
    """Saved funnels: a name and the funnel query's JSON."""

    # ------------------------------------------------------------------ funnels
    def save_funnel(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Save (insert or replace) a funnel definition; ``spec`` must be JSON-ready."""
        name = check_name(name, "funnel")
        try:
            spec_json = json.dumps(spec, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise CatalogError(f"funnel '{name}' cannot be saved as JSON: {exc}") from None
        now = now_text()
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
                raise NotFoundError(f"no funnel named '{name}'{suggest(name, names)}")
            return self._funnel(row)

    def delete_funnel(self, name: str) -> None:
        """Remove a saved funnel or NotFoundError."""
        with self._write() as con:
            cur = con.execute("DELETE FROM funnels WHERE name = ?", (str(name).strip(),))
            if cur.rowcount == 0:
                raise NotFoundError(f"no funnel named '{name}'")

