"""Top values of a user attribute or an event property with their counts (suggestions for
the rule builder), and finding users by id, email or name (docs/analytics.md)."""

from __future__ import annotations

import polars as pl

from segcore.errors import UsageError
from segcore.store.events import EventStore

# user columns searched by :func:`find_users` besides user_id, when the users table has them
SEARCHED = ("email", "name", "first_name", "last_name", "full_name")
VALUES_SCHEMA = {"value": pl.String, "count": pl.Int64}


def top_values(store: EventStore, column: str, *, event: str | None = None,
               top: int = 10) -> pl.DataFrame:
    """The ``top`` most frequent values of user attribute ``column`` (users counted) or,
    with ``event``, of that event's property ``column`` (events counted): ``value, count``,
    most frequent first (ties by value); list columns count each element."""
    if event is None:
        schema = store.scan_users().collect_schema()
        frame = store.scan_users().select(column) if column in schema else None
    else:
        schema = store.events_schema()
        frame = store.events_frame([column], events=[event]) if column in schema else None
    if frame is None:
        where = "user attribute" if event is None else f"property of {event!r} events"
        raise UsageError(f"unknown {where} {column!r}")
    if isinstance(schema[column], pl.List):
        frame = frame.explode(column)
    return (
        frame.drop_nulls(column)
        .group_by(pl.col(column).cast(pl.String).alias("value"))
        .agg(pl.len().cast(pl.Int64).alias("count"))
        .sort(["count", "value"], descending=[True, False])
        .head(top)
        .collect()
    )


def find_users(store: EventStore, text: str, *, limit: int = 20) -> pl.DataFrame:
    """Users whose id is ``text`` or whose email or name contains it (any case): ``user_id``
    and the searched columns the users table has; exact id matches first."""
    needle = (text or "").strip()
    if not needle:
        raise UsageError("type a user id, an email or a name")
    users = store.scan_users()
    schema = users.collect_schema()
    cols = [c for c in SEARCHED if c in schema and schema[c] == pl.String]
    low = needle.casefold()
    hit = pl.col("user_id") == needle
    for c in cols:
        hit = hit | pl.col(c).str.to_lowercase().str.contains(low, literal=True).fill_null(False)
    found = (
        users.select("user_id", *cols).filter(hit)
        .sort(by=[pl.col("user_id") != needle, pl.col("user_id")])
        .head(limit).collect()
    )
    return found
