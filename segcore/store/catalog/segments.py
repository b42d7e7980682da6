"""Saved segments in the catalog: create, edit, rename, clone, delete, restore, revert, history."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from segcore.errors import CatalogError, ConflictError, NotFoundError
from segcore.store.catalog.names import check_name, now_text, quote_list, suggest
from segcore.store.catalog.records import Segment


class SegmentsMixin:
    """Saved segments in the catalog: create, edit, rename, clone, delete, restore, revert, history."""

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
        raise NotFoundError(f"no segment named '{name}'{suggest(name, names)}")

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
        sets["updated_at"] = now_text()
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
        name = check_name(name)
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
        now = now_text()
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
            changes["name"] = check_name(new_name)
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
        new_name = check_name(new_name)
        now = now_text()
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
                who = quote_list(users).replace(" or ", " and ")
                one = len(users) == 1
                raise CatalogError(
                    f"cannot delete segment '{seg.name}': "
                    f"{'segment' if one else 'segments'} {who} "
                    f"{'refers' if one else 'refer'} to it with in_segment('{seg.name}'); "
                    f"change or delete {'it' if one else 'them'} first"
                )
            self._bump(con, seg, expect_version, {"deleted_at": now_text()})
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
                raise NotFoundError(f"no deleted segment named '{name}'{suggest(name, names)}")
            seg = self._row(con, row[0])
            target = check_name(new_name) if new_name is not None else seg.name
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

