"""Saving segments: rules are parsed and checked before they reach the catalog; static
segments edited by hand (add, remove ids) and frozen from dynamic ones."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import polars as pl

from segcore.engine.polars.evaluate import to_tree
from segcore.errors import UsageError
from segcore.lang.dates import resolve_as_of
from segcore.lang.printer import to_text
from segcore.lang.tree import Node, to_json
from segcore.store.catalog import (
    ID_HEADERS,
    MembersReport,
    Segment,
    parse_ids_csv,
    parse_ids_text,
)
from segcore.store.events import EventStore
from segcore.store.ids import id_series


def known_ids(store: EventStore) -> pl.Series:
    """Every user id the store knows (users table and events)."""
    users = store.scan_users().select("user_id")
    ev = store.scan_events().select("user_id")
    return pl.concat([users, ev]).unique().collect()["user_id"]


def parse_pasted_ids(text: str) -> tuple[list[str], dict[str, Any]]:
    """Ids pasted by hand: separated by commas, semicolons, tabs or line breaks, in any mix
    (``u1, u2, u3`` on one line or several), or a CSV whose first line names an id column.

    Returns the unique ids in first-seen order and the report of
    :func:`segcore.store.catalog.parse_ids_text` plus ``blanks``: empty entries skipped
    (blank lines, ``a,,b``).
    """
    body = (text or "").strip()
    first = body.splitlines()[0] if body else ""
    if any(f.strip().strip('"').strip().casefold() in ID_HEADERS
           for f in re.split(r"[,;\t|]", first)):
        ids, report = parse_ids_text(body)
        return ids, {**report, "blanks": 0}
    tokens = pl.Series("user_id", re.split(r"[,;\t\r\n]", body) if body else [],
                       dtype=pl.String).str.strip_chars().str.strip_chars('"')
    blanks = int((tokens == "").sum())
    given = id_series(tokens.filter(tokens != ""))
    unique = given.unique(maintain_order=True)
    dups = given.filter(given.is_duplicated()).unique(maintain_order=True)
    return unique.to_list(), {
        "rows": given.len(), "members": unique.len(), "duplicates": given.len() - unique.len(),
        "duplicate_ids": dups.len(), "duplicate_examples": dups.head(5).to_list(),
        "header": None, "column": None, "blanks": blanks,
    }


def _rule_fields(store: EventStore, rule: Any) -> tuple[str, str]:
    """Rule text and tree JSON of a checked rule (the catalog checks its references:
    missing segments, cycles and nesting depth, see ``segcore.lang.references``)."""
    tree: Node = to_tree(store, rule)
    text = rule if isinstance(rule, str) and not rule.lstrip().startswith("{") else to_text(tree)
    return text.strip(), to_json(tree)


def create_segment(store: EventStore, name: str, rule: Any = None, *, ids: Any = None,
                   description: str = "") -> tuple[Segment, dict[str, Any] | None]:
    """Save a dynamic segment (``rule``) or a static one (``ids``: file path, CSV bytes,
    pasted text or a list). Returns the segment and, for static ones, the upload report
    (rows, duplicates, unknown ids)."""
    if (rule is None) == (ids is None):
        raise UsageError("give either a rule or a list of ids")
    if rule is not None:
        text, tree_json = _rule_fields(store, rule)
        seg = store.catalog.create(name, rule_text=text, rule_json=tree_json,
                                   description=description)
        return seg, None
    source = ids
    if isinstance(ids, str | Path) and Path(ids).suffix and not Path(ids).exists():
        raise UsageError(f"ids file {str(ids)!r} does not exist")
    report = store.catalog.upload_static(name, source, known_ids=known_ids(store),
                                         description=description)
    return store.catalog.get(report.get("segment", name)), report


def edit_segment(store: EventStore, name: str, *, rule: Any = None, description: str | None = None,
                 new_name: str | None = None, expect_version: int | None = None) -> Segment:
    """Change a segment's rule, description or name (a stale ``expect_version`` is a
    ConflictError)."""
    fields: dict[str, Any] = {}
    if rule is not None:
        text, tree_json = _rule_fields(store, rule)
        fields.update(rule_text=text, rule_json=tree_json)
    if description is not None:
        fields["description"] = description
    if new_name is not None:
        fields["new_name"] = new_name
    if not fields:
        raise UsageError("nothing to change: give a rule, a description or a new name")
    return store.catalog.edit(name, expect_version=expect_version, **fields)


def _given_ids(ids: Any = None, ids_file: Any = None) -> list[Any]:
    """Ids given as a list and/or an ids file (CSV with a user_id column, or one per line)."""
    if isinstance(ids, str):
        ids = [ids]
    given: list[Any] = [] if ids is None else list(ids)
    if ids_file is not None:
        path = Path(ids_file) if isinstance(ids_file, str | Path) else None
        if path is not None and not path.exists():
            raise UsageError(f"ids file {str(ids_file)!r} does not exist")
        from_file, _ = parse_ids_csv(ids_file)
        given += from_file
    if not given:
        raise UsageError("give the user ids to add or remove (or an ids file)")
    return given


def add_members(store: EventStore, name: str, ids: Any = None, *, ids_file: Any = None,
                expect_version: int | None = None) -> MembersReport:
    """Add ids to a static segment; ids the store does not know are stored too (they may
    arrive with a later import, as with uploads) and counted as ``unknown``."""
    given = _given_ids(ids, ids_file)
    return store.catalog.add_members(name, given, known_ids=known_ids(store),
                                     expect_version=expect_version)


def remove_members(store: EventStore, name: str, ids: Any = None, *, ids_file: Any = None,
                   expect_version: int | None = None) -> MembersReport:
    """Remove ids from a static segment (ids that are not members are counted, ignored)."""
    return store.catalog.remove_members(name, _given_ids(ids, ids_file),
                                        expect_version=expect_version)


def freeze_segment(store: EventStore, name: str, new_name: str, *, as_of: Any = None,
                   description: str | None = None) -> Segment:
    """A new static segment holding the members of ``name`` at ``as_of`` (default now):
    a fixed list for a one-time campaign, no longer following the rule."""
    T = resolve_as_of(as_of)
    with store.pinned():
        seg = store.catalog.get(name)
        ids = store.members(segment=seg.name, as_of=T)["user_id"]
    when = T.isoformat().replace("+00:00", "Z")
    return store.catalog.create(
        new_name, kind="static", members=ids,
        description=(f"members of '{seg.name}' (version {seg.version}) as of {when}"
                     if description is None else description),
        note=f"frozen from '{seg.name}' version {seg.version} as of {when}",
    )
