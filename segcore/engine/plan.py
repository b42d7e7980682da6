"""The backend-neutral plan of a rule: the decisions every engine makes the same way.

The Polars evaluator (:mod:`segcore.engine.polars.evaluate`), the one-pass trend grid
(:mod:`segcore.analytics.trend`) and the SQL compiler (:mod:`segcore.engine.sql.compiler`)
all take these from here, so each rule of the semantics (docs/rules.md) is written once:

- which saved segment a name means, and the ``in_segment`` cycle and depth guards at
  evaluation (:func:`resolve_segment`; the catalog keeps the graph sound on every change,
  :mod:`segcore.lang.references`);
- a static segment's members at T are its stored ids that are in the universe at T
  (in the users table, or with an event before T) -- :data:`STATIC_MEMBERS`;
- the events a behavioural term reads: its event name, window bounds ``[lo, hi)`` at T
  and the columns it needs (:func:`term_event`, :func:`window_bounds`,
  :func:`event_columns`, :func:`prefilter_bounds`, :func:`event_windows`);
- the value of an aggregate for a user without matching events (:func:`default_value`)
  and the columns naming each term (:func:`term_columns`);
- the null-row decision: whether a user with no attributes and no matching events can
  be a member, in which case an engine must start from the whole universe
  (:func:`needs_universe`).

Constant window bounds and the null row are computed with Polars expressions on one
row (a calculator, not a scan): the SQL compiler gets the same answers as the
evaluator by construction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import polars as pl

from segcore.engine.polars.expressions import TS, Ctx, constant_instant, to_expr
from segcore.errors import CatalogError, RuleError
from segcore.lang.dates import current_zone
from segcore.lang.references import MAX_SEGMENT_DEPTH
from segcore.lang.tree import (
    AGGREGATES,
    And,
    Behavior,
    Call,
    Col,
    InSegment,
    Lit,
    Node,
    Schema,
    Sequence,
    behaviours,
    conj,
    from_json,
    segment_refs,
)
from segcore.lang.types import type_of

STATIC_MEMBERS = (
    "a static segment's members at T are its stored ids that are in the universe at T: "
    "in the users table, or with an event before T"
)


# --------------------------------------------------------------------------- segments
@dataclass(frozen=True)
class SavedSegment:
    """A saved segment resolved for evaluation: ``tree`` for a dynamic one (None for a
    static one) and ``stack``, the chain of segments that led here (itself included)."""

    name: str
    kind: str
    tree: Node | None
    stack: tuple[str, ...]


def get_segment(store: Any, name: str) -> Any:
    """The catalog's segment ``name``; an unknown name is a RuleError."""
    if not store.catalog_path.exists():
        raise RuleError(f"unknown segment {name!r} (no segments are saved yet)")
    try:
        return store.catalog.get(name)
    except CatalogError as exc:
        raise RuleError(str(exc)) from None


def resolve_segment(store: Any, name: str, stack: tuple[str, ...] = ()) -> SavedSegment:
    """``name`` reached through ``stack``: checks cycles and depth, parses the rule."""
    seg = get_segment(store, name)
    if seg.name in stack:
        raise RuleError(f"segment cycle: {' -> '.join((*stack, seg.name))}")
    if len(stack) >= MAX_SEGMENT_DEPTH:
        raise RuleError(f"segments nested more than {MAX_SEGMENT_DEPTH} levels deep")
    if seg.kind == "static":
        return SavedSegment(seg.name, "static", None, (*stack, seg.name))
    if not seg.rule_json:
        raise CatalogError(f"segment {seg.name!r} has no rule")
    return SavedSegment(seg.name, "dynamic", from_json(seg.rule_json), (*stack, seg.name))


# --------------------------------------------------------------------------- terms
def term_event(node: Behavior | Sequence, then: bool = False) -> str:
    """The event name a term reads (``*``: any); ``then``: a sequence's B event."""
    if then:
        return node.then
    return getattr(node, "event", None) or node.first


def window_bounds(node: Behavior | Sequence, T: dt.datetime,
                  schema: Schema) -> tuple[dt.datetime | None, dt.datetime]:
    """``[lo, hi)`` of the events a behavioural term counts at T (lo None: unbounded)."""
    hi = T
    lo = None
    if node.within is not None:
        lo = T - dt.timedelta(microseconds=node.within)
    if node.since is not None:
        lo = constant_instant(node.since, T, schema)
    if node.until is not None:
        until = constant_instant(node.until, T, schema)
        hi = min(hi, until) if until is not None else hi
    return lo, hi


def prefilter_bounds(nodes: Iterable[Behavior | Sequence], T: dt.datetime,
                     schema: Schema) -> tuple[list[str] | None, dt.datetime | None]:
    """Event names (None: any event) and earliest instant that any of ``nodes`` reads."""
    names: set[str] = set()
    lows: list[dt.datetime | None] = []
    for n in nodes:
        if isinstance(n, Sequence):
            names |= {n.first, n.then}
            lows.append(None)
        else:
            names.add(n.event)
            lows.append(window_bounds(n, T, schema)[0])
    since = min(lows) if lows and all(lo is not None for lo in lows) else None  # type: ignore[type-var]
    return (None if "*" in names else sorted(names)), since


def event_windows(nodes: Iterable[Behavior | Sequence], T: dt.datetime,
                  schema: Schema) -> dict[str, dt.datetime | None]:
    """Per event name ``nodes`` read: the earliest instant any of them reads (None:
    unbounded), so each event is read once, over the widest window of its terms."""
    lows: dict[str, list[dt.datetime | None]] = {}
    for n in nodes:
        if isinstance(n, Sequence):
            for e in (n.first, n.then):
                lows.setdefault(e, []).append(None)
        else:
            lows.setdefault(n.event, []).append(window_bounds(n, T, schema)[0])
    return {e: None if any(lo is None for lo in v) else min(v)  # type: ignore[type-var]
            for e, v in lows.items()}


def event_columns(nodes: Iterable[Behavior | Sequence], *, with_user: bool = True) -> list[str]:
    """The event columns behavioural terms read (key columns, properties, filters).
    ``with_user=False`` leaves out the ``user_id`` key unless a filter reads it: the Polars
    evaluator asks for its own key (``USER_KEY``, ``USER_CODE``), so the event cache never
    derives the strings of a whole event for it."""
    cols = ["user_id", "event", "ts"] if with_user else ["event", "ts"]
    for n in nodes:
        if getattr(n, "prop", None):
            cols.append(n.prop)
        for w in (n.where, getattr(n, "then_where", None)):
            if w is not None:
                cols.extend(c.name for c in w.walk() if isinstance(c, Col))
    return list(dict.fromkeys(cols))


def time_dependent(node: Node) -> bool:
    """Whether ``node``'s value can change with T: it reads events, segments or the clock."""
    return any(
        isinstance(n, Behavior | Sequence | InSegment)
        or (isinstance(n, Call) and n.name in ("now", "today"))
        for n in node.walk()
    )


def conjuncts(tree: Node) -> list[Node]:
    """The operands of the root's AND (nested ANDs flattened); ``[tree]`` for any other node."""
    return [c for a in tree.args for c in conjuncts(a)] if isinstance(tree, And) else [tree]


def static_conjuncts(tree: Node) -> list[Node]:
    """Conjuncts at the root that read only attributes (``user_id`` aside): every member
    passes them, whatever its events."""
    return [
        c
        for c in conjuncts(tree)
        if not isinstance(c, Lit) and not time_dependent(c) and "user_id" not in tree_columns(c)
    ]


def users_first(tree: Node, schema: Schema, T: dt.datetime) -> list[Node]:
    """The static conjuncts of ``tree`` when a user missing from the users table (the
    null row) fails them: the members are then users of that table who pass them, so an
    evaluator may start from those users alone. Empty when there are none, or when the
    null row passes (such users can be members too)."""
    static = static_conjuncts(tree)
    if not static or null_row_member(conj(*static), schema, T, {}, {}):
        return []
    return static


def tree_columns(tree: Node) -> set[str]:
    """User attribute columns a tree reads (outside event filters)."""
    out: set[str] = set()
    stack = [tree]
    while stack:
        n = stack.pop()
        if isinstance(n, Col):
            out.add(n.name)
        elif not isinstance(n, Behavior | Sequence):
            stack.extend(n.children())
    return out


def default_value(node: Behavior) -> Any:
    """The value of a behavioural aggregate for a user with no matching event."""
    return AGGREGATES[node.func][1]


@dataclass(frozen=True)
class TermColumns:
    """A rule's terms and the column naming each: aggregates ``__b<i>``, sequences
    ``__s<i>``, segment references ``__g<i>`` (in sorted name order)."""

    aggregates: tuple[Behavior, ...]
    sequences: tuple[Sequence, ...]
    segments: tuple[str, ...]
    columns: dict[Node, str]
    defaults: dict[str, Any]


def term_columns(tree: Node) -> TermColumns:
    """The terms of ``tree`` with their column names and no-event values."""
    terms = behaviours(tree)
    aggs = tuple(n for n in terms if isinstance(n, Behavior))
    seqs = tuple(n for n in terms if isinstance(n, Sequence))
    refs = tuple(sorted(segment_refs(tree)))
    columns: dict[Node, str] = {}
    defaults: dict[str, Any] = {}
    for i, n in enumerate(aggs):
        columns[n] = f"__b{i}"
        defaults[f"__b{i}"] = default_value(n)
    for i, s in enumerate(seqs):
        columns[s] = f"__s{i}"
        defaults[f"__s{i}"] = False
    for i, ref in enumerate(refs):
        columns[InSegment(ref)] = f"__g{i}"
        defaults[f"__g{i}"] = False
    return TermColumns(aggs, seqs, refs, columns, defaults)


def constant_value(node: Node, T: dt.datetime, schema: Schema, scope: str = "user") -> Any:
    """The value at T of a sub-expression that reads no column (engines write it as a
    literal): computed once here, the same for every engine."""
    return pl.select(to_expr(node, Ctx(T, schema, scope)).alias("v")).item()


# --------------------------------------------------------------------------- null row
_NULL_ROW_CACHE: dict[tuple, tuple[Schema, bool]] = {}


def memo(cache: dict, key: Any, schema: Schema, compute: Callable[[], Any]) -> Any:
    """``compute()`` kept in ``cache`` under ``key`` while ``schema`` is the same object
    (a new store version makes a new one); at most 512 entries."""
    hit = cache.get(key)
    if hit is not None and hit[0] is schema:
        return hit[1]
    value = compute()
    if len(cache) >= 512:
        cache.clear()
    cache[key] = (schema, value)
    return value


def null_row_member(tree: Node, schema: Schema, T: dt.datetime,
                    columns: dict[Node, str], defaults: dict[str, Any]) -> bool:
    """Would a user with no attributes and no matching events be a member? (memoised)"""
    key = (tree, T, current_zone(), tuple(columns.items()), tuple(defaults.items()))
    try:
        hash(key)
    except TypeError:  # an unhashable default: no memo
        return _null_row_eval(tree, schema, T, columns, defaults)
    return memo(_NULL_ROW_CACHE, key, schema,
                lambda: _null_row_eval(tree, schema, T, columns, defaults))


def needs_universe(tree: Node, schema: Schema, T: dt.datetime, terms: TermColumns) -> bool:
    """Must the members be looked for in the whole universe at T?

    True when a user with no attributes and no matching event is a member (the null
    row), and when the rule reads ``user_id`` (never NULL, so the null row cannot tell).
    Otherwise only users with attributes or with a term's rows can be members.
    """
    return "user_id" in tree_columns(tree) or null_row_member(
        tree, schema, T, terms.columns, terms.defaults)


def _null_row_eval(tree: Node, schema: Schema, T: dt.datetime,
                   columns: dict[Node, str], defaults: dict[str, Any]) -> bool:
    row: dict[str, pl.Series] = {}
    for name in tree_columns(tree):
        dtype = polars_dtype(schema.users.get(name, "null"))
        row[name] = pl.Series(name, [None], dtype=dtype)
    kinds = {c: n for n, c in columns.items()}
    for name, value in defaults.items():
        # a NULL default (first_seen, event_avg...) keeps its type: NULL + interval is valid
        dtype = polars_dtype(type_of(kinds[name], schema)) if value is None else None
        row[name] = pl.Series(name, [value], dtype=dtype)
    frame = pl.DataFrame(row) if row else pl.DataFrame({"_": [0]})
    out = frame.select(to_expr(tree, Ctx(T, schema, columns=columns)).alias("m")).item()
    return out is True


def polars_dtype(t: str) -> pl.DataType:
    """The Polars dtype holding values of rule type ``t`` (unknown: String)."""
    return {"int": pl.Int64(), "float": pl.Float64(), "bool": pl.Boolean(),
            "string": pl.String(), "date": pl.Date(), "timestamp": TS,
            "list": pl.List(pl.String)}.get(t, pl.String())
