"""Rules against a store: rule text (or tree JSON) -> a condition tree checked against
the store's schema (docs/rules.md). Every engine and analytic starts here.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from segcore.engine.plan import memo
from segcore.errors import RuleError, SegcoreError
from segcore.lang.printer import to_text
from segcore.lang.tree import Node, Schema, from_dict, from_json
from segcore.store.events import EventStore

_TYPE_NAMES = {
    pl.String: "string", pl.Categorical: "string", pl.Enum: "string", pl.Boolean: "bool",
    pl.Date: "date", pl.Datetime: "timestamp", pl.Float32: "float", pl.Float64: "float",
    pl.Decimal: "float", pl.Null: "null",
}


def type_name(dtype: pl.DataType) -> str | None:
    """The rule-language type of a Polars dtype (None: not usable in rules)."""
    if dtype.is_integer():
        return "int"
    if isinstance(dtype, pl.List) and dtype.inner in (pl.String, pl.Categorical, pl.Null):
        return "list"
    for cls, name in _TYPE_NAMES.items():
        if dtype == cls or isinstance(dtype, cls):
            return name
    return None


def schema_of(store: EventStore, *, check_names: bool = True) -> Schema:
    """The schema rules of ``store`` are checked against (cached per store version)."""
    has_catalog = check_names and store.catalog_path.exists()
    key = ("rule_schema", check_names, store.data_version(),
           store.catalog.data_version() if has_catalog else None)
    cache = store.memo
    if key in cache:
        return cache[key]
    users = {k: t for k, v in store.users_schema().items() if (t := type_name(v))}
    events = {k: t for k, v in store.events_schema().items() if (t := type_name(v))}
    names = segs = None
    if check_names:
        known = store.event_names()
        names = frozenset(known) if known else None
        if has_catalog:
            segs = frozenset(s.name for s in store.catalog.list())
    cache[key] = Schema(users=users, events=events, event_names=names, segments=segs)
    return cache[key]


def to_tree(store: EventStore, rule: Any) -> Node:
    """Rule text, a tree, or its JSON (dict or text) -> a condition tree."""
    if isinstance(rule, Node):
        return rule
    if isinstance(rule, dict):
        return _checked_tree(store, lambda: from_dict(rule))
    if isinstance(rule, str):
        stripped = rule.lstrip()
        if stripped.startswith("{") and '"kind"' in stripped:
            return _checked_tree(store, lambda: from_json(rule))
        from segcore.lang.parser import parse_rule  # sqlglot: only when text is parsed

        schema = schema_of(store)
        parsed = store.memo.setdefault("parse", {})
        # trees are immutable: one parse serves every caller of the same schema
        return memo(parsed, rule, schema, lambda: parse_rule(rule, schema))
    raise RuleError(f"a rule must be text or a condition tree, got {type(rule).__name__}")


def _checked_tree(store: EventStore, build: Any) -> Node:
    """A tree from JSON (untrusted), checked like typed text: printed, then parsed."""
    from segcore.lang.parser import parse_rule

    try:
        text = to_text(build())
    except SegcoreError:
        raise
    except (RecursionError, LookupError, TypeError, ValueError, AttributeError) as exc:
        raise RuleError(f"invalid condition tree JSON ({type(exc).__name__}: {exc})") from None
    try:
        return parse_rule(text, schema_of(store))
    except RuleError as err:  # positions would point into the printed text, not the JSON
        raise RuleError(f"{err.message} (in the condition tree JSON)") from None
