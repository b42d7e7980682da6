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
SEG, AGG = "__seg", "__all"  # counted rows (SQL engines): members and all users per value
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
    """Segment and all-users counts per ``key``, from user rows (``__in``) or from rows
    already counted per value (``__seg``, ``__all``: a SQL engine's result)."""
    if AGG in frame.columns:
        return frame.group_by(key.alias("value")).agg(
            pl.col(SEG).sum().cast(pl.Int64).alias("seg"),
            pl.col(AGG).sum().cast(pl.Int64).alias("all"),
        )
    return frame.group_by(key.alias("value")).agg(
        pl.col("__in").sum().alias("seg"), pl.len().alias("all")
    )


def _median(values: pl.Series, weights: pl.Series) -> float | None:
    """The median of values repeated ``weights`` times (mean of the two middle ones)."""
    t = pl.DataFrame({"v": values, "w": weights}).filter(
        pl.col("v").is_not_null() & (pl.col("w") > 0)).sort("v")
    n = int(t["w"].sum()) if t.height else 0
    if n == 0:
        return None
    ends = t["w"].cum_sum()

    def at(k: int) -> float:  # the k-th value (0-based) of the repeated list
        return float(t["v"][int(ends.search_sorted(k + 1, side="left"))])

    return at(n // 2) if n % 2 else (at(n // 2 - 1) + at(n // 2)) / 2


def _side_stats(frame: pl.DataFrame, v: pl.Expr) -> dict[str, Any]:
    if AGG not in frame.columns:
        return frame.select(
            v.filter(pl.col("__in")).mean().alias("mean"),
            v.filter(pl.col("__in")).median().alias("median"),
            v.mean().alias("all_mean"),
            v.median().alias("all_median"),
        ).row(0, named=True)
    t = frame.select(v.alias("v"), pl.col(SEG).cast(pl.Int64), pl.col(AGG).cast(pl.Int64))
    t = t.filter(pl.col("v").is_not_null())
    out: dict[str, Any] = {}
    for side, w in (("", AGG), ("seg", SEG)):  # ok-loop: the two sides
        n = int(t[w].sum()) if t.height else 0
        mean = float((t["v"] * t[w]).sum() / n) if n else None
        key = "all_" if side == "" else ""
        out[f"{key}mean"] = mean
        out[f"{key}median"] = _median(t["v"], t[w])
    return {k: out[k] for k in ("mean", "median", "all_mean", "all_median")}


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
    out: dict[str, Any] = _side_stats(frame, v)
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
    if AGG in frame.columns:  # SQL: one row per tag, and a NULL tag for the users with none
        g = _grouped(frame.filter(pl.col(col).is_not_null()), pl.col(col))
        none = frame.filter(pl.col(col).is_null()).select(
            pl.col(SEG).sum().cast(pl.Int64).alias("seg"),
            pl.col(AGG).sum().cast(pl.Int64).alias("all"))
        return _tag_table(g, none, top, n_seg, n_all)
    empty = pl.col(col).is_null() | (pl.col(col).list.len() == 0)
    none = frame.select(empty.filter(pl.col("__in")).sum().alias("seg"), empty.sum().alias("all"))
    tags = frame.select(pl.col(col).list.unique().alias("value"), "__in").explode("value")
    g = _grouped(tags.filter(pl.col("value").is_not_null()), pl.col("value"))
    return _tag_table(g, none, top, n_seg, n_all)


def _tag_table(g: pl.DataFrame, none: pl.DataFrame, top: int, n_seg: int,
               n_all: int) -> dict[str, Any]:
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
    T = resolve_as_of(as_of)
    schema = schema_of(store, check_names=False)
    attributes = profile_attributes(schema, attributes, top, bins)
    return profile_report(T, schema, attributes, _user_rows(store, rule, segment, T, attributes),
                          top, bins)


def profile_attributes(schema, attributes: list[str] | None, top: int, bins: int) -> list[str]:
    """The attributes to profile (defaults: those of DEFAULT_ATTRIBUTES the store has)."""
    if top < 1 or bins < 1:
        raise UsageError("top and bins must be at least 1")
    if attributes is None:
        attributes = [a for a in DEFAULT_ATTRIBUTES if a in schema.users]
    unknown = [a for a in attributes if a not in schema.users or a == "user_id"]
    if unknown:
        raise UsageError(
            f"unknown attribute(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(sorted(schema.users))}"
        )
    return list(attributes)


def _user_rows(store: EventStore, rule: Any, segment: str | None, T,
               attributes: list[str]) -> pl.DataFrame:
    """The universe at T with the attributes and ``__in`` (member or not)."""
    seg = eval_members(store, rule, T, segment=segment).select("user_id")
    frame = universe(store, T).join(
        store.scan_users().select("user_id", *attributes), on="user_id", how="left"
    )
    frame = (
        frame.join(seg.lazy().with_columns(pl.lit(True).alias("__in")), on="user_id", how="left")
        .with_columns(pl.col("__in").fill_null(False))
        .collect()
    )
    return frame


def profile_report(T, schema, attributes: list[str], frames: pl.DataFrame | dict[str, Any],
                   top: int, bins: int, counts: tuple[int, int] | None = None) -> dict[str, Any]:
    """The profile from the user rows (Polars) or from per-attribute counted rows
    ``{attribute: frame(attribute, __seg, __all)}`` and ``counts = (n_seg, n_all)`` (SQL)."""
    if isinstance(frames, pl.DataFrame):
        n_all, n_seg = frames.height, int(frames["__in"].sum())
        frames = dict.fromkeys(attributes, frames)
    else:
        assert counts is not None
        n_seg, n_all = counts
    out: dict[str, Any] = {}
    for a in attributes:  # ok-loop: one report per attribute
        frame = frames[a]
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
