"""The members of static segments: stored ids, edits logged per version, uploads."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

import polars as pl

from segcore.errors import CatalogError, ConflictError
from segcore.store.catalog.id_lists import dedup_report, id_list_series, parse_ids_csv, unknown_ids
from segcore.store.catalog.names import check_name, now_text
from segcore.store.catalog.records import MembersReport, Segment
from segcore.store.catalog.schema import EXAMPLES


class StaticMembersMixin:
    """The members of static segments: stored ids, edits logged per version, uploads."""

    # ------------------------------------------------------------------ static members
    @staticmethod
    def _insert_members(con: sqlite3.Connection, seg_id: int, ids: Iterable[Any]) -> None:
        """Add ids to a new static segment (version 1), logged like every member change.

        Call inside the write transaction: if ``ids`` fails half-way, nothing is kept.
        """
        StaticMembersMixin._change_members(con, seg_id, 1, id_list_series(ids).to_list(), "add")

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
        return StaticMembersMixin._apply_changes(con, seg_id, version)

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
            ids = id_list_series(user_ids).unique(maintain_order=True).to_list()
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
        given = id_list_series(user_ids)
        ids, report = dedup_report(given)
        unknown = unknown_ids(ids, known_ids) if action == "add" else None
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
            ids, report = dedup_report(id_list_series(source))
            report.update(header=None, column=None)
        else:
            ids, report = parse_ids_csv(source)
        unknown, unknown_examples = unknown_ids(ids, known_ids) or (0, [])
        name = check_name(name)
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
                now = now_text()
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

