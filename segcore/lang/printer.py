"""Print a condition tree back to rule text that parses to the same tree."""

from __future__ import annotations

import re
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
    Sequence,
)

_SIMPLE_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED = frozenset(
    """all and any as asc between by case cast current_date current_time current_timestamp
    date desc distinct else end escape exists false filter from glob group having ilike in
    interval is isnull like limit not notnull null or order over rlike select similar then
    timestamp true union when where window with""".split()
)

_UNITS = (("week", 604_800_000_000), ("day", 86_400_000_000), ("hour", 3_600_000_000),
          ("minute", 60_000_000), ("second", 1_000_000))

# precedence: higher binds tighter
_PREC = {Or: 1, And: 2, Not: 3, Compare: 4, Like: 4, InList: 4, Between: 4, IsNull: 4, IsBool: 4}
_ARITH_PREC = {"+": 5, "-": 5, "*": 6, "/": 6}


def format_interval(micros: int) -> str:
    """``604800000000`` -> ``'1 week'``; ``1800000000`` -> ``'30 minutes'``."""
    for unit, size in _UNITS:
        if micros % size == 0:
            n = micros // size
            return f"{n} {unit}{'' if n == 1 else 's'}"
    return f"{micros} microseconds"


def quote_string(value: str) -> str:
    """A SQL string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    """A bare identifier when safe, otherwise double-quoted."""
    if _SIMPLE_IDENT.match(name) and name.lower() not in RESERVED and name == name.lower():
        return name
    return '"' + name.replace('"', '""') + '"'


def precedence(node: Node) -> int:
    if isinstance(node, Arith):
        return _ARITH_PREC[node.op]
    if isinstance(node, Neg):
        return 7
    return _PREC.get(type(node), 8)


def _wrap(node: Node, parent_prec: int, right: bool = False) -> str:
    text = to_text(node)
    p = precedence(node)
    if p < parent_prec or (right and p == parent_prec):
        return f"({text})"
    return text


@singledispatch
def to_text(node: Node) -> str:
    """Rule text for a tree (or subtree)."""
    raise TypeError(f"cannot print {type(node).__name__}")


@to_text.register
def _(node: Lit) -> str:
    v, t = node.value, node.type
    if t == "null":
        return "NULL"
    if t == "bool":
        return "TRUE" if v else "FALSE"
    if t == "string":
        return quote_string(v)
    if t == "date":
        return f"DATE {quote_string(v)}"
    if t == "timestamp":
        return f"TIMESTAMP {quote_string(v)}"
    if t == "interval":
        return f"INTERVAL {quote_string(format_interval(v))}"
    if t == "float":
        text = repr(float(v))
        return text if any(c in text for c in ".en") else text + ".0"
    return str(int(v))


@to_text.register
def _(node: Col) -> str:
    return quote_ident(node.name)


@to_text.register
def _(node: Call) -> str:
    return f"{node.name}({', '.join(to_text(a) for a in node.args)})"


@to_text.register
def _(node: Case) -> str:
    parts = ["CASE"]
    for cond, value in zip(node.conditions, node.values, strict=True):
        parts += ["WHEN", to_text(cond), "THEN", to_text(value)]
    if node.default is not None:
        parts += ["ELSE", to_text(node.default)]
    return " ".join([*parts, "END"])


@to_text.register
def _(node: Neg) -> str:
    inner = _wrap(node.arg, 7)
    return f"-({inner})" if inner.startswith("-") else f"-{inner}"  # "--" starts a comment


@to_text.register
def _(node: Arith) -> str:
    p = _ARITH_PREC[node.op]
    return f"{_wrap(node.left, p)} {node.op} {_wrap(node.right, p, right=True)}"


@to_text.register
def _(node: Compare) -> str:
    return f"{_wrap(node.left, 5)} {node.op} {_wrap(node.right, 5)}"


@to_text.register
def _(node: Like) -> str:
    op = "ILIKE" if node.case_insensitive else "LIKE"
    neg = "NOT " if node.negated else ""
    return f"{_wrap(node.arg, 5)} {neg}{op} {_wrap(node.pattern, 5)}"


@to_text.register
def _(node: InList) -> str:
    neg = "NOT " if node.negated else ""
    return f"{_wrap(node.arg, 5)} {neg}IN ({', '.join(to_text(i) for i in node.items)})"


@to_text.register
def _(node: Between) -> str:
    neg = "NOT " if node.negated else ""
    return (f"{_wrap(node.arg, 5)} {neg}BETWEEN {_wrap(node.low, 5)} "
            f"AND {_wrap(node.high, 5)}")


@to_text.register
def _(node: IsNull) -> str:
    return f"{_wrap(node.arg, 5)} IS {'NOT ' if node.negated else ''}NULL"


@to_text.register
def _(node: IsBool) -> str:
    neg = "NOT " if node.negated else ""
    return f"{_wrap(node.arg, 5)} IS {neg}{'TRUE' if node.value else 'FALSE'}"


@to_text.register
def _(node: Not) -> str:
    return f"NOT {_wrap(node.arg, 3)}"


@to_text.register
def _(node: And) -> str:
    return " AND ".join(_wrap(a, 2, right=i > 0 and isinstance(a, And))
                        for i, a in enumerate(node.args))


@to_text.register
def _(node: Or) -> str:
    return " OR ".join(_wrap(a, 1, right=i > 0 and isinstance(a, Or))
                       for i, a in enumerate(node.args))


def _window_args(node: Behavior | Sequence) -> list[str]:
    out = []
    if node.within is not None:
        out.append(f"within => {quote_string(format_interval(node.within))}")
    if node.since is not None:
        out.append(f"since => {to_text(node.since)}")
    if node.until is not None:
        out.append(f"until => {to_text(node.until)}")
    if node.where is not None:
        out.append(f"where => {to_text(node.where)}")
    return out


@to_text.register
def _(node: Behavior) -> str:
    args = [quote_string(node.event)]
    if node.prop is not None:
        args.append(quote_ident(node.prop))
    if node.period is not None:
        args.append(f"period => {quote_string(format_interval(node.period))}")
    args += _window_args(node)
    return f"{node.func}({', '.join(args)})"


@to_text.register
def _(node: Sequence) -> str:
    args = [quote_string(node.first), quote_string(node.then),
            f"gap => {quote_string(format_interval(node.gap))}"]
    args += _window_args(node)
    if node.then_where is not None:
        args.append(f"then_where => {to_text(node.then_where)}")
    return f"{node.func}({', '.join(args)})"


@to_text.register
def _(node: InSegment) -> str:
    return f"in_segment({quote_string(node.name)})"
