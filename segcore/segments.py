"""Saving segments: rules are parsed and checked before they reach the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from segcore.catalog import Segment
from segcore.errors import UsageError
from segcore.evaluate import to_tree
from segcore.printer import to_text
from segcore.store import Store
from segcore.tree import Node, to_json


def known_ids(store: Store) -> pl.Series:
    """Every user id the store knows (users table and events)."""
    users = store.scan_users().select("user_id")
    ev = store.scan_events().select("user_id")
    return pl.concat([users, ev]).unique().collect()["user_id"]


def _rule_fields(store: Store, rule: Any) -> tuple[str, str]:
    """Rule text and tree JSON of a checked rule (the catalog checks its references:
    missing segments, cycles and nesting depth, see ``segcore.references``)."""
    tree: Node = to_tree(store, rule)
    text = rule if isinstance(rule, str) and not rule.lstrip().startswith("{") else to_text(tree)
    return text.strip(), to_json(tree)


def create_segment(store: Store, name: str, rule: Any = None, *, ids: Any = None,
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


def edit_segment(store: Store, name: str, *, rule: Any = None, description: str | None = None,
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
