"""Several segments' sizes over one range: members, entered, exited and the share of all
users at every point (docs/analytics.md, "Compare segments over time")."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

from segcore.analytics.trend import trend
from segcore.lang.dates import end_of_day
from segcore.store.cache import USER_KEY
from segcore.store.events import EventStore

SCHEMA = {
    "segment": pl.String, "date": pl.Date, "members": pl.Int64, "entered": pl.Int64,
    "exited": pl.Int64, "all_users": pl.Int64, "share": pl.Float64,
}


def universe_sizes(store: EventStore, days: Sequence[Any]) -> pl.DataFrame:
    """All users at the end of each of ``days`` (``date, all_users``): the users table plus
    every user with an event before that instant (the universe of the evaluator)."""
    users = store.scan_users().select("user_id").unique()
    first = (
        store.events_frame([USER_KEY, "ts"]).group_by(USER_KEY).agg(pl.col("ts").min())
        .select(pl.col(USER_KEY).cast(pl.String).alias("user_id"), "ts")
        .join(users, on="user_id", how="anti").select("ts").collect()
    )
    listed = int(users.select(pl.len()).collect().item())
    stamps = np.sort(first["ts"].dt.epoch("us").to_numpy())
    dates = pl.Series("date", list(days), dtype=pl.Date)
    ends = pl.Series([end_of_day(d) for d in dates.to_list()]).dt.epoch("us").to_numpy()
    before = np.searchsorted(stamps, ends, side="left")  # ts < end of day
    return pl.DataFrame({"date": dates, "all_users": (before + listed).astype(np.int64)})


def compare_trend(store: EventStore, segments: Sequence[str], start: Any, end: Any,
                  every: str = "day", *,
                  trend_of: Callable[[str], pl.DataFrame] | None = None) -> pl.DataFrame:
    """One trend per saved segment on a common range, long: ``segment, date, members,
    entered, exited, all_users, share`` (share of all users). ``trend_of(name)`` gives a
    segment's trend (default: :func:`segcore.analytics.trend.trend`; an SQL engine's
    trend runner otherwise)."""
    def polars_trend(name: str) -> pl.DataFrame:
        return trend(store, None, start, end, every, segment=name)

    of = trend_of or polars_trend
    parts = [of(name).with_columns(pl.lit(name).alias("segment")) for name in segments]
    if not parts:
        return pl.DataFrame(schema=SCHEMA)
    long = pl.concat(parts)
    everyone = universe_sizes(store, long["date"].unique().sort())
    return (
        long.join(everyone, on="date", how="left")
        .with_columns(
            pl.when(pl.col("all_users") > 0)
            .then(pl.col("members") / pl.col("all_users")).otherwise(None).alias("share")
        )
        .select(list(SCHEMA)).cast(SCHEMA)  # type: ignore[arg-type]
    )
