"""The visual segment builder's model and its mapping to and from condition trees.

A model is ``{"op": "and"|"or", "groups": [{"op": "and"|"or", "rows": [row, ...]}]}``;
a row is one of:

- ``{"kind": "attribute", "column", "op", "value"}`` (ops in :data:`ATTR_OPS`)
- ``{"kind": "event", "did": bool, "event", "measure": "any"|"count"|"sum", "cmp",
  "amount", "prop", "within": [n, unit], "where": text}``
- ``{"kind": "first", "event", "within": [n, unit]}`` (first time, in the last n units)
- ``{"kind": "sequence", "then_not": bool, "first", "then", "gap": [n, unit],
  "within": [n, unit]}``
- ``{"kind": "segment", "member": bool, "name"}``

``within`` ``[0, "days"]`` means all time. :func:`to_tree` builds the condition tree
(printed with :func:`segcore.lang.printer.to_text`); :func:`from_tree` maps the shapes the
builder can show back to a model and returns None for anything else (an "advanced"
rule, edited as text).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from segcore.errors import RuleError
from segcore.lang import durations
from segcore.lang.parser import parse_event_filter
from segcore.lang.printer import to_text
from segcore.lang.tree import (
    And,
    Arith,
    Behavior,
    Call,
    Col,
    Compare,
    InList,
    InSegment,
    IsBool,
    IsNull,
    Lit,
    Node,
    Not,
    Or,
    Schema,
    Sequence,
)

UNITS = {f"{u}s": durations.UNIT_US[u] for u in ("minute", "hour", "day", "week")}
CMP_OPS = ["=", "!=", ">", ">=", "<", "<="]
ATTR_OPS = CMP_OPS + [
    "in",
    "not in",
    "contains",
    "starts with",
    "in the last",
    "is set",
    "is not set",
    "is true",
    "is false",
]
NO_VALUE_OPS = {"is set", "is not set", "is true", "is false"}
KINDS = {
    "attribute": "User attribute",
    "event": "Did / did not do an event",
    "first": "Did an event for the first time",
    "sequence": "Did one event then (not) another",
    "segment": "In / not in another segment",
}


def new_row(kind: str, schema: Schema) -> dict[str, Any]:
    """A fresh row of ``kind`` with sensible defaults from ``schema``."""
    events = sorted(schema.event_names or []) or ["*"]
    if kind == "attribute":
        cols = [c for c in schema.users if c != "user_id"] or ["user_id"]
        return {"kind": kind, "column": cols[0], "op": "=", "value": ""}
    if kind == "event":
        return {
            "kind": kind,
            "did": True,
            "event": events[0],
            "measure": "any",
            "cmp": ">=",
            "amount": 1,
            "prop": None,
            "within": [30, "days"],
            "where": "",
        }
    if kind == "first":
        return {"kind": kind, "event": events[0], "within": [7, "days"]}
    if kind == "sequence":
        then = events[1] if len(events) > 1 else events[0]
        return {
            "kind": kind,
            "then_not": False,
            "first": events[0],
            "then": then,
            "gap": [1, "days"],
            "within": [30, "days"],
        }
    if kind == "segment":
        return {"kind": kind, "member": True, "name": sorted(schema.segments or [""])[0]}
    raise ValueError(f"unknown row kind {kind!r}")


def empty_model() -> dict[str, Any]:
    return {"op": "and", "groups": [{"op": "and", "rows": []}]}


# ---------------------------------------------------------------------- model -> tree
def _span(value: list | tuple | None) -> int | None:
    if not value or not value[0]:
        return None
    n, unit = value
    return int(n) * UNITS[unit]


def _lit(text: Any, typ: str, column: str) -> Lit:
    raw = str(text).strip()
    try:
        if typ == "int":
            return Lit(int(raw), "int")
        if typ == "float":
            return Lit(int(raw), "int") if raw.lstrip("-").isdigit() else Lit(float(raw), "float")
        if typ == "bool":
            return Lit(raw.lower() in ("true", "1", "yes"), "bool")
        if typ == "date":
            return Lit(dt.date.fromisoformat(raw).isoformat(), "date")
        if typ == "timestamp":
            if len(raw) == 10:
                return Lit(dt.date.fromisoformat(raw).isoformat(), "date")
            return Lit(dt.datetime.fromisoformat(raw.replace("Z", "")).isoformat(), "timestamp")
    except ValueError:
        raise RuleError(f"{column}: {raw!r} is not a valid {typ} value") from None
    return Lit(raw, "string")


def _attribute(row: dict[str, Any], schema: Schema) -> Node:
    col, op, value = row["column"], row["op"], row.get("value", "")
    if col not in schema.users:
        raise RuleError(f"unknown attribute {col!r}")
    typ = schema.users[col]
    c = Col(col)
    if op == "is set":
        return IsNull(c, negated=True)
    if op == "is not set":
        return IsNull(c)
    if op in ("is true", "is false"):
        return c if op == "is true" else Not(c)
    if op == "in the last":
        span = _span(_parse_span(value))
        if span is None:
            raise RuleError(f"{col}: write a duration such as '14 days'")
        return Compare(">=", c, Arith("-", Call("now", ()), Lit(span, "interval")))
    if op in ("in", "not in"):
        items = [v.strip() for v in str(value).split(",") if v.strip()]
        if not items:
            raise RuleError(f"{col}: give at least one value (comma-separated)")
        return InList(c, tuple(_lit(v, typ, col) for v in items), negated=op == "not in")
    if op in ("contains", "starts with"):
        return Call(
            "contains" if op == "contains" else "starts_with", (c, Lit(str(value), "string"))
        )
    if op in CMP_OPS:
        if str(value).strip() == "":
            raise RuleError(f"{col}: give a value to compare with")
        return Compare(op, c, _lit(value, typ, col))
    raise RuleError(f"unknown operator {op!r}")


def _parse_span(text: Any) -> list | None:
    parts = str(text).split()
    if len(parts) != 2 or not parts[0].isdigit() or len(parts[0]) > 18:
        return None
    unit = f"{durations.unit_of(parts[1])}s"
    return [int(parts[0]), unit] if unit in UNITS else None


def _where(text: str | None, schema: Schema) -> Node | None:
    if not text or not str(text).strip():
        return None
    return parse_event_filter(str(text), schema)


def _event(row: dict[str, Any], schema: Schema) -> Node:
    within, where = _span(row.get("within")), _where(row.get("where"), schema)
    measure = row.get("measure", "any")
    if measure == "any":
        node: Node = Behavior("did", row["event"], within=within, where=where)
    else:
        func = "event_count" if measure == "count" else "event_sum"
        prop = row.get("prop") if measure == "sum" else None
        if measure == "sum" and not prop:
            raise RuleError("choose the property to sum")
        amount = float(row.get("amount") or 0)
        lit = Lit(int(amount), "int") if amount == int(amount) else Lit(amount, "float")
        node = Compare(
            row.get("cmp", ">="),
            Behavior(func, row["event"], prop=prop, within=within, where=where),
            lit,
        )
    return node if row.get("did", True) else Not(node)


def _row_tree(row: dict[str, Any], schema: Schema) -> Node:
    kind = row["kind"]
    if kind == "attribute":
        return _attribute(row, schema)
    if kind == "event":
        return _event(row, schema)
    if kind == "first":
        span = _span(row.get("within")) or 7 * UNITS["days"]
        return Compare(
            ">=",
            Behavior("first_seen", row["event"]),
            Arith("-", Call("now", ()), Lit(span, "interval")),
        )
    if kind == "sequence":
        gap = _span(row.get("gap"))
        if gap is None:
            raise RuleError("the time between the two events must be more than 0")
        return Sequence(
            "did_then_not" if row.get("then_not") else "did_then",
            row["first"],
            row["then"],
            gap,
            within=_span(row.get("within")),
        )
    if kind == "segment":
        if not row.get("name"):
            raise RuleError("choose a segment")
        node = InSegment(row["name"])
        return node if row.get("member", True) else Not(node)
    raise RuleError(f"unknown condition kind {kind!r}")


def _combine(op: str, parts: list[Node]) -> Node | None:
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return And(tuple(parts)) if op == "and" else Or(tuple(parts))


def to_tree(model: dict[str, Any], schema: Schema) -> Node | None:
    """The condition tree of a model (None when it has no rows)."""
    groups = []
    for g in model.get("groups", []):
        node = _combine(g.get("op", "and"), [_row_tree(r, schema) for r in g.get("rows", [])])
        if node is not None:
            groups.append(node)
    return _combine(model.get("op", "and"), groups)


def to_rule_text(model: dict[str, Any], schema: Schema) -> str:
    """The rule text of a model (``''`` when it has no rows)."""
    tree = to_tree(model, schema)
    return "" if tree is None else to_text(tree)


# ---------------------------------------------------------------------- tree -> model
def _span_back(us: int | None) -> list:
    if not us:
        return [0, "days"]
    for unit in ("days", "hours", "minutes"):
        if us % UNITS[unit] == 0:
            return [us // UNITS[unit], unit]
    raise _Unsupported


class _Unsupported(Exception):
    pass


def _lit_text(node: Node) -> str:
    if not isinstance(node, Lit) or node.type in ("interval", "null"):
        raise _Unsupported
    if node.type == "bool":
        return "true" if node.value else "false"
    return str(node.value)


def _now_minus(node: Node) -> int:
    if (
        isinstance(node, Arith)
        and node.op == "-"
        and isinstance(node.left, Call)
        and node.left.name == "now"
        and isinstance(node.right, Lit)
        and node.right.type == "interval"
    ):
        return int(node.right.value)
    raise _Unsupported


def _plain(b: Behavior) -> bool:
    return b.since is None and b.until is None and b.period is None


def _event_back(node: Node, did: bool) -> dict[str, Any]:
    if isinstance(node, Behavior) and node.func == "did" and _plain(node):
        return {
            "kind": "event",
            "did": did,
            "event": node.event,
            "measure": "any",
            "cmp": ">=",
            "amount": 1,
            "prop": None,
            "within": _span_back(node.within),
            "where": to_text(node.where) if node.where is not None else "",
        }
    if (
        isinstance(node, Compare)
        and isinstance(node.left, Behavior)
        and node.left.func in ("event_count", "event_sum")
        and _plain(node.left)
        and isinstance(node.right, Lit)
        and node.right.type in ("int", "float")
    ):
        b = node.left
        return {
            "kind": "event",
            "did": did,
            "event": b.event,
            "measure": "count" if b.func == "event_count" else "sum",
            "cmp": node.op,
            "amount": node.right.value,
            "prop": b.prop,
            "within": _span_back(b.within),
            "where": to_text(b.where) if b.where is not None else "",
        }
    raise _Unsupported


def _row_back(node: Node) -> dict[str, Any]:
    if isinstance(node, Not):
        inner = node.arg
        if isinstance(inner, InSegment):
            return {"kind": "segment", "member": False, "name": inner.name}
        if isinstance(inner, Col):
            return {"kind": "attribute", "column": inner.name, "op": "is false", "value": ""}
        return _event_back(inner, did=False)
    if isinstance(node, InSegment):
        return {"kind": "segment", "member": True, "name": node.name}
    if isinstance(node, Col):
        return {"kind": "attribute", "column": node.name, "op": "is true", "value": ""}
    if isinstance(node, IsNull) and isinstance(node.arg, Col):
        return {
            "kind": "attribute",
            "column": node.arg.name,
            "op": "is set" if node.negated else "is not set",
            "value": "",
        }
    if isinstance(node, IsBool) and isinstance(node.arg, Col):
        true = node.value != node.negated
        return {
            "kind": "attribute",
            "column": node.arg.name,
            "op": "is true" if true else "is false",
            "value": "",
        }
    if isinstance(node, InList) and isinstance(node.arg, Col):
        return {
            "kind": "attribute",
            "column": node.arg.name,
            "op": "not in" if node.negated else "in",
            "value": ", ".join(_lit_text(i) for i in node.items),
        }
    if (
        isinstance(node, Call)
        and node.name in ("contains", "starts_with")
        and len(node.args) == 2
        and isinstance(node.args[0], Col)
    ):
        return {
            "kind": "attribute",
            "column": node.args[0].name,
            "op": "contains" if node.name == "contains" else "starts with",
            "value": _lit_text(node.args[1]),
        }
    if isinstance(node, Sequence):
        if (
            node.since is not None
            or node.until is not None
            or node.where is not None
            or node.then_where is not None
        ):
            raise _Unsupported
        return {
            "kind": "sequence",
            "then_not": node.func == "did_then_not",
            "first": node.first,
            "then": node.then,
            "gap": _span_back(node.gap),
            "within": _span_back(node.within),
        }
    if isinstance(node, Compare):
        if isinstance(node.left, Behavior) and node.left.func == "first_seen":
            b = node.left
            if node.op != ">=" or not _plain(b) or b.within or b.where is not None:
                raise _Unsupported
            return {"kind": "first", "event": b.event, "within": _span_back(_now_minus(node.right))}
        if isinstance(node.left, Col):
            if node.op == ">=" and isinstance(node.right, Arith):
                span = _span_back(_now_minus(node.right))
                return {
                    "kind": "attribute",
                    "column": node.left.name,
                    "op": "in the last",
                    "value": f"{span[0]} {span[1]}",
                }
            return {
                "kind": "attribute",
                "column": node.left.name,
                "op": node.op,
                "value": _lit_text(node.right),
            }
        return _event_back(node, did=True)
    return _event_back(node, did=True)


def _group_back(node: Node) -> dict[str, Any]:
    if isinstance(node, And | Or):
        return {
            "op": "and" if isinstance(node, And) else "or",
            "rows": [_row_back(a) for a in node.args],
        }
    return {"op": "and", "rows": [_row_back(node)]}


def from_tree(tree: Node | None) -> dict[str, Any] | None:
    """The builder model of ``tree``, or None when the builder cannot show it."""
    if tree is None:
        return empty_model()
    try:
        if isinstance(tree, And | Or):
            op = "and" if isinstance(tree, And) else "or"
            inner = Or if op == "and" else And
            if any(isinstance(a, inner) for a in tree.args):
                # nested groups stay groups; the plain conditions share one group
                groups: list[dict[str, Any]] = []
                plain: dict[str, Any] | None = None
                for a in tree.args:
                    if isinstance(a, inner):
                        groups.append(_group_back(a))
                        continue
                    if plain is None:
                        plain = {"op": op, "rows": []}
                        groups.append(plain)
                    plain["rows"].append(_row_back(a))
                return {"op": op, "groups": groups}
            return {"op": "and", "groups": [{"op": op, "rows": [_row_back(a) for a in tree.args]}]}
        return {"op": "and", "groups": [_group_back(tree)]}
    except _Unsupported:
        return None
