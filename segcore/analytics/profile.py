"""Audience profile: a segment's attribute distributions next to all users'.

The comparison population is the universe at T (every user of the users table and
every user with an event before T; users known only from events have NULL
attributes). Per attribute, by its type:

- ``categorical`` (strings): the ``top`` values by segment count, then ``other``
  and ``(none)`` for NULL; each with segment and all-users count and share and the
  ``lift`` = segment share / all-users share;
- ``boolean``: ``true``, ``false``, ``(none)`` in the same shape;
- ``numeric``: a histogram with ``bins`` equal-width bins whose edges come from all
  users (shared by both sides), plus ``(none)``; mean and median of each side;
- ``date``/``timestamp``: a histogram by month (``YYYY-MM``) plus ``(none)``;
- ``list`` (tags): each tag's count and share of the users having it (a user can
  have several tags, so these shares do not sum to 1), plus ``(none)`` for users
  with no tag.

For every kind but ``list`` the shares of each side sum to 1.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from segcore.engine.polars.evaluate import members as eval_members
from segcore.engine.polars.evaluate import universe
from segcore.engine.rules import schema_of
from segcore.errors import UsageError
from segcore.lang.dates import resolve_as_of
from segcore.store.events import EventStore

DEFAULT_ATTRIBUTES = (
    "country",
    "plan",
    "age",
    "gender",
    "os",
    "device_type",
    "tags",
    "lead_score",
    "total_spent",
    "created_at",
)
NONE, OTHER = "(none)", "other"
KINDS = {
    "string": "categorical",
    "bool": "boolean",
    "int": "numeric",
    "float": "numeric",
    "date": "date",
    "timestamp": "date",
    "list": "list",
}


def _iso(T) -> str:
    return T.isoformat().replace("+00:00", "Z")


def _rows(frame: pl.DataFrame, n_seg: int, n_all: int) -> list[dict[str, Any]]:
    """Rows ``value, seg, all`` -> dicts with counts, shares and lift."""
    out = []
    for value, seg, alls in zip(
        frame["value"].to_list(), frame["seg"].to_list(), frame["all"].to_list(), strict=True
    ):
        seg_share = seg / n_seg if n_seg else 0.0
        all_share = alls / n_all if n_all else 0.0
        out.append(
            {
                "value": value,
                "count": int(seg),
                "share": seg_share,
                "all_count": int(alls),
                "all_share": all_share,
                "lift": seg_share / all_share if all_share else None,
            }
        )
    return out


def _grouped(frame: pl.DataFrame, key: pl.Expr) -> pl.DataFrame:
    return frame.group_by(key.alias("value")).agg(
        pl.col("__in").sum().alias("seg"), pl.len().alias("all")
    )


def _categorical(
    frame: pl.DataFrame, col: str, top: int, n_seg: int, n_all: int, key: pl.Expr | None = None
) -> dict[str, Any]:
    key = key if key is not None else pl.col(col).cast(pl.String)
    g = _grouped(frame, key)
    nulls = g.filter(pl.col("value").is_null())
    g = g.filter(pl.col("value").is_not_null()).sort(
        ["seg", "all", "value"], descending=[True, True, False]
    )
    head, rest = g.head(top), g.slice(top)
    parts = [head.select("value", "seg", "all")]
    if rest.height:
        parts.append(
            pl.DataFrame({"value": [OTHER], "seg": [rest["seg"].sum()], "all": [rest["all"].sum()]})
        )
    if nulls.height:
        parts.append(nulls.select(pl.lit(NONE).alias("value"), "seg", "all"))
    table = pl.concat(parts, how="vertical_relaxed")
    return {"values": _rows(table, n_seg, n_all), "distinct": g.height}


def _numeric(frame: pl.DataFrame, col: str, bins: int, n_seg: int, n_all: int) -> dict[str, Any]:
    v = pl.col(col).cast(pl.Float64)
    stats = frame.select(v.min().alias("lo"), v.max().alias("hi")).row(0)
    lo, hi = stats
    side = frame.select(
        v.filter(pl.col("__in")).mean().alias("mean"),
        v.filter(pl.col("__in")).median().alias("median"),
        v.mean().alias("all_mean"),
        v.median().alias("all_median"),
    )
    out: dict[str, Any] = side.row(0, named=True)
    if lo is None:
        edges: list[float] = []
        idx = pl.lit(None, dtype=pl.Int64)
    else:
        width = (hi - lo) / bins if hi > lo else 1.0
        edges = [lo + i * width for i in range(bins + 1)]
        edges[-1] = hi if hi > lo else lo + 1.0
        idx = ((v - lo) / width).floor().cast(pl.Int64).clip(0, bins - 1)
    g = _grouped(frame, idx)
    by_bin = dict(
        zip(
            g["value"].to_list(),
            zip(g["seg"].to_list(), g["all"].to_list(), strict=True),
            strict=True,
        )
    )
    values = [None if lo is None else i for i in range(bins if lo is not None else 0)]
    table = pl.DataFrame(
        {
            "value": [
                f"[{edges[i]:g}, {edges[i + 1]:g}{']' if i == bins - 1 else ')'}" for i in values
            ]
            + ([NONE] if None in by_bin else []),
            "seg": [by_bin.get(i, (0, 0))[0] for i in values]
            + ([by_bin[None][0]] if None in by_bin else []),
            "all": [by_bin.get(i, (0, 0))[1] for i in values]
            + ([by_bin[None][1]] if None in by_bin else []),
        },
        schema={"value": pl.String, "seg": pl.Int64, "all": pl.Int64},
    )
    out["edges"] = edges
    out["bins"] = _rows(table, n_seg, n_all)
    return out


def _monthly(frame: pl.DataFrame, col: str, n_seg: int, n_all: int) -> dict[str, Any]:
    key = pl.col(col).dt.strftime("%Y-%m")
    g = _grouped(frame, key)
    g = g.sort(pl.col("value").is_null(), "value").with_columns(pl.col("value").fill_null(NONE))
    return {"months": _rows(g, n_seg, n_all)}


def _tags(frame: pl.DataFrame, col: str, top: int, n_seg: int, n_all: int) -> dict[str, Any]:
    empty = pl.col(col).is_null() | (pl.col(col).list.len() == 0)
    none = frame.select(empty.filter(pl.col("__in")).sum().alias("seg"), empty.sum().alias("all"))
    tags = frame.select(pl.col(col).list.unique().alias("value"), "__in").explode("value")
    g = _grouped(tags.filter(pl.col("value").is_not_null()), pl.col("value"))
    g = g.sort(["seg", "all", "value"], descending=[True, True, False]).head(top)
    table = pl.concat(
        [g.select("value", "seg", "all"), none.select(pl.lit(NONE).alias("value"), "seg", "all")],
        how="vertical_relaxed",
    )
    return {"values": _rows(table, n_seg, n_all)}


def profile(
    store: EventStore,
    rule: Any = None,
    as_of: Any = None,
    *,
    segment: str | None = None,
    attributes: list[str] | None = None,
    top: int = 10,
    bins: int = 10,
) -> dict[str, Any]:
    """Distributions of ``attributes`` among the members and among all users at T.

    Returns ``{"as_of", "members", "all", "attributes": {name: {"kind", ...}}}``.
    """
    if top < 1 or bins < 1:
        raise UsageError("top and bins must be at least 1")
    T = resolve_as_of(as_of)
    schema = schema_of(store, check_names=False)
    if attributes is None:
        attributes = [a for a in DEFAULT_ATTRIBUTES if a in schema.users]
    unknown = [a for a in attributes if a not in schema.users or a == "user_id"]
    if unknown:
        raise UsageError(
            f"unknown attribute(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(sorted(schema.users))}"
        )
    seg = eval_members(store, rule, T, segment=segment).select("user_id")
    frame = universe(store, T).join(
        store.scan_users().select("user_id", *attributes), on="user_id", how="left"
    )
    frame = (
        frame.join(seg.lazy().with_columns(pl.lit(True).alias("__in")), on="user_id", how="left")
        .with_columns(pl.col("__in").fill_null(False))
        .collect()
    )
    n_all = frame.height
    n_seg = int(frame["__in"].sum())
    out: dict[str, Any] = {}
    for a in attributes:  # ok-loop: one report per attribute
        kind = KINDS.get(schema.users[a], "categorical")
        if kind == "categorical":
            body = _categorical(frame, a, top, n_seg, n_all)
        elif kind == "boolean":
            key = pl.when(pl.col(a)).then(pl.lit("true")).otherwise(pl.lit("false"))
            body = _categorical(
                frame,
                a,
                3,
                n_seg,
                n_all,
                key=pl.when(pl.col(a).is_null()).then(None).otherwise(key),
            )
        elif kind == "numeric":
            body = _numeric(frame, a, bins, n_seg, n_all)
        elif kind == "date":
            body = _monthly(frame, a, n_seg, n_all)
        else:
            body = _tags(frame, a, top, n_seg, n_all)
        out[a] = {"kind": kind, "type": schema.users[a], **body}
    return {"as_of": _iso(T), "members": n_seg, "all": n_all, "attributes": out}
