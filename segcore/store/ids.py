"""The one id rule: how a user id (or an event id) is written as text, in every format.

An id is text. The same rule applies to ``user_id`` in events files and users files
(CSV, NDJSON, Parquet, Segment), to ``event_id`` and ``--key`` values, and to the ids of
static segments, so that one customer is one user whatever file it came from:

- surrounding spaces are removed; an empty id is no id (NULL);
- integers are written in decimal (``17850``);
- a whole number written with a decimal point is that integer: the text ``17850.0`` or
  ``17850.`` (as pandas writes integer ids with gaps) and the float ``17850.0`` (Parquet,
  JSON) are all ``17850``;
- everything else is kept exactly, leading zeros included (``007``, ``17850.5``, ``C123``).

>>> import polars as pl
>>> pl.select(id_text(pl.lit(" 17850.0 "), pl.String)).item()
'17850'
>>> pl.select(id_text(pl.lit(17850.0), pl.Float64)).item()
'17850'
"""

from __future__ import annotations

import polars as pl

INTEGRAL_DECIMAL = r"^([+-]?\d+)\.0*$"


def id_text(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """``expr`` (of type ``dtype``) as id text under the module's rule."""
    if dtype.is_float():
        whole = expr.is_finite() & (expr == expr.floor()) & (expr.abs() < 2.0**63)
        text = pl.coalesce(
            pl.when(whole).then(expr.cast(pl.Int64, strict=False).cast(pl.String)),
            expr.cast(pl.String),
        )
    else:
        text = expr.cast(pl.String)
    text = text.str.strip_chars().str.replace(INTEGRAL_DECIMAL, "${1}")
    return pl.when(text != "").then(text)


def id_series(values: pl.Series) -> pl.Series:
    """A Series of ids under the rule (NULL where there is no id)."""
    name = values.name
    return values.to_frame("v").select(id_text(pl.col("v"), values.dtype)).to_series().rename(name)


__all__ = ["INTEGRAL_DECIMAL", "id_series", "id_text"]
