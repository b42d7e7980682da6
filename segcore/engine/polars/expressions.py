"""Translate condition-tree nodes into Polars expressions.

Behavioural terms and ``in_segment`` are not computed here: the evaluator
computes them as columns first and passes their names in ``Ctx.columns``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from functools import singledispatch

import polars as pl

from segcore.errors import RuleError
from segcore.lang.dates import UTC, current_zone, today_at
from segcore.lang.periods import local_date
from segcore.lang.tree import (
    And,
    Arith,
    Between,
    Call,
    Case,
    Col,
    Compare,
    InList,
    IsBool,
    IsNull,
    Like,
    Lit,
    Neg,
    Node,
    Not,
    Or,
    Schema,
)
from segcore.lang.types import TEMPORAL, type_of

TS = pl.Datetime("us", "UTC")


@dataclass
class Ctx:
    """What a translation needs: the instant T, the schema, the scope and the
    column names that hold precomputed behavioural terms."""

    T: dt.datetime
    schema: Schema
    scope: str = "user"
    columns: dict[Node, str] = field(default_factory=dict)

    def typ(self, node: Node) -> str:
        return type_of(node, self.schema, self.scope)


def lit_value(node: Lit):
    """The Python value of a literal (UTC-aware datetimes, timedeltas)."""
    v, t = node.value, node.type
    if t == "date":
        return dt.date.fromisoformat(v)
    if t == "timestamp":
        return dt.datetime.fromisoformat(v).replace(tzinfo=UTC)
    if t == "interval":
        return dt.timedelta(microseconds=v)
    return v


_PL_TYPES = {"int": pl.Int64, "float": pl.Float64, "bool": pl.Boolean, "string": pl.String,
             "date": pl.Date, "timestamp": TS, "interval": pl.Duration("us")}


def as_timestamp(expr: pl.Expr, typ: str) -> pl.Expr:
    """Dates become the instant of their midnight in the report zone; timestamps pass
    through."""
    return local_midnight(expr) if typ == "date" else expr


def local_midnight(day: pl.Expr) -> pl.Expr:
    """The UTC instant at which a date begins in the report zone
    (:func:`segcore.lang.dates.localize`'s rule: a skipped midnight moves forward by the
    gap, a repeated one is its first occurrence)."""
    zone = current_zone()
    if zone.is_utc:
        return day.cast(TS)
    naive = day.cast(pl.Datetime("us"))

    def local(e: pl.Expr) -> pl.Expr:
        return e.dt.replace_time_zone(zone.name, ambiguous="earliest",
                                      non_existent="null").dt.convert_time_zone("UTC")

    # a skipped midnight: the instant 24 hours after the previous midnight (fold=0)
    return pl.coalesce(local(naive), local(naive - pl.duration(days=1)) + pl.duration(days=1))


def local_day(ts: pl.Expr) -> pl.Expr:
    """The report zone's date of a UTC timestamp."""
    return local_date(ts)


@singledispatch
def to_expr(node: Node, ctx: Ctx) -> pl.Expr:
    """The Polars expression of a node (behavioural nodes must be in ``ctx.columns``)."""
    name = ctx.columns.get(node)
    if name is None:
        raise TypeError(f"{type(node).__name__} must be precomputed")
    return pl.col(name)


@to_expr.register
def _(node: Lit, ctx: Ctx) -> pl.Expr:
    if node.type == "null":
        return pl.lit(None)
    return pl.lit(lit_value(node), dtype=_PL_TYPES[node.type])


@to_expr.register
def _(node: Col, ctx: Ctx) -> pl.Expr:
    return pl.col(node.name)


@to_expr.register
def _(node: Call, ctx: Ctx) -> pl.Expr:
    n, args = node.name, [to_expr(a, ctx) for a in node.args]
    if n != "coalesce" and any(ctx.typ(a) == "null" for a in node.args):
        return pl.lit(None, dtype=_PL_TYPES[ctx.typ(node)])  # f(NULL) is NULL, typed
    if n == "now":
        return pl.lit(ctx.T, dtype=TS)
    if n == "today":
        return pl.lit(today_at(ctx.T), dtype=pl.Date)
    if n == "lower":
        return args[0].str.to_lowercase()
    if n == "upper":
        return args[0].str.to_uppercase()
    if n == "length":
        if ctx.typ(node.args[0]) == "list":
            return args[0].list.len()
        return args[0].str.len_chars()
    if n == "contains":
        return args[0].str.contains(args[1], literal=True)
    if n == "starts_with":
        return args[0].str.starts_with(args[1])
    if n == "ends_with":
        return args[0].str.ends_with(args[1])
    if n == "has":  # a NULL value gives NULL (list.contains would match NULL elements)
        return pl.when(args[1].is_not_null()).then(args[0].list.contains(args[1]))
    if n == "coalesce":
        typ = ctx.typ(node)
        parts = [as_timestamp(e, ctx.typ(a)) if typ == "timestamp" else e
                 for e, a in zip(args, node.args, strict=True)]
        return pl.coalesce(parts)
    raise TypeError(f"unknown function {n}")


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def checked_int(wide: pl.Expr) -> pl.Expr:
    """An exact Int128 result as Int64, NULL where it does not fit (docs/rules.md, section
    on arithmetic): integer arithmetic never wraps around into a real-looking number."""
    return (
        pl.when(wide.is_between(INT64_MIN, INT64_MAX)).then(wide).otherwise(None).cast(pl.Int64)
    )


@to_expr.register
def _(node: Case, ctx: Ctx) -> pl.Expr:
    typ = ctx.typ(node)
    dtype = pl.List(pl.String) if typ == "list" else _PL_TYPES.get(typ)

    def value(n: Node) -> pl.Expr:
        e = to_expr(n, ctx)
        if typ == "timestamp":
            e = as_timestamp(e, ctx.typ(n))
        return e.cast(dtype) if dtype is not None else e

    branches = zip(node.conditions, node.values, strict=True)
    cond, first = next(branches)
    expr = pl.when(to_expr(cond, ctx).cast(pl.Boolean).fill_null(False)).then(value(first))
    for cond, val in branches:
        expr = expr.when(to_expr(cond, ctx).cast(pl.Boolean).fill_null(False)).then(value(val))
    if node.default is not None:
        return expr.otherwise(value(node.default))
    return expr.otherwise(pl.lit(None, dtype=dtype))


@to_expr.register
def _(node: Neg, ctx: Ctx) -> pl.Expr:
    if ctx.typ(node.arg) == "null":
        return pl.lit(None)
    if ctx.typ(node.arg) == "int":
        return checked_int(pl.lit(0, pl.Int128) - to_expr(node.arg, ctx).cast(pl.Int128))
    return -to_expr(node.arg, ctx)


@to_expr.register
def _(node: Arith, ctx: Ctx) -> pl.Expr:
    lt, rt = ctx.typ(node.left), ctx.typ(node.right)
    left, right = to_expr(node.left, ctx), to_expr(node.right, ctx)
    if node.op == "/":
        # Polars divides by a scalar as a multiplication by its reciprocal (off by an ulp):
        # broadcast the divisor to a column so that x / 7 is IEEE division, as in SQL.
        divisor = right.cast(pl.Float64) + left.is_null().cast(pl.Float64) * 0.0
        return pl.when(right == 0).then(None).otherwise(left.cast(pl.Float64) / divisor)
    if ctx.typ(node) == "timestamp":
        left, right = as_timestamp(left, lt), as_timestamp(right, rt)
    elif ctx.typ(node) == "date":  # date +/- integer days
        if lt == "int":
            left, right = right, left
        days = pl.duration(days=right.cast(pl.Int64))
        return left + days if node.op == "+" else left - days
    if ctx.typ(node) == "int" and lt == "int" and rt == "int":
        # exact in 128 bits (64-bit operands cannot overflow it), then checked back to 64
        left, right = left.cast(pl.Int128), right.cast(pl.Int128)
        return checked_int({"+": left.__add__, "-": left.__sub__, "*": left.__mul__}[node.op](right))
    return {"+": left.__add__, "-": left.__sub__, "*": left.__mul__}[node.op](right)


def _pair(ctx: Ctx, a: Node, b: Node) -> tuple[pl.Expr, pl.Expr]:
    ta, tb = ctx.typ(a), ctx.typ(b)
    ea, eb = to_expr(a, ctx), to_expr(b, ctx)
    if ta in TEMPORAL and tb in TEMPORAL and ta != tb:
        ea, eb = as_timestamp(ea, ta), as_timestamp(eb, tb)
    return ea, eb


_CMP = {"=": "__eq__", "!=": "__ne__", "<": "__lt__", "<=": "__le__", ">": "__gt__",
        ">=": "__ge__"}


@to_expr.register
def _(node: Compare, ctx: Ctx) -> pl.Expr:
    a, b = _pair(ctx, node.left, node.right)
    return getattr(a, _CMP[node.op])(b)


def like_regex(pattern: str, case_insensitive: bool) -> str:
    """SQL LIKE pattern -> anchored regex (``%`` any run, ``_`` one character)."""
    out = []
    for ch in pattern:  # ok-loop: characters of one pattern
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    return ("(?si)" if case_insensitive else "(?s)") + "^" + "".join(out) + "$"


@to_expr.register
def _(node: Like, ctx: Ctx) -> pl.Expr:
    arg = to_expr(node.arg, ctx)
    if ctx.typ(node.arg) == "null":
        expr = pl.lit(None, dtype=pl.Boolean)
    elif isinstance(node.pattern, Lit) and node.pattern.type == "string":
        expr = arg.str.contains(like_regex(node.pattern.value, node.case_insensitive))
    elif isinstance(node.pattern, Lit):  # NULL pattern
        expr = pl.lit(None, dtype=pl.Boolean)
    else:
        raise TypeError("LIKE patterns must be literals")
    return ~expr if node.negated else expr


@to_expr.register
def _(node: InList, ctx: Ctx) -> pl.Expr:
    if all(isinstance(i, Lit) and i.type != "null" for i in node.items) and \
            ctx.typ(node.arg) == ctx.typ(node.items[0]) and \
            len({i.type for i in node.items}) == 1:
        arg = to_expr(node.arg, ctx)
        values = [lit_value(i) for i in node.items]
        expr = arg.is_in(pl.Series(values, dtype=_PL_TYPES[node.items[0].type]).implode())
    else:  # SQL semantics of x IN (a, b) = x = a OR x = b, NULLs included
        parts = [a == b for a, b in (_pair(ctx, node.arg, i) for i in node.items)]
        expr = pl.any_horizontal(parts) if len(parts) > 1 else parts[0]
    return ~expr if node.negated else expr


@to_expr.register
def _(node: Between, ctx: Ctx) -> pl.Expr:
    a, lo = _pair(ctx, node.arg, node.low)
    a2, hi = _pair(ctx, node.arg, node.high)
    expr = (a >= lo) & (a2 <= hi)
    return ~expr if node.negated else expr


@to_expr.register
def _(node: IsNull, ctx: Ctx) -> pl.Expr:
    arg = to_expr(node.arg, ctx)
    return arg.is_not_null() if node.negated else arg.is_null()


@to_expr.register
def _(node: IsBool, ctx: Ctx) -> pl.Expr:
    arg = to_expr(node.arg, ctx)
    expr = (arg == node.value).fill_null(False)
    return ~expr if node.negated else expr


@to_expr.register
def _(node: Not, ctx: Ctx) -> pl.Expr:
    return ~to_expr(node.arg, ctx).cast(pl.Boolean)  # NOT NULL: a typed NULL


@to_expr.register
def _(node: And, ctx: Ctx) -> pl.Expr:
    # Kleene logic; the casts type NULL literals (polars refuses NULL-only inputs)
    return pl.all_horizontal([to_expr(a, ctx).cast(pl.Boolean) for a in node.args])


@to_expr.register
def _(node: Or, ctx: Ctx) -> pl.Expr:
    return pl.any_horizontal([to_expr(a, ctx).cast(pl.Boolean) for a in node.args])


def constant_instant(node: Node, T: dt.datetime, schema: Schema) -> dt.datetime:
    """Evaluate a window bound (literals, now(), today(), intervals) at T."""
    ctx = Ctx(T, schema)
    expr = as_timestamp(to_expr(node, ctx), ctx.typ(node))
    try:
        value = pl.select(expr.alias("v")).item()
    except (ValueError, OverflowError, pl.exceptions.PolarsError):  # e.g. year -99
        raise RuleError("a since/until bound is outside the years 1 to 9999") from None
    if value is None:
        return None  # type: ignore[return-value]
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return current_zone().start_of_day(value)
