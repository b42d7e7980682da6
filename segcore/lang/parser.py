"""Rule text -> typed condition tree, on sqlglot's parser, checked against a schema.

Every problem is a :class:`segcore.errors.RuleError` naming it and, where it
comes from the text, its 1-based line and column.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import sys
from collections.abc import Callable
from dataclasses import replace

import sqlglot
from sqlglot import exp

from segcore.errors import RuleError
from segcore.lang.durations import duration_us
from segcore.lang.tree import (
    AGGREGATES,
    SEQUENCES,
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
    conj,
    disj,
)
from segcore.lang.types import BEHAVIOR_TYPES, NUMERIC, TEMPORAL
from segcore.lang.types import arith_type as _arith_type
from segcore.lang.types import comparable as _comparable
from segcore.lang.types import tname as _tname

MAX_RULE_CHARS = 100_000
MAX_DEPTH = 64
MAX_TREE_DEPTH = 160  # operators nested in one another (e.g. a + b + c + ...)
MAX_NODES = 20_000
_PARSE_RECURSION = 4_000  # sqlglot's recursive descent needs ~20 frames per '(' level
MAX_INT = 2**63 - 1

WINDOW_KWARGS = ("within", "since", "until", "where")
_SQLGLOT_FUNCS: dict[type, str] = {
    exp.Lower: "lower", exp.Upper: "upper", exp.Length: "length", exp.Contains: "contains",
    exp.StartsWith: "starts_with", exp.Coalesce: "coalesce", exp.CurrentDate: "today",
    exp.CurrentTimestamp: "now",
}
for _name in ("EndsWith", "Now", "CurrentDatetime"):
    if hasattr(exp, _name):
        _SQLGLOT_FUNCS[getattr(exp, _name)] = {"EndsWith": "ends_with"}.get(_name, "now")
_COMPARE = {exp.EQ: "=", exp.NEQ: "!=", exp.LT: "<", exp.LTE: "<=", exp.GT: ">", exp.GTE: ">="}
_ARITH = {exp.Add: "+", exp.Sub: "-", exp.Mul: "*", exp.Div: "/"}


def _shorten(text: str, keep: int = 40) -> str:
    """A long literal for an error message: its start, its end and its length."""
    if len(text) <= keep:
        return text
    return f"{text[:16]}...{text[-8:]} ({len(text):,} characters)"


# --------------------------------------------------------------------------- pre-scan
def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def _sqlglot_position(text: str, line: int, col: int) -> tuple[int, int]:
    """sqlglot's line/column (it also breaks lines at a lone CR) as ours, within the text."""
    starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]
    offset = starts[min(max(line, 1), len(starts)) - 1] + col - 1
    return _line_col(text, min(max(offset, 0), len(text)))


def _article(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def _one_line(message: str) -> str:
    """Error messages are one line (the CLI prints one line on stderr)."""
    return " ".join(message.split())


def _sqlglot_parse(text: str) -> list:
    """``sqlglot.parse`` without its log warnings (they would be extra stderr lines)."""
    log = logging.getLogger("sqlglot")
    was = log.disabled
    log.disabled = True
    try:
        return sqlglot.parse(text, error_level=sqlglot.ErrorLevel.RAISE)
    finally:
        log.disabled = was


def _prescan(text: str) -> None:
    """Size, control characters, unterminated quotes and nesting depth."""
    if len(text) > MAX_RULE_CHARS:
        raise RuleError(f"rule is too long ({len(text):,} characters; the limit is "
                        f"{MAX_RULE_CHARS:,})")
    if not text.strip():
        raise RuleError("rule is empty")
    depth = 0
    quote: str | None = None
    start = 0
    closed = (-2, "")  # (position, quote) of the last closing quote
    for i, ch in enumerate(text):  # ok-loop: characters of the rule text
        if ch == "\x00" or (ord(ch) < 32 and ch not in "\t\n\r"):
            raise RuleError(f"control character U+{ord(ch):04X} in rule", *_line_col(text, i))
        if quote:
            if ch == quote:
                quote = None  # a doubled quote re-opens on the next character
                closed = (i, ch)
            continue
        if ch in "'\"":
            if closed != (i - 1, ch):  # not the second half of a doubled quote
                start = i
            quote = ch
        elif ch == "(":
            depth += 1
            if depth > MAX_DEPTH:
                raise RuleError(f"rule is nested too deeply (more than {MAX_DEPTH} levels)",
                                *_line_col(text, i))
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise RuleError("unbalanced ')'", *_line_col(text, i))
    if quote:
        what = "string" if quote == "'" else "quoted identifier"
        raise RuleError(f"unterminated {what}", *_line_col(text, start))
    if depth > 0:
        raise RuleError("missing ')'", *_line_col(text, len(text)))


# --------------------------------------------------------------------------- parser
class _Parser:
    def __init__(self, text: str, schema: Schema):
        self.text = text
        self.schema = schema
        self.nodes = 0
        self.depth = 0

    # ---- positions and errors
    def _pos(self, e: exp.Expression | None) -> tuple[int | None, int | None]:
        if e is None:
            return None, None
        best = None
        for n in e.walk():
            start = n.meta.get("start") if n.meta else None
            if start is not None and (best is None or start < best):
                best = start
        if best is None:
            return None, None
        # a string literal's token starts after its quote
        if best > 0 and self.text[best - 1 : best] in ("'", '"') and isinstance(e, exp.Literal | exp.Identifier | exp.Column):
            best -= 1
        return _line_col(self.text, best)

    def error(self, message: str, e: exp.Expression | None = None) -> RuleError:
        return RuleError(message, *self._pos(e))

    def sql(self, e: exp.Expression) -> str:
        try:
            s = e.sql(normalize_functions=False)
        except Exception:
            s = type(e).__name__
        s = _one_line(s)
        return s if len(s) <= 60 else s[:57] + "..."

    # ---- entry
    def _statement(self, what: str) -> exp.Expression:
        """The text's one statement as a sqlglot tree (``what``: "condition"/"expression")."""
        _prescan(self.text)
        old_limit = sys.getrecursionlimit()
        try:
            sys.setrecursionlimit(max(old_limit, _PARSE_RECURSION))
            parsed = _sqlglot_parse(self.text)
        except sqlglot.errors.ParseError as err:
            info = err.errors[0] if err.errors else {}
            desc = str(info.get("description") or err).split(". Line")[0]
            desc = _one_line(_friendly_parse_error(desc))
            line, col = info.get("line"), info.get("col")
            if line is not None and col is not None:
                highlight = info.get("highlight") or ""
                line, col = _sqlglot_position(self.text, line, max(1, col - len(highlight) + 1))
            raise RuleError(f"syntax error: {desc}", line, col) from None
        except sqlglot.errors.TokenError as err:
            raise RuleError(f"syntax error: {_one_line(str(err))}") from None
        except RecursionError:
            raise RuleError("rule is nested too deeply") from None
        except (AttributeError, TypeError, ValueError, IndexError, KeyError):
            # sqlglot itself fails on some malformed text (e.g. "x > { = 3")
            raise RuleError(f"syntax error: this text is not {_article(what)}") from None
        finally:
            sys.setrecursionlimit(old_limit)
        statements = [p for p in parsed if p is not None]
        if not statements:
            raise RuleError("rule is empty (only a comment)")
        if len(statements) != 1:
            raise RuleError(f"a rule is one {what}; remove the ';'" if what == "condition"
                            else "write one expression")
        root = statements[0]
        if isinstance(root, exp.Query | exp.Command | exp.DDL | exp.DML | exp.Block):
            raise self.error("a rule is a condition (a WHERE clause), not a statement"
                             if what == "condition"
                             else "an expression (like a * b), not a statement", root)
        return root

    def parse(self, scope: str = "user") -> Node:
        root = self._statement("condition")
        node, typ = self.conv(root, scope)
        if typ not in ("bool", "null"):
            raise self.error(f"the rule must be a condition (true or false), but "
                             f"{self.sql(root)} is {_tname(typ)}", root)
        return node

    def parse_value(self, scope: str) -> tuple[Node, str]:
        """An expression of any type (derived columns): its tree and type."""
        return self.conv(self._statement("expression"), scope)

    # ---- dispatch
    def conv(self, e: exp.Expression, scope: str) -> tuple[Node, str]:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise RuleError(f"rule is too large (more than {MAX_NODES:,} terms)")
        if isinstance(e, exp.Paren):
            return self.conv(e.this, scope)
        self.depth += 1
        try:
            if self.depth > MAX_TREE_DEPTH:
                raise self.error(f"rule is nested too deeply (more than {MAX_TREE_DEPTH} "
                                 "operators inside one another)", e)
            for cls in type(e).__mro__:
                handler = getattr(self, f"c_{cls.__name__}", None)
                if handler is not None:
                    return handler(e, scope)
            raise self.error(f"unsupported syntax {self.sql(e)}", e)
        finally:
            self.depth -= 1

    def conv_bool(self, e: exp.Expression, scope: str, what: str) -> Node:
        node, typ = self.conv(e, scope)
        if typ not in ("bool", "null"):
            raise self.error(f"{what} needs a condition, but {self.sql(e)} is "
                             f"{_tname(typ)}", e)
        return node

    # ---- connectors
    def _flatten(self, e: exp.Expression, cls: type) -> list[exp.Expression]:
        out, stack = [], [e]
        while stack:
            cur = stack.pop()
            while isinstance(cur, exp.Paren) and isinstance(cur.this, cls):
                cur = cur.this
            if isinstance(cur, cls):
                stack.append(cur.expression)
                stack.append(cur.this)
            else:
                out.append(cur)
        return out

    def c_And(self, e: exp.And, scope: str) -> tuple[Node, str]:
        return conj(*(self.conv_bool(x, scope, "AND") for x in self._flatten(e, exp.And))), "bool"

    def c_Or(self, e: exp.Or, scope: str) -> tuple[Node, str]:
        return disj(*(self.conv_bool(x, scope, "OR") for x in self._flatten(e, exp.Or))), "bool"

    def c_Xor(self, e: exp.Expression, scope: str) -> tuple[Node, str]:
        raise self.error("XOR is not supported; use (a AND NOT b) OR (NOT a AND b)", e)

    def c_Not(self, e: exp.Not, scope: str) -> tuple[Node, str]:
        inner = e.this
        while isinstance(inner, exp.Paren):
            inner = inner.this
        if isinstance(inner, exp.Is | exp.In | exp.Like | exp.ILike | exp.Between):
            node, typ = self.conv(inner, scope)
            if isinstance(node, IsNull | IsBool | InList | Like | Between):
                return replace(node, negated=not node.negated), typ
        return Not(self.conv_bool(e.this, scope, "NOT")), "bool"

    # ---- predicates
    def c_Is(self, e: exp.Is, scope: str) -> tuple[Node, str]:
        arg, _ = self.conv(e.this, scope)
        target = e.expression
        if isinstance(target, exp.Null):
            return IsNull(arg), "bool"
        if isinstance(target, exp.Boolean):
            self._need_bool(e.this, scope)
            return IsBool(arg, bool(target.this)), "bool"
        raise self.error("IS must be followed by NULL, TRUE or FALSE", target)

    def _need_bool(self, e: exp.Expression, scope: str) -> None:
        _, typ = self.conv(e, scope)
        if typ not in ("bool", "null"):
            raise self.error(f"IS TRUE/FALSE needs a condition, but {self.sql(e)} is "
                             f"{_tname(typ)}", e)

    def c_Binary(self, e: exp.Binary, scope: str) -> tuple[Node, str]:
        for cls, op in _COMPARE.items():
            if isinstance(e, cls):
                left, right = self.coerce_pair(e.this, e.expression, scope, op)
                return Compare(op, left, right), "bool"
        for cls, op in _ARITH.items():
            if isinstance(e, cls):
                return self.arith(e, op, scope)
        if isinstance(e, exp.Like | exp.ILike):
            return self.like(e, scope)
        raise self.error(f"unsupported operator in {self.sql(e)}", e)

    def like(self, e: exp.Binary, scope: str) -> tuple[Node, str]:
        arg, at = self.conv(e.this, scope)
        pat, pt = self.conv(e.expression, scope)
        for node_e, t in ((e.this, at), (e.expression, pt)):
            if t not in ("string", "null"):
                raise self.error(f"LIKE works on text, but {self.sql(node_e)} is "
                                 f"{_tname(t)}", node_e)
        if not isinstance(pat, Lit):
            raise self.error("LIKE needs its pattern written as a string, like '%abc%'",
                             e.expression)
        if e.args.get("escape"):
            raise self.error("LIKE ... ESCAPE is not supported", e)
        return Like(arg, pat, case_insensitive=isinstance(e, exp.ILike),
                    negated=bool(e.args.get("negate"))), "bool"

    def c_In(self, e: exp.In, scope: str) -> tuple[Node, str]:
        if e.args.get("query") or e.args.get("unnest") or e.args.get("field"):
            raise self.error("IN needs a list of values; subqueries are not supported", e)
        if not e.expressions:
            raise self.error("IN needs at least one value", e)
        arg, at = self.conv(e.this, scope)
        items = tuple(self.coerce_to(x, at, scope, "IN", e.this) for x in e.expressions)
        return InList(arg, items), "bool"

    def c_Between(self, e: exp.Between, scope: str) -> tuple[Node, str]:
        arg, at = self.conv(e.this, scope)
        low = self.coerce_to(e.args["low"], at, scope, "BETWEEN", e.this)
        high = self.coerce_to(e.args["high"], at, scope, "BETWEEN", e.this)
        return Between(arg, low, high), "bool"

    # ---- type coercion
    def coerce_pair(self, le: exp.Expression, re_: exp.Expression, scope: str,
                    op: str) -> tuple[Node, Node]:
        left, lt = self.conv(le, scope)
        right, rt = self.conv(re_, scope)
        left, lt = self._literal_to(left, lt, rt, le)
        right, rt = self._literal_to(right, rt, lt, re_)
        if not _comparable(lt, rt):
            raise self.error(f"type mismatch: cannot compare {self.sql(le)} ({_tname(lt)}) "
                             f"with {self.sql(re_)} ({_tname(rt)})", re_)
        if op not in ("=", "!=") and "bool" in (lt, rt) and lt != rt:
            raise self.error("booleans can only be compared with = or !=", re_)
        return left, right

    def coerce_to(self, e: exp.Expression, target: str, scope: str, what: str,
                  target_e: exp.Expression) -> Node:
        node, typ = self.conv(e, scope)
        node, typ = self._literal_to(node, typ, target, e)
        if not _comparable(typ, target):
            raise self.error(f"type mismatch in {what}: {self.sql(e)} ({_tname(typ)}) "
                             f"against {self.sql(target_e)} ({_tname(target)})", e)
        return node

    def _literal_to(self, node: Node, typ: str, other: str,
                    e: exp.Expression) -> tuple[Node, str]:
        """Plain date strings compared with date/timestamp values become dates."""
        if isinstance(node, Lit) and typ == "string" and other in TEMPORAL:
            return self.temporal_literal(node.value, other, e), other
        return node, typ

    def temporal_literal(self, text: str, typ: str, e: exp.Expression) -> Lit:
        s = str(text).strip()
        try:
            if typ == "date" or re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
                if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
                    d = dt.date.fromisoformat(s)
                    return Lit(d.isoformat(), "date") if typ == "date" else Lit(
                        dt.datetime.combine(d, dt.time()).isoformat(), "timestamp")
                if typ == "date":
                    raise ValueError
            v = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
        except ValueError:
            want = "a date like '2026-01-31'" if typ == "date" else \
                "a timestamp like '2026-01-31 12:00:00'"
            raise self.error(f"{s!r} is not {want}", e) from None
        if v.tzinfo is not None:
            v = v.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return Lit(v.isoformat(), "timestamp")

    def unify(self, parts: list[tuple[Node, str, exp.Expression]], what: str
              ) -> tuple[list[Node], str]:
        """Values that must share one type (``coalesce``, ``CASE``): nodes and the type.

        Integers and floats make floats, dates and timestamps make timestamps, and a
        text literal after dates or timestamps is read as one (``'2026-01-31'``).
        """
        typ = "null"
        for node, t, e in parts:
            if typ == "null":
                typ = t
            elif t != "null" and t != typ:
                if {t, typ} <= set(NUMERIC):
                    typ = "float"
                elif {t, typ} <= set(TEMPORAL):
                    typ = "timestamp"
                elif t == "string" and typ in TEMPORAL and isinstance(node, Lit):
                    continue
                else:
                    raise self.error(f"{what} mixes {_tname(typ)} and {_tname(t)}", e)
        return [self._literal_to(node, t, typ, e)[0] for node, t, e in parts], typ

    def c_Case(self, e: exp.Case, scope: str) -> tuple[Node, str]:
        subject = e.this
        branches = e.args.get("ifs") or []
        if not branches:
            raise self.error("CASE needs at least one WHEN ... THEN ...", e)
        conditions, parts = [], []
        for branch in branches:
            when, then = branch.this, branch.args.get("true")
            if subject is not None:  # CASE x WHEN 1 THEN ...: x = 1
                left, right = self.coerce_pair(subject, when, scope, "=")
                conditions.append(Compare("=", left, right))
            else:
                conditions.append(self.conv_bool(when, scope, "WHEN"))
            node, typ = self.conv(then, scope)
            parts.append((node, typ, then))
        default_e = e.args.get("default")
        if default_e is not None:
            node, typ = self.conv(default_e, scope)
            parts.append((node, typ, default_e))
        nodes, typ = self.unify(parts, "CASE")
        default = nodes.pop() if default_e is not None else None
        return Case(tuple(conditions), tuple(nodes), default), typ

    # ---- arithmetic
    def arith(self, e: exp.Binary, op: str, scope: str) -> tuple[Node, str]:
        left, lt = self.conv(e.this, scope)
        right, rt = self.conv(e.expression, scope)
        typ = _arith_type(op, lt, rt)
        if typ is None:
            raise self.error(f"type mismatch: cannot compute {_tname(lt)} {op} {_tname(rt)} "
                             f"in {self.sql(e)}", e)
        return Arith(op, left, right), typ

    def c_Neg(self, e: exp.Neg, scope: str) -> tuple[Node, str]:
        node, typ = self.conv(e.this, scope)
        if typ not in ("int", "float", "interval", "null"):
            raise self.error(f"cannot negate {_tname(typ)}", e)
        if isinstance(node, Lit) and typ in ("int", "float", "interval"):
            return Lit(-node.value, typ), typ
        return Neg(node), typ

    # ---- atoms
    def c_Literal(self, e: exp.Literal, scope: str) -> tuple[Node, str]:
        if e.is_string:
            return Lit(e.this, "string"), "string"
        text = e.this
        if re.fullmatch(r"\d+", text):
            # the length first: int() refuses texts of over 4,300 digits with a ValueError
            if len(text.lstrip("0")) > len(str(MAX_INT)) or int(text) > MAX_INT:
                raise self.error(f"number {_shorten(text)} is out of range "
                                 f"(integers go up to {MAX_INT})", e)
            return Lit(int(text), "int"), "int"
        try:
            f = float(text)
        except ValueError:
            raise self.error(f"bad number {_shorten(text)!r}", e) from None
        if math.isinf(f) or math.isnan(f):
            raise self.error(f"number {_shorten(text)} is out of range", e)
        return Lit(f, "float"), "float"

    def c_Boolean(self, e: exp.Boolean, scope: str) -> tuple[Node, str]:
        return Lit(bool(e.this), "bool"), "bool"

    def c_Null(self, e: exp.Null, scope: str) -> tuple[Node, str]:
        return Lit(None, "null"), "null"

    def c_Cast(self, e: exp.Cast, scope: str) -> tuple[Node, str]:
        to = e.args.get("to")
        kind = to.this if to is not None else None
        inner = e.this
        if isinstance(inner, exp.Literal) and inner.is_string:
            if kind == exp.DataType.Type.DATE:
                return self.temporal_literal(inner.this, "date", inner), "date"
            if kind in (exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPTZ,
                        exp.DataType.Type.DATETIME):
                return self.temporal_literal(inner.this, "timestamp", inner), "timestamp"
        raise self.error(f"unsupported cast {self.sql(e)} (DATE '...' and TIMESTAMP '...' "
                         "literals are supported)", e)

    def c_Interval(self, e: exp.Interval, scope: str) -> tuple[Node, str]:
        this = e.this
        unit = e.args.get("unit")
        if not isinstance(this, exp.Literal):
            raise self.error("INTERVAL needs a literal like INTERVAL '30 days'", e)
        text = str(this.this)
        if unit is not None:
            text = f"{text} {unit.name.lower()}"
        try:
            return Lit(duration_us(text, "interval"), "interval"), "interval"
        except RuleError as err:
            raise self.error(err.message, e) from None

    def c_Column(self, e: exp.Column, scope: str) -> tuple[Node, str]:
        if e.table:
            raise self.error(f"qualified names like {self.sql(e)} are not supported", e)
        return self.column(e.name, e, scope)

    def c_Identifier(self, e: exp.Identifier, scope: str) -> tuple[Node, str]:
        return self.column(e.name, e, scope)

    def c_Var(self, e: exp.Var, scope: str) -> tuple[Node, str]:
        return self.column(e.name, e, scope)

    def column(self, name: str, e: exp.Expression, scope: str) -> tuple[Node, str]:
        cols = self.schema.users if scope == "user" else self.schema.events
        if name not in cols:
            folded = [c for c in cols if c.lower() == name.lower()]
            if len(folded) == 1:
                name = folded[0]
            else:
                what = "attribute" if scope == "user" else "event column"
                hint = _suggest(name, cols)
                extra = ""
                if scope == "user" and name in self.schema.events:
                    extra = f"; {name!r} is an event property: use it inside an event function's where => ..."
                elif not hint and isinstance(e.parent, _COMPARED):
                    extra = f"; to compare with the text {name}, quote it: '{name}'"
                raise self.error(f"unknown {what} {name!r}{hint}{extra}", e)
        return Col(name), cols[name]

    # ---- functions
    def c_Func(self, e: exp.Func, scope: str) -> tuple[Node, str]:
        if isinstance(e, exp.Anonymous):
            name = e.name.lower()
            raw_args = list(e.expressions)
        else:
            name = _SQLGLOT_FUNCS.get(type(e))
            if name is None:
                raise self.error(f"unknown function {self.sql(e).split('(')[0]!r}", e)
            raw_args = []
            for key in e.arg_types:
                v = e.args.get(key)
                if isinstance(v, list):
                    raw_args.extend(v)
                elif isinstance(v, exp.Expression):
                    raw_args.append(v)
        args: list[exp.Expression] = []
        kwargs: dict[str, exp.Expression] = {}
        for a in raw_args:
            if isinstance(a, exp.Kwarg | exp.PropertyEQ):
                key = a.this.name.lower()
                if key in kwargs:
                    raise self.error(f"argument {key!r} given twice to {name}()", a)
                kwargs[key] = a.expression
            else:
                if kwargs:
                    raise self.error(f"positional argument after named arguments in {name}()", a)
                args.append(a)
        if name in AGGREGATES:
            return self.behavior(name, e, args, kwargs, scope)
        if name in SEQUENCES:
            return self.sequence(name, e, args, kwargs, scope)
        if name == "in_segment":
            return self.in_segment(e, args, kwargs, scope)
        handler: Callable | None = _SCALARS.get(name)
        if handler is None:
            known = sorted(set(_SCALARS) | set(AGGREGATES) | set(SEQUENCES) | {"in_segment"})
            raise self.error(f"unknown function {name!r}{_suggest(name, known)}", e)
        if kwargs:
            raise self.error(f"{name}() takes no named arguments", next(iter(kwargs.values())))
        return handler(self, name, e, args, scope)

    def scalar_args(self, name: str, e: exp.Expression, args: list[exp.Expression],
                    scope: str, types: list[tuple[str, ...]]) -> list[Node]:
        if len(args) != len(types):
            raise self.error(f"{name}() takes {len(types)} argument"
                             f"{'' if len(types) == 1 else 's'}, got {len(args)}", e)
        out = []
        for a, allowed in zip(args, types, strict=True):
            node, typ = self.conv(a, scope)
            if typ not in allowed and typ != "null":
                raise self.error(f"{name}() needs {' or '.join(_tname(t) for t in allowed)} "
                                 f"here, but {self.sql(a)} is {_tname(typ)}", a)
            out.append(node)
        return out

    # ---- behaviour
    def _event_name(self, fname: str, e: exp.Expression | None, call: exp.Expression) -> str:
        if e is None:
            raise self.error(f"{fname}() needs an event name as its first argument", call)
        if not (isinstance(e, exp.Literal) and e.is_string):
            raise self.error(f"{fname}() needs the event name as a string, like 'charged'", e)
        name = e.this
        known = self.schema.event_names
        if name != "*" and known is not None and name not in known:
            raise self.error(f"unknown event {name!r}{_suggest(name, sorted(known))}", e)
        return name

    def _duration_arg(self, e: exp.Expression, what: str) -> int:
        if isinstance(e, exp.Literal) and e.is_string:
            try:
                us = duration_us(e.this, what)
            except RuleError as err:
                raise self.error(err.message, e) from None
        elif isinstance(e, exp.Interval):
            node, _ = self.c_Interval(e, "user")
            us = node.value
        else:
            raise self.error(f"{what} needs a duration like '30 days'", e)
        if us <= 0:
            raise self.error(f"{what} must be positive", e)
        return us

    def _instant_arg(self, e: exp.Expression, what: str) -> Node:
        node, typ = self.conv(e, "user")
        if isinstance(node, Lit) and typ == "string":
            node, typ = self.temporal_literal(node.value, "timestamp", e), "timestamp"
        if typ not in TEMPORAL:
            raise self.error(f"{what} needs a date or timestamp, but {self.sql(e)} is "
                             f"{_tname(typ)}", e)
        for n in node.walk():
            if not isinstance(n, Lit | Arith | Call | Neg) or (
                    isinstance(n, Call) and n.name not in ("now", "today")):
                raise self.error(f"{what} must be a fixed instant (literals, now(), today() "
                                 "and intervals)", e)
        return node

    def _window(self, fname: str, kwargs: dict[str, exp.Expression],
                allowed: tuple[str, ...]) -> dict:
        for k, v in kwargs.items():
            if k not in allowed:
                raise self.error(f"unknown argument {k!r} for {fname}() (expected "
                                 f"{', '.join(allowed)})", v.parent or v)
        if "within" in kwargs and ("since" in kwargs or "until" in kwargs):
            raise self.error(f"{fname}(): use either within => or since/until =>, not both",
                             kwargs["within"])
        out: dict = {}
        if "within" in kwargs:
            out["within"] = self._duration_arg(kwargs["within"], "within")
        for key in ("since", "until"):
            if key in kwargs:
                out[key] = self._instant_arg(kwargs[key], key)
        if "where" in kwargs:
            out["where"] = self.conv_bool(kwargs["where"], "event", "where =>")
        return out

    def behavior(self, fname: str, e: exp.Expression, args: list[exp.Expression],
                 kwargs: dict[str, exp.Expression], scope: str) -> tuple[Node, str]:
        if scope != "user":
            raise self.error(f"{fname}() cannot be used inside an event filter", e)
        needs_prop, _ = AGGREGATES[fname]
        n_pos = 2 if needs_prop else 1
        if len(args) != n_pos:
            sig = f"{fname}(event, property, ...)" if needs_prop else f"{fname}(event, ...)"
            raise self.error(f"{fname}() takes {n_pos} positional argument"
                             f"{'s' if n_pos > 1 else ''}: {sig}", e)
        event = self._event_name(fname, args[0], e)
        allowed = WINDOW_KWARGS + (("period",) if fname == "event_periods" else ())
        win = self._window(fname, kwargs, allowed)
        prop = None
        typ = BEHAVIOR_TYPES.get(fname)
        if needs_prop:
            pe = args[1]
            if isinstance(pe, exp.Literal) and pe.is_string:
                pe_name = pe.this
            elif isinstance(pe, exp.Column) and not pe.table:
                pe_name = pe.name
            else:
                raise self.error(f"{fname}() needs an event property name as its second "
                                 "argument", pe)
            node, ptype = self.column(pe_name, pe, "event")
            prop = node.name
            if fname in ("event_sum", "event_avg") and ptype not in NUMERIC:
                raise self.error(f"{fname}() needs a numeric property, but {prop!r} is "
                                 f"{_tname(ptype)}", pe)
            if fname in ("event_min", "event_max") and ptype in ("list", "bool"):
                raise self.error(f"{fname}() cannot order {_tname(ptype)} property", pe)
            if fname in ("event_sum", "event_min", "event_max"):
                typ = ptype
        period = None
        if fname == "event_periods":
            if "period" not in kwargs:
                raise self.error("event_periods() needs period => 'week' (or 'day')", e)
            period = self._duration_arg(kwargs["period"], "period")
        return Behavior(fname, event, prop, period=period, **win), typ  # type: ignore[arg-type]

    def sequence(self, fname: str, e: exp.Expression, args: list[exp.Expression],
                 kwargs: dict[str, exp.Expression], scope: str) -> tuple[Node, str]:
        if scope != "user":
            raise self.error(f"{fname}() cannot be used inside an event filter", e)
        if len(args) != 2:
            raise self.error(f"{fname}() takes two event names: {fname}(A, B, gap => '10 "
                             "minutes', ...)", e)
        first = self._event_name(fname, args[0], e)
        then = self._event_name(fname, args[1], e)
        if "gap" not in kwargs:
            raise self.error(f"{fname}() needs gap => '10 minutes' (the time B may follow A)", e)
        gap = self._duration_arg(kwargs.pop("gap"), "gap")
        then_where = None
        if "then_where" in kwargs:
            then_where = self.conv_bool(kwargs.pop("then_where"), "event", "then_where =>")
        win = self._window(fname, kwargs, WINDOW_KWARGS + ("gap", "then_where"))
        return Sequence(fname, first, then, gap, then_where=then_where, **win), "bool"

    def in_segment(self, e: exp.Expression, args: list[exp.Expression],
                   kwargs: dict[str, exp.Expression], scope: str) -> tuple[Node, str]:
        if scope != "user":
            raise self.error("in_segment() cannot be used inside an event filter", e)
        if kwargs or len(args) != 1 or not (isinstance(args[0], exp.Literal) and args[0].is_string):
            raise self.error("in_segment() takes one segment name as a string: "
                             "in_segment('VIP')", e)
        name = args[0].this
        known = self.schema.segments
        if known is not None and name not in known:
            folded = [s for s in known if s.lower() == name.lower()]
            if len(folded) != 1:
                raise self.error(f"unknown segment {name!r}{_suggest(name, sorted(known))}",
                                 args[0])
            name = folded[0]
        return InSegment(name), "bool"


# --------------------------------------------------------------------------- scalars
def _fn_now(p: _Parser, name: str, e, args, scope):
    if args:
        raise p.error(f"{name}() takes no arguments", e)
    return Call("now" if name == "now" else "today"), ("timestamp" if name == "now" else "date")


def _fn_case(p: _Parser, name, e, args, scope):
    return Call(name, tuple(p.scalar_args(name, e, args, scope, [("string",)]))), "string"


def _fn_length(p: _Parser, name, e, args, scope):
    return Call(name, tuple(p.scalar_args(name, e, args, scope, [("string", "list")]))), "int"


def _fn_text_test(p: _Parser, name, e, args, scope):
    nodes = p.scalar_args(name, e, args, scope, [("string",), ("string",)])
    return Call(name, tuple(nodes)), "bool"


def _fn_has(p: _Parser, name, e, args, scope):
    nodes = p.scalar_args(name, e, args, scope, [("list",), ("string",)])
    return Call(name, tuple(nodes)), "bool"


def _fn_coalesce(p: _Parser, name, e, args, scope):
    if len(args) < 2:
        raise p.error("coalesce() takes two or more arguments", e)
    nodes, typ = p.unify([(*p.conv(a, scope), a) for a in args], "coalesce()")
    return Call(name, tuple(nodes)), typ


_SCALARS: dict[str, Callable] = {
    "now": _fn_now, "today": _fn_now, "lower": _fn_case, "upper": _fn_case,
    "length": _fn_length, "contains": _fn_text_test, "starts_with": _fn_text_test,
    "ends_with": _fn_text_test, "has": _fn_has, "coalesce": _fn_coalesce,
}


# --------------------------------------------------------------------------- helpers
# a bare word in these is more likely an unquoted text value than a column
_COMPARED = (exp.EQ, exp.NEQ, exp.In, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Tuple)


def _suggest(name: str, options) -> str:
    import difflib  # only a rule with an unknown name needs it

    close = difflib.get_close_matches(name, list(options), n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


def _friendly_parse_error(desc: str) -> str:
    m = re.match(r"Required keyword: '(\w+)' missing for <class '[\w.]*\.(\w+)'>", desc)
    if m:
        func = {c.__name__: n for c, n in _SQLGLOT_FUNCS.items()}.get(m.group(2))
        if func:
            return f"{func}() is missing an argument"
        return f"{m.group(2).upper()} is missing its operand"
    m = re.match(r"The number of provided arguments \((\d+)\) is greater than the maximum "
                 r"number of supported arguments \((\d+)\)", desc)
    if m:
        return f"too many arguments ({m.group(1)} given, this function takes {m.group(2)})"
    if desc.startswith("Invalid expression / Unexpected token"):
        return "unexpected token"
    return desc


def parse_rule(text: str, schema: Schema) -> Node:
    """Parse rule text into a typed condition tree, checked against ``schema``.

    >>> s = Schema(users={"country": "string"})
    >>> parse_rule("country = 'US'", s)
    Compare(op='=', left=Col(name='country'), right=Lit(value='US', type='string'))
    """
    if not isinstance(text, str):
        raise RuleError(f"a rule must be text, got {type(text).__name__}")
    return _Parser(text, schema).parse("user")


def parse_expression(text: str, schema: Schema, scope: str = "event") -> tuple[Node, str]:
    """Parse an expression of any type (a derived column) over ``scope``'s columns.

    >>> s = Schema(events={"price": "float", "quantity": "int"})
    >>> parse_expression("quantity * price", s)[1]
    'float'
    """
    if not isinstance(text, str):
        raise RuleError(f"an expression must be text, got {type(text).__name__}")
    return _Parser(text, schema).parse_value(scope)


def parse_event_filter(text: str, schema: Schema) -> Node:
    """Parse a ``where`` filter over event columns (as used by funnels and reports)."""
    if not isinstance(text, str):
        raise RuleError(f"an event filter must be text, got {type(text).__name__}")
    return _Parser(text, schema).parse("event")


__all__ = [
    "And", "Or", "Not", "duration_us", "parse_event_filter", "parse_expression",
    "parse_rule",
]
