"""Engagement and conversion of a segment's members, now and over time.

- ``active_7d`` / ``active_30d``: members with any event in ``[T - 7 days, T)`` /
  ``[T - 30 days, T)``;
- ``goal``: members who did the goal event in ``[T - goal_within, T)``.

Shares are of the members at T (0.0 when there are none). Over time, each point
uses the members at that point (the one-pass trend machinery of
:mod:`segcore.analytics.trend`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl

from segcore.analytics.trend import align, grid, make_points, target_grid
from segcore.engine.polars.evaluate import members as eval_members
from segcore.engine.polars.expressions import TS
from segcore.engine.rules import schema_of
from segcore.errors import RuleError
from segcore.lang.dates import resolve_as_of
from segcore.lang.durations import parse_duration
from segcore.lang.tree import Behavior
from segcore.store.events import EventStore

WEEK, MONTH = dt.timedelta(days=7), dt.timedelta(days=30)


def goal_window(store: EventStore, goal: str | None, goal_within: str) -> dt.timedelta | None:
    if goal is None:
        return None
    known = store.event_names()
    if known and goal not in known:
        raise RuleError(f"unknown event {goal!r} for the goal")
    return parse_duration(goal_within)


def engagement_terms(goal: str | None, window: dt.timedelta | None) -> dict[str, Behavior]:
    """The engagement terms as rule behaviours: ``active_7d``, ``active_30d``, ``goal``."""
    terms = {
        "active_7d": Behavior("did", "*", within=int(WEEK / dt.timedelta(microseconds=1))),
        "active_30d": Behavior("did", "*", within=int(MONTH / dt.timedelta(microseconds=1))),
    }
    if window is not None and goal is not None:
        terms["goal"] = Behavior("did", goal, within=int(window / dt.timedelta(microseconds=1)))
    return terms


def engagement_report(T: dt.datetime, n: int, counts: dict[str, Any], goal: str | None,
                      goal_within: str) -> dict[str, Any]:
    """The report from the member count and the counts per term (any engine)."""

    def entry(key: str) -> dict[str, Any]:
        k = int(counts.get(key) or 0)
        return {"count": k, "share": _share(k, n)}

    out: dict[str, Any] = {
        "as_of": T.isoformat().replace("+00:00", "Z"),
        "members": n,
        "active_7d": entry("active_7d"),
        "active_30d": entry("active_30d"),
        "goal": None,
    }
    if goal is not None:
        out["goal"] = {"event": goal, "within": goal_within, **entry("goal")}
    return out


def series_shares(frame: pl.DataFrame, terms: list[str]) -> pl.DataFrame:
    """``date, members`` and per term its count and ``<term>_share`` (0.0 without members)."""
    cols = [pl.col("date"), pl.col("members").cast(pl.Int64)]
    for t in terms:  # ok-loop: two or three terms
        cols += [
            pl.col(t).cast(pl.Int64),
            pl.when(pl.col("members") > 0)
            .then(pl.col(t) / pl.col("members"))
            .otherwise(0.0)
            .alias(f"{t}_share"),
        ]
    return frame.select(cols)


def _share(k: int, n: int) -> float:
    return k / n if n else 0.0


def engagement(
    store: EventStore,
    rule: Any = None,
    as_of: Any = None,
    *,
    segment: str | None = None,
    goal: str | None = None,
    goal_within: str = "30 days",
) -> dict[str, Any]:
    """Share of the members active in the last 7 and 30 days, and who did ``goal``.

    Returns ``{"as_of", "members", "active_7d": {"count", "share"}, "active_30d": {...},
    "goal": {"event", "within", "count", "share"} or None}``.
    """
    window = goal_window(store, goal, goal_within)
    T = resolve_as_of(as_of)
    ids = eval_members(store, rule, T, segment=segment).select("user_id")
    n = ids.height
    since = T - max(MONTH, window or MONTH)
    ev = (
        store.scan_events()
        .filter((pl.col("ts") >= pl.lit(since, dtype=TS)) & (pl.col("ts") < pl.lit(T, dtype=TS)))
        .join(ids.lazy(), on="user_id", how="semi")
    )
    aggs = [
        (pl.col("ts") >= pl.lit(T - WEEK, dtype=TS)).any().alias("a7"),
        (pl.col("ts") >= pl.lit(T - MONTH, dtype=TS)).any().alias("a30"),
    ]
    if window is not None:
        aggs.append(
            ((pl.col("event") == goal) & (pl.col("ts") >= pl.lit(T - window, dtype=TS)))
            .any()
            .alias("goal")
        )
    per_user = ev.group_by("user_id").agg(aggs).collect()
    counts = (
        per_user.select(pl.exclude("user_id").sum()).row(0, named=True) if per_user.height else {}
    )

    counts = {"active_7d": counts.get("a7"), "active_30d": counts.get("a30"),
              "goal": counts.get("goal")}
    return engagement_report(T, n, counts, goal if window is not None else None, goal_within)


def engagement_over_time(
    store: EventStore,
    rule: Any = None,
    start: Any = None,
    end: Any = None,
    every: str = "day",
    *,
    segment: str | None = None,
    goal: str | None = None,
    goal_within: str = "30 days",
) -> pl.DataFrame:
    """Per point: members, active 7/30 days and goal counts and shares among them."""
    window = goal_window(store, goal, goal_within)
    pts = make_points(start, end, every)
    schema = schema_of(store, check_names=False)
    g = target_grid(store, rule, segment, pts)
    index = pl.DataFrame({"user_id": g.ids, "uid": np.arange(len(g.ids), dtype=np.int64)})
    U, P = len(g.ids), pts.P
    terms = {
        "active_7d": Behavior("did", "*", within=int(WEEK / dt.timedelta(microseconds=1))),
        "active_30d": Behavior("did", "*", within=int(MONTH / dt.timedelta(microseconds=1))),
    }
    if window is not None:
        terms["goal"] = Behavior("did", goal, within=int(window / dt.timedelta(microseconds=1)))
    members = g.M[:, 1:].sum(axis=0)
    cols: dict[str, Any] = {
        "date": pl.Series(list(pts.dates), dtype=pl.Date),
        "members": pl.Series(members, dtype=pl.Int64),
    }
    for name, node in terms.items():  # ok-loop: two or three terms
        sub = align(grid(store, node, pts, schema=schema), index, U, P)
        k = (sub & g.M)[:, 1:].sum(axis=0)
        cols[name] = pl.Series(k, dtype=pl.Int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            cols[f"{name}_share"] = pl.Series(
                np.where(members > 0, k / np.maximum(members, 1), 0.0)
            )
    return pl.DataFrame(cols)
