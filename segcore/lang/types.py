"""Value types of the rule language and the typing rules every engine shares."""

from __future__ import annotations

from functools import singledispatch

from segcore.lang.tree import (
    And,
    Arith,
    Behavior,
    Between,
    Call,
    Case,
    Col,
    Compare,
    InList,
    InSegment,
    IsBool,
    IsNull,
    Like,
    Lit,
    Neg,
    Node,
    Not,
    Or,
    Schema,
    Sequence,
)

NUMERIC = ("int", "float")
TEMPORAL = ("date", "timestamp")


def tname(t: str) -> str:
    """A type's name for people, with its article: ``int`` -> ``an integer``."""
    name = {"int": "integer", "float": "number", "bool": "boolean", "string": "text",
            "list": "list", "null": "NULL", "interval": "interval", "date": "date",
            "timestamp": "timestamp"}.get(t, t)
    return ("an " if name[0] in "aeiou" else "a ") + name


def comparable(a: str, b: str) -> bool:
    """Whether values of types ``a`` and ``b`` may be compared."""
    if "null" in (a, b):
        return True
    if a in NUMERIC and b in NUMERIC:
        return True
    if a in TEMPORAL and b in TEMPORAL:
        return True
    return a == b and a != "list"


def arith_type(op: str, a: str, b: str) -> str | None:
    """Result type of ``a op b`` or None when the operation is not allowed.

    ``/`` is float division; date +/- interval is a timestamp (as in SQL);
    date +/- integer is a date (days).
    """
    if "null" in (a, b):
        other = b if a == "null" else a
        if other == "null":
            return "null"
        return other if other in NUMERIC + TEMPORAL + ("interval",) else None
    if a in NUMERIC and b in NUMERIC:
        if op == "/":
            return "float"
        return "int" if a == b == "int" else "float"
    if op in "+-" and a in TEMPORAL and b == "interval":
        return "timestamp"
    if op == "+" and a == "interval" and b in TEMPORAL:
        return "timestamp"
    if op in "+-" and a == "date" and b == "int":
        return "date"
    if op == "+" and a == "int" and b == "date":
        return "date"
    if op in "+-" and a == b == "interval":
        return "interval"
    return None


def common_type(types: list[str]) -> str | None:
    """The type of values of ``types`` taken together (``coalesce``, ``CASE``), or None.

    NULL fits everything; integers and floats make floats; dates and timestamps make
    timestamps; any other mix has no common type.
    """
    found = [t for t in types if t != "null"]
    if not found:
        return "null"
    if all(t in NUMERIC for t in found):
        return "float" if "float" in found else "int"
    if all(t in TEMPORAL for t in found):
        return "timestamp" if "timestamp" in found else "date"
    return found[0] if all(t == found[0] for t in found) else None


BEHAVIOR_TYPES = {"did": "bool", "event_count": "int", "event_distinct": "int",
                  "first_seen": "timestamp", "last_seen": "timestamp", "event_periods": "int",
                  "event_avg": "float"}


@singledispatch
def type_of(node: Node, schema: Schema, scope: str = "user") -> str:
    """The value type of a (valid) tree node."""
    raise TypeError(f"no type for {type(node).__name__}")


@type_of.register
def _(node: Lit, schema: Schema, scope: str = "user") -> str:
    return node.type


@type_of.register
def _(node: Col, schema: Schema, scope: str = "user") -> str:
    cols = schema.users if scope == "user" else schema.events
    return cols.get(node.name, "null")


@type_of.register
def _(node: Call, schema: Schema, scope: str = "user") -> str:
    if node.name == "now":
        return "timestamp"
    if node.name == "today":
        return "date"
    if node.name in ("lower", "upper"):
        return "string"
    if node.name == "length":
        return "int"
    if node.name == "coalesce":
        types = [type_of(a, schema, scope) for a in node.args]
        types = [t for t in types if t != "null"] or ["null"]
        if all(t in NUMERIC for t in types) and "float" in types:
            return "float"
        if all(t in TEMPORAL for t in types) and "timestamp" in types:
            return "timestamp"
        return types[0]
    return "bool"


@type_of.register
def _(node: Case, schema: Schema, scope: str = "user") -> str:
    parts = [*node.values, *([node.default] if node.default is not None else [])]
    return common_type([type_of(v, schema, scope) for v in parts]) or "null"


@type_of.register
def _(node: Neg, schema: Schema, scope: str = "user") -> str:
    return type_of(node.arg, schema, scope)


@type_of.register
def _(node: Arith, schema: Schema, scope: str = "user") -> str:
    return arith_type(node.op, type_of(node.left, schema, scope),
                      type_of(node.right, schema, scope)) or "null"


@type_of.register
def _(node: Behavior, schema: Schema, scope: str = "user") -> str:
    if node.func in BEHAVIOR_TYPES:
        return BEHAVIOR_TYPES[node.func]
    return schema.events.get(node.prop or "", "float")


for _cls in (Compare, Like, InList, Between, IsNull, IsBool, Not, And, Or, Sequence, InSegment):
    type_of.register(_cls, lambda node, schema, scope="user": "bool")
