"""Derived columns at ingest: ``--derive "NAME = EXPRESSION"``.

The expression is written in the rule language's expression syntax (``docs/rules.md``:
arithmetic, comparisons, ``LIKE``, ``CASE WHEN ... THEN ... ELSE ... END``, ``lower()``,
``coalesce()``...) over the columns of the incoming rows, after ``--map`` and type
inference. It is parsed into the condition tree (:func:`segcore.lang.parser.parse_expression`)
and compiled to a Polars expression (:mod:`segcore.engine.polars.expressions`); it never reaches an
engine as text. Derivations apply in order, so a later one may use an earlier one, and
a derived column replaces an incoming column of the same name.

>>> parse_derivation("amount = quantity * price")
('amount', 'quantity * price')
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from segcore.engine.polars.expressions import Ctx, to_expr
from segcore.engine.rules import type_name
from segcore.errors import IngestError, RuleError
from segcore.ingest.timestamps import UTC_US, parse_timestamps
from segcore.ingest.validate import cast_expr
from segcore.lang.parser import parse_expression
from segcore.lang.tree import BEHAVIOURAL, InSegment, Schema

_EXAMPLE = "e.g. amount = quantity * price"


def parse_derivation(spec: str) -> tuple[str, str]:
    """``"NAME = EXPRESSION"`` -> ``(NAME, EXPRESSION)``; a name may be double-quoted."""
    name, sep, text = str(spec).partition("=")
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1].replace('""', '"')
    if not sep or not name or not text.strip():
        raise IngestError(f"bad derived column {spec!r}: write NAME = EXPRESSION, {_EXAMPLE}")
    if name.startswith("\x00"):
        raise IngestError(f"bad derived column {spec!r}: bad column name")
    return name, text.strip()


def derive_columns(
    df: pl.DataFrame,
    specs: Sequence[str],
    kind: str,
    hidden: Sequence[str] = (),
    stored: dict[str, pl.DataType] | None = None,
) -> pl.DataFrame:
    """``df`` with each derived column added (or replaced), in order.

    ``hidden`` columns (bookkeeping) are not visible to the expressions. A column the
    store already has is seen with its stored type (``stored``), as it will be stored;
    events' ``ts`` is seen as a timestamp.
    """
    scope = "event" if kind == "events" else "user"
    now = dt.datetime.now(dt.timezone.utc)
    stored = stored or {}
    casts = []
    for c, d in df.schema.items():  # ok-loop: one cast per column
        target = stored.get(c, UTC_US if (c == "ts" and kind == "events") else None)
        if target is None or c in hidden or target in (d, pl.Null):
            continue
        if isinstance(target, pl.Datetime) and not d.is_numeric():
            casts.append(pl.lit(parse_timestamps(df[c]).cast(target)).alias(c))
        else:
            casts.append(cast_expr(c, d, target).alias(c))
    view = df.with_columns(casts)
    names: list[str] = []
    for spec in specs:  # ok-loop: a few --derive options
        name, text = parse_derivation(spec)
        types = {
            c: t for c, d in view.schema.items() if c not in hidden and (t := type_name(d))
        }
        schema = Schema(events=types) if scope == "event" else Schema(users=types)
        try:
            node, _ = parse_expression(text, schema, scope)
        except RuleError as exc:
            raise IngestError(f"derived column {spec!r}: {exc}") from None
        if any(isinstance(n, (*BEHAVIOURAL, InSegment)) for n in node.walk()):
            raise IngestError(
                f"derived column {spec!r}: a derived column is computed from its own row; "
                "event functions and in_segment() are not allowed"
            )
        try:
            view = view.with_columns(to_expr(node, Ctx(now, schema, scope)).alias(name))
        except pl.exceptions.PolarsError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise IngestError(f"derived column {spec!r}: cannot compute it ({first})") from None
        names.append(name)
    return df.with_columns(view.select(list(dict.fromkeys(names))))


__all__ = ["derive_columns", "parse_derivation"]
