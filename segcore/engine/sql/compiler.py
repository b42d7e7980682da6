"""Condition tree -> one SQL query (a sqlglot expression tree) of the members at T.

The query has the shape::

    WITH universe AS (users UNION users with an event before T),
         b0 AS (one GROUP BY user_id over the events: a conditional aggregate per term),
         s0 AS (a sequence: per A event, the first B strictly after it),
         m0 AS (universe LEFT JOIN users, b0, s0, saved segments ... WHERE <rule>)
    SELECT user_id FROM m0 ORDER BY user_id

Semantics are those of the Polars evaluator (``segcore.engine.polars.evaluate``): the same
window bounds (computed here, at T, by the same functions), the same defaults
for users without matching events, SQL's own three-valued logic, float division
with ``x / 0`` = NULL. Constant sub-expressions (``now() - interval '7 days'``,
``today() + 6``) are evaluated once with Polars and become typed literals.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import polars as pl
from sqlglot import exp

from segcore.engine.plan import (
    constant_value,
    event_columns,
    needs_universe,
    prefilter_bounds,
    resolve_segment,
    term_columns,
    tree_columns,
    window_bounds,
)
from segcore.engine.sql import dialects as D
from segcore.engine.sql.connected import reader, source_relation
from segcore.engine.sql.list_nulls import ROW, null_rows_file
from segcore.errors import RuleError
from segcore.lang.dates import UTC, current_zone, today_at
from segcore.lang.tree import (
    AGGREGATES,
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
    behaviours,
    segment_refs,
)
from segcore.lang.types import TEMPORAL, type_of
from segcore.store.events import EventStore
from segcore.store.sources import Source, raw_schema

_CMP = {"=": exp.EQ, "!=": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE}
_FOLDABLE = (Lit, Arith, Neg, Call)


def ident(name: str) -> exp.Identifier:
    """A quoted identifier (user-provided names always go through here)."""
    return exp.to_identifier(name, quoted=True)


def col(name: str, table: str | None = None) -> exp.Column:
    """A quoted column reference, optionally qualified by an (internal) alias."""
    return exp.Column(this=ident(name), table=exp.to_identifier(table) if table else None)


def _paren(e: exp.Expression) -> exp.Expression:
    """Parenthesise a predicate used as an operand (``(a > 1) = TRUE``)."""
    if isinstance(e, exp.Connector | exp.Not | exp.Predicate | exp.Neg):
        return exp.paren(e, copy=False)
    return e


def _lparen(e: exp.Expression) -> exp.Expression:
    return exp.paren(e, copy=False) if isinstance(e, exp.Connector) else e


def _and(parts: list[exp.Expression]) -> exp.Expression:
    out = _lparen(parts[0])
    for p in parts[1:]:
        out = exp.And(this=out, expression=_lparen(p))
    return out


def _or(parts: list[exp.Expression]) -> exp.Expression:
    out = _lparen(parts[0])
    for p in parts[1:]:
        out = exp.Or(this=out, expression=_lparen(p))
    return out


def _not(e: exp.Expression) -> exp.Expression:
    return exp.Not(this=exp.paren(e, copy=False))


def _aliased(source: exp.Expression, alias: str) -> exp.Expression:
    src = source.copy()
    if isinstance(src, exp.Table):
        src.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
        return src
    return exp.Subquery(this=src, alias=exp.TableAlias(this=exp.to_identifier(alias)))


def null_flag(name: str) -> str:
    """ClickHouse: the companion column that is TRUE where list column ``name`` is NULL."""
    return f"sc_null_{name}"


def _is_constant(node: Node) -> bool:
    return all(
        isinstance(n, _FOLDABLE) and not (isinstance(n, Call) and n.name == "has")
        for n in node.walk()
    )


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _as_wide(e: exp.Expression, dialect: D.Dialect) -> exp.Expression:
    """``e`` in a type where the sum, difference or product of two 64-bit integers is exact
    (``Dialect.wide_int``)."""
    return exp.Cast(this=_paren(e), to=dialect.wide_int())


def _checked_int(exact: exp.Expression) -> exp.Expression:
    """``exact`` (a widened result, :func:`_as_wide`) as BIGINT, NULL outside 64 bits.

    (ClickHouse evaluates every branch of a CASE; its narrowing cast wraps, never throws.)
    """
    exact = exp.paren(exact, copy=False)
    inside = exp.Between(
        this=exact,
        low=exp.Literal.number(_INT64_MIN),
        high=exp.Literal.number(_INT64_MAX),
    )
    value = exp.Cast(this=exact.copy(), to=exp.DataType.build("BIGINT"))
    return exp.Case(ifs=[exp.If(this=inside, true=value)], default=exp.Null())


class Compiler:
    """Builds the members query of rules and saved segments at one instant T."""

    def __init__(
        self,
        store: EventStore,
        T: dt.datetime,
        dialect: str,
        schema: Schema,
        *,
        events_table: str | None = None,
        users_table: str | None = None,
    ):
        self.store = store
        self.T = T
        self.d = dialect
        self.D = D.dialect_of(dialect)
        self.schema = schema
        for name in (events_table, users_table):
            if name is not None:
                D.table_name(name)  # a bad name is an error even when unused
        self.events_table = events_table
        self.users_table = users_table
        if not self.D.reads_parquet:
            self.events_table = events_table or "events"
            self.users_table = users_table or "users"
        # connected sources (sources.toml) where no table name is given: read where they are
        self.connected = {
            kind: src for kind, table in (("events", self.events_table),
                                          ("users", self.users_table))  # ok-loop: two
            if table is None and (src := store.source(kind)) is not None
        }
        for src in self.connected.values():  # ok-loop: two at most
            reader(store.home, src, self.D)  # a source the engine cannot read: one line now
        # the sources' own columns, read once per query (shared by the compilers of at())
        self._raw_schemas = {k: raw_schema(store.home, s) for k, s in self.connected.items()}
        self.ctes: list[tuple[str, exp.Expression]] = []
        self._counter = itertools.count(1)  # shared by the compilers of :meth:`at`
        self._universe: str | None = None
        self._segments: dict[str, str] = {}
        self._file_schemas: dict[Path, dict[str, pl.DataType]] = {}

    # ------------------------------------------------------------------ naming
    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self._counter)}"

    def at(self, T: dt.datetime) -> Compiler:
        """A compiler at another instant T whose CTEs go into this one's query
        (a trend compiles the members at each of its points into one query)."""
        other = copy.copy(self)
        other.T = T
        other._universe = None
        other._segments = {}
        return other

    def add_cte(self, prefix: str, query: exp.Expression) -> str:
        name = self.fresh(f"sc_{prefix}")  # prefixed: never shadows a warehouse table
        self.ctes.append((name, query))
        return name

    # ------------------------------------------------------------------ sources
    def _file_schema(self, f: Path) -> dict[str, pl.DataType]:
        if f not in self._file_schemas:
            self._file_schemas[f] = dict(pl.scan_parquet(f, glob=False).collect_schema())
        return self._file_schemas[f]

    def _source(
        self,
        table: str | None,
        files: list[Path],
        columns: dict[str, str],
        unified: dict[str, pl.DataType],
        connected: Source | None = None,
    ) -> exp.Expression:
        """A table (or subquery) with at least ``columns`` (name -> rule type).

        On ClickHouse, each list column ``c`` comes with its NULL flag ``null_flag(c)``
        (ClickHouse has no NULL arrays): FALSE over a named table, where a list cannot
        be NULL; over Parquet files, the file's ``_row_number`` is among the rows whose
        list is NULL (``segcore.engine.sql.list_nulls``).
        """
        lists = [c for c, t in columns.items() if t == "list"] if self.D.null_flag_lists else []
        if connected is not None:  # a NULL list of a connected source reads as [] there
            rel = source_relation(self.store.home, connected, self.D, columns,
                                  self._raw_schemas[connected.kind])
            flags = [exp.alias_(exp.false(), ident(null_flag(c))) for c in lists]
            return rel.select(*flags, copy=False) if flags else rel
        if table is not None:
            if not lists:
                return D.table_name(table)
            flags = [exp.alias_(exp.false(), ident(null_flag(c))) for c in lists]
            return exp.select(exp.Star(), *flags).from_(D.table_name(table))
        if not files:
            sel = exp.select(
                *[exp.alias_(self.D.typed_null(t), ident(c)) for c, t in columns.items()],
                *[exp.alias_(exp.true(), ident(null_flag(c))) for c in lists],
            )
            return sel.where(exp.false())
        if isinstance(self.D, D.DuckDB):  # one read_parquet unifies the files itself
            return self.D.parquet_table(files)
        if (
            len(files) == 1
            and not lists
            and all(self._file_schema(files[0]).get(c) == unified.get(c) for c in columns)
        ):
            return self.D.parquet_table(files)
        parts = []
        for f in files:  # ok-loop: one SELECT per Parquet file
            have = self._file_schema(f)
            cols = []
            for c, t in columns.items():
                if c not in have:
                    value = self.D.typed_null(t)
                elif have[c] != unified.get(c):
                    value = exp.Cast(this=col(c), to=self.D.dtype(t))
                else:
                    value = col(c)
                cols.append(exp.alias_(value, ident(c)))
            for c in lists:
                cols.append(exp.alias_(self._null_rows(f, c, c in have), ident(null_flag(c))))
            parts.append(exp.select(*cols).from_(self.D.parquet_table([f])))
        out = parts[0]
        for p in parts[1:]:
            out = exp.union(out, p, distinct=False)
        return out

    def _null_rows(self, f: Path, c: str, present: bool) -> exp.Expression:
        """ClickHouse: whether a row of Parquet file ``f`` holds a NULL list ``c``."""
        if not present:
            return exp.true()
        rows = null_rows_file(self.store.home, f, c)
        if rows is None:
            return exp.false()
        ids = exp.select(exp.column(ROW)).from_(self.D.parquet_table([rows]))
        return exp.In(this=exp.column("_row_number"), query=ids.subquery(copy=False))

    def events(self, props: set[str] = frozenset()) -> exp.Expression:
        """The events source with user_id, event, ts and ``props``."""
        need = {"user_id": "string", "event": "string", "ts": "timestamp"}
        need.update({p: self.schema.events.get(p, "string") for p in sorted(props)})
        return self._source(
            self.events_table,
            self.store.event_files() if self.events_table is None else [],
            need,
            self.store.events_schema(),
            self.connected.get("events"),
        )

    def users(self, attrs: list[str] = ()) -> exp.Expression:
        """The users source with user_id and ``attrs``."""
        need = {"user_id": "string"}
        need.update({a: self.schema.users.get(a, "string") for a in attrs})
        return self._source(
            self.users_table,
            self.store.user_files() if self.users_table is None else [],
            need,
            self.store.users_schema(),
            self.connected.get("users"),
        )

    def T_us(self) -> int:
        """T in microseconds since 1970-01-01 UTC."""
        return (self.T - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(microseconds=1)

    def T_lit(self) -> exp.Expression:
        return self.D.timestamp_literal(self.T)

    def universe(self) -> str:
        """CTE of every user in users plus every user with an event before T."""
        if self._universe is None:
            users = exp.select(col("user_id")).from_(_aliased(self.users(), "x"))
            ev = (
                exp.select(col("user_id"))
                .from_(_aliased(self.events(), "e"))
                .where(exp.LT(this=col("ts"), expression=self.T_lit()))
            )
            self._universe = self.add_cte("universe", exp.union(users, ev, distinct=True))
        return self._universe

    # ------------------------------------------------------------------ values
    def literal(self, value: Any, typ: str) -> exp.Expression:
        if value is None or typ == "null":
            return exp.null() if typ == "null" else self.D.typed_null(typ)
        if typ == "string":
            return exp.Literal.string(value)
        if typ == "bool":
            return exp.true() if value else exp.false()
        if typ == "int":
            return exp.Literal.number(int(value))
        if typ == "float":
            num = exp.Literal.number(repr(float(value)))
            return (
                num if self.D.null_flag_lists else exp.Cast(this=num, to=self.D.dtype("float"))
            )
        if typ == "date":
            v = value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
            return self.D.date_literal(v)
        if typ == "timestamp":
            v = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
            return self.D.timestamp_literal(v if v.tzinfo else v.replace(tzinfo=UTC))
        if typ == "interval":
            us = value if isinstance(value, int) else value // dt.timedelta(microseconds=1)
            return D.interval(us)
        raise RuleError(f"cannot write a {typ} literal in SQL")

    def fold(self, node: Node, scope: str) -> exp.Expression:
        """A constant sub-expression (``segcore.engine.plan.constant_value``) as a typed literal."""
        typ = type_of(node, self.schema, scope)
        value = constant_value(node, self.T, self.schema, scope)
        if isinstance(value, dt.datetime) and typ == "date":
            value = value.date()
        return self.literal(value, typ)

    def typ(self, node: Node, scope: str) -> str:
        return type_of(node, self.schema, scope)

    def value(self, node: Node, scope: str, env: dict[Node, exp.Expression]) -> exp.Expression:
        """SQL of a value or predicate node (``env``: behavioural terms -> SQL)."""
        if node in env:
            return env[node].copy()
        if isinstance(node, Lit):
            return self.literal(node.value, node.type)
        if isinstance(node, (Arith, Neg, Call)) and _is_constant(node):
            return self.fold(node, scope)
        method = getattr(self, f"v_{type(node).__name__}", None)
        if method is None:
            raise RuleError(f"{type(node).__name__} cannot be compiled to SQL here")
        return method(node, scope, env)

    def v_Col(self, node: Col, scope, env) -> exp.Expression:
        if scope == "user" and node.name == "user_id":  # the key: set for every user
            return col("user_id", "u")
        return col(node.name, "a" if scope == "user" else None)

    def _ts(self, node: Node, scope, env) -> exp.Expression:
        e = self.value(node, scope, env)
        if self.typ(node, scope) != "date":
            return e
        return self.D.date_to_timestamp(e, current_zone().name)

    def v_Neg(self, node: Neg, scope, env) -> exp.Expression:
        arg = self.value(node.arg, scope, env)
        if self.typ(node, scope) == "int":  # -(-2^63) is outside 64 bits: NULL
            return _checked_int(exp.Neg(this=_as_wide(arg, self.D)))
        return exp.Neg(this=exp.paren(arg, copy=False))

    def v_Arith(self, node: Arith, scope, env) -> exp.Expression:
        lt, t = self.typ(node.left, scope), self.typ(node, scope)
        if node.op == "/":
            left = exp.Cast(this=self.value(node.left, scope, env), to=self.D.dtype("float"))
            right = exp.Nullif(
                this=self.value(node.right, scope, env), expression=exp.Literal.number(0)
            )
            return exp.paren(exp.Div(this=left, expression=right), copy=False)
        if t == "timestamp":
            left, right = node.left, node.right
            if lt == "interval":  # interval + timestamp: put the interval on the right
                left, right = right, left
            a = self._ts(left, scope, env)
            b = self.value(right, scope, env)
            cls = exp.Add if node.op == "+" else exp.Sub
            return exp.paren(cls(this=a, expression=b), copy=False)
        if t == "date":  # date +/- integer days
            dnode, nnode = (node.right, node.left) if lt == "int" else (node.left, node.right)
            de, ne = self.value(dnode, scope, env), self.value(nnode, scope, env)
            if node.op == "-":
                ne = exp.Neg(this=exp.paren(ne, copy=False))
            return self._add_days(de, ne)
        cls = {"+": exp.Add, "-": exp.Sub, "*": exp.Mul}[node.op]
        left, right = self.value(node.left, scope, env), self.value(node.right, scope, env)
        if t == "int" and lt == "int" and self.typ(node.right, scope) == "int":
            # exact in a wide type (two 64-bit operands cannot overflow it), then checked
            # back to 64 bits: NULL outside, as in the Polars backend (docs/rules.md)
            return _checked_int(
                cls(this=_as_wide(left, self.D), expression=_as_wide(right, self.D))
            )
        return exp.paren(cls(this=left, expression=right), copy=False)

    def _add_days(self, d: exp.Expression, n: exp.Expression) -> exp.Expression:
        return self.D.add_days(d, n)

    def _pair(self, a: Node, b: Node, scope, env) -> tuple[exp.Expression, exp.Expression]:
        ta, tb = self.typ(a, scope), self.typ(b, scope)
        if ta in TEMPORAL and tb in TEMPORAL and ta != tb:
            return self._ts(a, scope, env), self._ts(b, scope, env)
        return self.value(a, scope, env), self.value(b, scope, env)

    def v_Compare(self, node: Compare, scope, env) -> exp.Expression:
        a, b = self._pair(node.left, node.right, scope, env)
        return _CMP[node.op](this=_paren(a), expression=_paren(b))

    def v_Like(self, node: Like, scope, env) -> exp.Expression:
        arg = self.value(node.arg, scope, env)
        if not isinstance(node.pattern, Lit):
            raise RuleError("LIKE patterns must be literals")
        if node.pattern.type == "string":
            pat = exp.Literal.string(self.D.like_pattern(node.pattern.value))
        else:
            pat = exp.null()
        cls = exp.ILike if node.case_insensitive else exp.Like
        out = cls(this=_paren(arg), expression=pat)
        return _not(out) if node.negated else out

    def v_InList(self, node: InList, scope, env) -> exp.Expression:
        at = self.typ(node.arg, scope)
        simple = all(isinstance(i, Lit) and i.type != "null" and i.type == at for i in node.items)
        if simple:
            out = exp.In(
                this=_paren(self.value(node.arg, scope, env)),
                expressions=[self.value(i, scope, env) for i in node.items],
            )
        else:  # x IN (a, b) = x = a OR x = b, NULL items included (SQL semantics)
            parts = []
            for item in node.items:
                a, b = self._pair(node.arg, item, scope, env)
                parts.append(exp.EQ(this=_paren(a), expression=_paren(b)))
            out = _or(parts)
        return _not(out) if node.negated else out

    def v_Between(self, node: Between, scope, env) -> exp.Expression:
        a, lo = self._pair(node.arg, node.low, scope, env)
        a2, hi = self._pair(node.arg, node.high, scope, env)
        out = _and(
            [
                exp.GTE(this=_paren(a), expression=_paren(lo)),
                exp.LTE(this=_paren(a2), expression=_paren(hi)),
            ]
        )
        return _not(out) if node.negated else out

    def v_IsNull(self, node: IsNull, scope, env) -> exp.Expression:
        if self.D.null_flag_lists and self.typ(node.arg, scope) == "list":
            out = self._list(node.arg, scope, env)[1]
        else:
            out = exp.Is(this=_paren(self.value(node.arg, scope, env)), expression=exp.null())
        return _not(out) if node.negated else out

    def v_IsBool(self, node: IsBool, scope, env) -> exp.Expression:
        eq = exp.EQ(
            this=_paren(self.value(node.arg, scope, env)),
            expression=exp.true() if node.value else exp.false(),
        )
        out = exp.Coalesce(this=eq, expressions=[exp.false()])
        return _not(out) if node.negated else out

    def v_Not(self, node: Not, scope, env) -> exp.Expression:
        return _not(self.value(node.arg, scope, env))

    def v_And(self, node: And, scope, env) -> exp.Expression:
        return _and([self.value(a, scope, env) for a in node.args])

    def v_Or(self, node: Or, scope, env) -> exp.Expression:
        return _or([self.value(a, scope, env) for a in node.args])

    def v_Case(self, node: Case, scope, env) -> exp.Expression:
        stamp = self.typ(node, scope) == "timestamp"

        def value(n: Node) -> exp.Expression:
            return self._ts(n, scope, env) if stamp else self.value(n, scope, env)

        ifs = [
            exp.If(this=_paren(self.value(c, scope, env)), true=value(v))
            for c, v in zip(node.conditions, node.values, strict=True)
        ]
        default = value(node.default) if node.default is not None else None
        return exp.Case(ifs=ifs, default=default)

    def v_Call(self, node: Call, scope, env) -> exp.Expression:
        n = node.name
        if n == "now":
            return self.T_lit()
        if n == "today":
            return self.D.date_literal(today_at(self.T))
        if n in ("has", "length") and self.typ(node.args[0], scope) in ("list", "null"):
            return self._list_call(node, scope, env)
        if n == "coalesce" and self.D.null_flag_lists and self.typ(node, scope) == "list":
            return self._list(node, scope, env)[0]
        args = [self.value(a, scope, env) for a in node.args]
        if n == "lower":
            return self.D.lower(args[0])
        if n == "upper":
            return self.D.upper(args[0])
        if n == "length":
            return self.D.str_length(args[0])
        if n == "contains":
            return self.D.contains(args[0], args[1])
        if n == "starts_with":
            return exp.StartsWith(this=args[0], expression=args[1])
        if n == "ends_with":
            return exp.EndsWith(this=args[0], expression=args[1])
        if n == "coalesce":
            if self.typ(node, scope) == "timestamp":
                args = [self._ts(a, scope, env) for a in node.args]
            return exp.Coalesce(this=args[0], expressions=args[1:])
        raise RuleError(f"unknown function {n}")

    def _ch_list(self, name: str, scope: str) -> bool:
        """Whether column ``name`` is a list read on ClickHouse (it has a NULL flag)."""
        cols = self.schema.users if scope == "user" else self.schema.events
        return self.D.null_flag_lists and cols.get(name) == "list"

    def _list(self, node: Node, scope, env) -> tuple[exp.Expression, exp.Expression]:
        """ClickHouse: a list value as (array, is-NULL flag); ClickHouse has no NULL arrays."""
        t = self.typ(node, scope)
        if t == "null":
            return exp.Anonymous(this="emptyArrayString", expressions=[]), exp.true()
        if isinstance(node, Col):
            if scope == "user":  # users without a users row (LEFT JOIN): a NULL flag
                flag = exp.Coalesce(this=col(null_flag(node.name), "a"), expressions=[exp.true()])
            else:
                flag = col(null_flag(node.name))
            return self.value(node, scope, env), flag
        if isinstance(node, Call) and node.name == "coalesce":
            pairs = [self._list(a, scope, env) for a in node.args]
            arr = exp.Case(
                ifs=[exp.If(this=_not(n), true=a) for a, n in pairs],
                default=exp.Anonymous(this="emptyArrayString", expressions=[]),
            )
            return arr, _and([exp.paren(n, copy=False) for _, n in pairs])
        raise RuleError(f"{type(node).__name__} cannot be a list in ClickHouse SQL")

    def _list_call(self, node: Call, scope, env) -> exp.Expression:
        """``has(list, v)`` and ``length(list)`` with the NULL rules of docs/rules.md:
        a NULL list or value gives NULL, NULL elements are counted and never match."""
        typ = "bool" if node.name == "has" else "int"
        if any(self.typ(a, scope) == "null" for a in node.args):
            return self.D.typed_null(typ)
        if self.D.null_flag_lists:
            lst, is_null = self._list(node.args[0], scope, env)
        else:
            lst = self.value(node.args[0], scope, env)
            is_null = exp.Is(this=lst.copy(), expression=exp.null())
        if node.name == "length":
            if self.D.null_flag_lists:
                return exp.Case(
                    ifs=[exp.If(this=is_null, true=self.D.typed_null(typ))],
                    default=exp.ArraySize(this=lst),
                )
            return self.D.list_length(lst)
        v = self.value(node.args[1], scope, env)
        test = self.D.list_contains(lst, v)
        nulls: list[exp.Expression] = []
        if not self.D.contains_is_null_aware():  # a NULL element makes the test NULL
            test = exp.Coalesce(this=test, expressions=[exp.false()])
            nulls.append(is_null)
        elif self.D.null_flag_lists:
            nulls.append(is_null)
        if not isinstance(node.args[1], Lit):  # list_contains([], NULL) is FALSE
            nulls.append(exp.Is(this=v.copy(), expression=exp.null()))
        if not nulls:
            return test
        return exp.Case(
            ifs=[exp.If(this=_or(nulls), true=self.D.typed_null(typ))], default=test
        )

    # ------------------------------------------------------------------ behaviour
    def mask(
        self,
        node: Behavior | Sequence,
        then: bool = False,
    ) -> exp.Expression:
        """Condition selecting a term's events (same as ``evaluate.event_mask``); with
        ``then``, a sequence's B events (``then_where``, no window)."""
        if then:
            name, windowed, w = node.then, False, node.then_where
        else:
            name = getattr(node, "event", None) or node.first
            windowed, w = True, node.where
        parts: list[exp.Expression] = []
        if name != "*":
            parts.append(exp.EQ(this=col("event"), expression=exp.Literal.string(name)))
        hi = self.T
        if windowed:
            lo, hi = window_bounds(node, self.T, self.schema)
            if lo is not None:
                parts.append(exp.GTE(this=col("ts"), expression=self.D.timestamp_literal(lo)))
        parts.append(exp.LT(this=col("ts"), expression=self.D.timestamp_literal(hi)))
        if w is not None:
            parts.append(self.value(w, "event", {}))
        return _and(parts)

    def _props(self, nodes: list[Node]) -> set[str]:
        """The event columns the terms read (same as the Polars evaluator's)."""
        return set(event_columns(nodes))

    def _prefilter(self, nodes: list[Behavior]) -> exp.Expression:
        """A loose filter keeping every event the terms can read (as the Polars evaluator)."""
        names, since = prefilter_bounds(nodes, self.T, self.schema)
        parts: list[exp.Expression] = [exp.LT(this=col("ts"), expression=self.T_lit())]
        if names is not None:
            parts.append(
                exp.In(this=col("event"), expressions=[exp.Literal.string(x) for x in names])
            )
        if since is not None:
            parts.append(exp.GTE(this=col("ts"), expression=self.D.timestamp_literal(since)))
        return _and(parts)

    def _aggregate(self, node: Behavior) -> exp.Expression:
        m = self.mask(node)

        def when(v: exp.Expression) -> exp.Expression:
            return exp.Case(ifs=[exp.If(this=m.copy(), true=v)])

        f = node.func
        if f in ("did", "event_count"):
            return exp.Count(this=when(exp.Literal.number(1)))
        if f in ("first_seen", "last_seen"):
            cls = exp.Min if f == "first_seen" else exp.Max
            return cls(this=when(col("ts")))
        if f == "event_periods":
            # period k is [T-(k+1)P, T-kP): k = (T - ts - 1us) // P (ts < T, so age >= 0)
            T_minus_1 = exp.Literal.number(self.T_us() - 1)
            age = exp.Sub(this=T_minus_1, expression=self.D.epoch_us(col("ts")))
            k = self.D.int_div(exp.paren(age, copy=False), exp.Literal.number(node.period))
            return exp.Count(this=exp.Distinct(expressions=[when(k)]))
        prop = col(node.prop)
        if f == "event_sum":
            return exp.Sum(this=when(prop))
        if f == "event_avg":
            return exp.Avg(this=when(prop))
        if f == "event_min":
            return exp.Min(this=when(prop))
        if f == "event_max":
            return exp.Max(this=when(prop))
        if f == "event_distinct":
            return exp.Count(this=exp.Distinct(expressions=[when(prop)]))
        raise RuleError(f"unknown function {f}")

    def behaviour_cte(self, nodes: list[Behavior]) -> tuple[str, list[str]]:
        """One GROUP BY over the events with a column per aggregate."""
        names = [f"sc_v{i}" for i in range(len(nodes))]
        sel = exp.select(
            col("user_id"),
            *[exp.alias_(self._aggregate(n), c) for n, c in zip(nodes, names, strict=True)],
        )
        sel = sel.from_(_aliased(self.events(self._props(nodes)), "e"))
        sel = sel.where(self._prefilter(nodes)).group_by(col("user_id"))
        return self.add_cte("b", sel), names

    def sequence_cte(self, node: Sequence) -> str:
        """Users for whom a sequence holds (column ``v`` = 1), via a RANGE window."""
        is_a = exp.Case(
            ifs=[exp.If(this=self.mask(node), true=exp.Literal.number(1))],
            default=exp.Literal.number(0),
        )
        mb = self.mask(node, then=True)
        is_b = exp.Case(
            ifs=[exp.If(this=mb, true=exp.Literal.number(1))], default=exp.Literal.number(0)
        )
        names = {node.first, node.then}
        where = [exp.LT(this=col("ts"), expression=self.T_lit())]
        lo = window_bounds(node, self.T, self.schema)[0]
        if lo is not None:  # B events before the first possible A cannot follow it
            where.append(exp.GTE(this=col("ts"), expression=self.D.timestamp_literal(lo)))
        if "*" not in names:
            where.append(
                exp.In(
                    this=col("event"), expressions=[exp.Literal.string(x) for x in sorted(names)]
                )
            )
        rows = exp.select(
            col("user_id"),
            exp.alias_(self.D.epoch_us(col("ts")), "sc_ts_us"),
            exp.alias_(is_a, "sc_is_a"),
            exp.alias_(is_b, "sc_is_b"),
        )
        rows = rows.from_(_aliased(self.events(self._props([node])), "e")).where(_and(where))
        b_us = exp.Case(
            ifs=[
                exp.If(
                    this=exp.EQ(this=exp.column("sc_is_b"), expression=exp.Literal.number(1)),
                    true=exp.column("sc_ts_us"),
                )
            ]
        )
        win = exp.Window(  # the first B event strictly after each row
            this=exp.Min(this=b_us),
            partition_by=[col("user_id")],
            order=exp.Order(
                expressions=[exp.Ordered(this=exp.column("sc_ts_us"), nulls_first=False)]
            ),
            spec=exp.WindowSpec(
                kind="RANGE",
                start=exp.Literal.number(1),
                start_side="FOLLOWING",
                end="UNBOUNDED",
                end_side="FOLLOWING",
            ),
        )
        framed = exp.select(
            col("user_id"), exp.column("sc_ts_us"), exp.column("sc_is_a"), exp.alias_(win, "sc_nb")
        ).from_(_aliased(rows, "r"))
        gap_end = exp.Add(this=exp.column("sc_ts_us"), expression=exp.Literal.number(node.gap))
        followed = exp.Coalesce(
            this=_and(
                [
                    exp.GT(this=exp.column("sc_nb"), expression=exp.column("sc_ts_us")),
                    exp.LTE(this=exp.column("sc_nb"), expression=gap_end),
                ]
            ),
            expressions=[exp.false()],
        )
        conds = [exp.EQ(this=exp.column("sc_is_a"), expression=exp.Literal.number(1))]
        if node.func == "did_then":
            conds.append(followed)
        else:
            T_us = exp.Literal.number(self.T_us())
            conds.append(exp.LT(this=gap_end.copy(), expression=T_us))
            conds.append(_not(followed))
        flag = exp.Case(
            ifs=[exp.If(this=_and(conds), true=exp.Literal.number(1))],
            default=exp.Literal.number(0),
        )
        sel = exp.select(col("user_id"), exp.alias_(exp.Max(this=flag), "sc_v"))
        sel = sel.from_(_aliased(framed, "w")).group_by(col("user_id"))
        return self.add_cte("s", sel)

    # ------------------------------------------------------------------ members
    def members(self, tree: Node, stack: tuple[str, ...] = ()) -> str:
        """CTE name of the members (one ``user_id`` column) of ``tree`` at T."""
        terms = behaviours(tree)
        aggs = [n for n in terms if isinstance(n, Behavior)]
        seqs = [n for n in terms if isinstance(n, Sequence)]
        env: dict[Node, exp.Expression] = {}
        joins: list[tuple[str, str]] = []  # (cte, alias)
        if aggs:
            cte, names = self.behaviour_cte(aggs)
            joins.append((cte, "b"))
            for n, c in zip(aggs, names, strict=True):
                ref = exp.column(c, table="b")
                default = AGGREGATES[n.func][1]
                if n.func == "did":
                    env[n] = exp.GT(
                        this=exp.Coalesce(this=ref, expressions=[exp.Literal.number(0)]),
                        expression=exp.Literal.number(0),
                    )
                elif default is not None:
                    env[n] = exp.Coalesce(this=ref, expressions=[exp.Literal.number(default)])
                else:
                    env[n] = ref
        for i, s in enumerate(seqs):
            alias = f"s{i}"
            joins.append((self.sequence_cte(s), alias))
            env[s] = exp.EQ(
                this=exp.Coalesce(
                    this=exp.column("sc_v", table=alias), expressions=[exp.Literal.number(0)]
                ),
                expression=exp.Literal.number(1),
            )
        for i, ref_name in enumerate(sorted(segment_refs(tree))):
            alias = f"g{i}"
            joins.append((self.segment(ref_name, stack), alias))
            env[InSegment(ref_name)] = exp.Not(
                this=exp.Is(this=exp.column("user_id", table=alias), expression=exp.null())
            )
        cond = self.value(tree, "user", env)
        attrs = sorted(tree_columns(tree) - {"user_id"})
        sel = exp.select(exp.alias_(exp.column("user_id", table="u"), ident("user_id"))).from_(
            self._base(tree, aggs, seqs, attrs, joins)
        )
        if attrs or (
            self.D.null_flag_lists
            and any(isinstance(n, Call) and n.name in ("has", "length") for n in tree.walk())
        ):
            flags = [col(null_flag(c)) for c in attrs if self._ch_list(c, "user")]
            users = exp.select(*[col(c) for c in ["user_id", *attrs]], *flags).from_(
                _aliased(self.users(attrs), "x")
            )
            sel = sel.join(
                _aliased(users, "a"),
                on=exp.EQ(
                    this=exp.column("user_id", table="a"),
                    expression=exp.column("user_id", table="u"),
                ),
                join_type="left",
            )
        for cte, alias in joins:
            sel = sel.join(
                exp.Table(
                    this=exp.to_identifier(cte), alias=exp.TableAlias(this=exp.to_identifier(alias))
                ),
                on=exp.EQ(
                    this=exp.column("user_id", table=alias),
                    expression=exp.column("user_id", table="u"),
                ),
                join_type="left",
            )
        sel = sel.where(cond)
        return self.add_cte("m", sel)

    def _base(
        self, tree: Node, aggs: list, seqs: list, attrs: list[str], joins: list[tuple[str, str]]
    ) -> exp.Expression:
        """The users that can be members, aliased ``u`` (as ``evaluate.plan_members``).

        The whole universe when a user with no attributes and no matching event could
        be a member; otherwise only the users with attributes or with rows in the
        term CTEs, which spares a scan of every event for the universe.
        """
        alias = exp.TableAlias(this=exp.to_identifier("u"))
        if needs_universe(tree, self.schema, self.T, term_columns(tree)) or not (attrs or joins):
            return exp.Table(this=exp.to_identifier(self.universe()), alias=alias)
        parts: list[exp.Select] = []
        if attrs:
            parts.append(exp.select(col("user_id")).from_(_aliased(self.users(), "x")))
        parts += [exp.select(col("user_id")).from_(exp.to_identifier(cte)) for cte, _ in joins]
        union = parts[0]
        for p in parts[1:]:
            union = exp.union(union, p, distinct=True)
        return exp.Subquery(this=union, alias=alias)

    def segment(self, name: str, stack: tuple[str, ...] = ()) -> str:
        """CTE name of a saved segment's members at T (static or dynamic)."""
        seg = resolve_segment(self.store, name, stack)
        if seg.name in self._segments:
            return self._segments[seg.name]
        if seg.tree is None:  # static: the stored ids in the universe at T
            ids = list(self.store.catalog.members(seg.name))
            sel = exp.select(col("user_id")).from_(exp.to_identifier(self.universe()))
            if ids:
                cond = exp.In(
                    this=col("user_id"), expressions=[exp.Literal.string(str(i)) for i in ids]
                )
            else:
                cond = exp.false()
            cte = self.add_cte("static", sel.where(cond))
        else:
            cte = self.members(seg.tree, seg.stack)
        self._segments[seg.name] = cte
        return cte

    def target(self, tree: Node | None, segment: str | None = None) -> str:
        """CTE name of the members of a rule's tree or of a saved segment at T."""
        return self.segment(segment) if segment is not None else self.members(tree)

    def with_attributes(
        self, members_cte: str, attrs: list[str], projections: list[exp.Expression]
    ) -> exp.Select:
        """``SELECT projections FROM members AS u LEFT JOIN users AS a``: user-scope
        values (``self.value(node, "user", {})``) read ``a``'s ``attrs``."""
        flags = [col(null_flag(c)) for c in attrs if self._ch_list(c, "user")]
        users = exp.select(*[col(c) for c in ["user_id", *attrs]], *flags).from_(
            _aliased(self.users(attrs), "x")
        )
        sel = exp.select(*projections).from_(
            exp.Table(this=exp.to_identifier(members_cte),
                      alias=exp.TableAlias(this=exp.to_identifier("u")))
        )
        return sel.join(
            _aliased(users, "a"),
            on=exp.EQ(this=exp.column("user_id", table="a"),
                      expression=exp.column("user_id", table="u")),
            join_type="left",
        )

    def finish(self, sel: exp.Select) -> exp.Select:
        """``sel`` with every CTE and the dialect's settings."""
        for name, q in self.ctes:
            sel = sel.with_(exp.to_identifier(name), as_=q, copy=False)
        return self.D.settings(sel)

    def query(self, members_cte: str) -> exp.Select:
        """The final ``SELECT user_id ... ORDER BY user_id`` with every CTE."""
        sel = (
            exp.select(col("user_id"))
            .from_(exp.to_identifier(members_cte))
            .order_by(col("user_id"))
        )
        return self.finish(sel)
