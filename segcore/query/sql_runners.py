"""The runners' SQL side: each analytic (funnels aside) on a SQL engine.

Each function takes the same query as its runner in :mod:`segcore.query.runners`
and an :class:`~segcore.engine.choice.Engine` that runs SQL; it compiles the query
(:mod:`segcore.engine.sql.analytics`), runs it (:func:`segcore.engine.sql.engines.run_select`)
and shapes the small result with the same function as the Polars runner
(``reach_report``, ``overlap_report``, ``profile_report``, ``engagement_report``,
``report_table``), so both engines return the same typed result.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from segcore.analytics import engagement as engagement_mod
from segcore.analytics import event_report as event_report_mod
from segcore.analytics import overlap as overlap_mod
from segcore.analytics import profile as profile_mod
from segcore.analytics import reach as reach_mod
from segcore.analytics import retention as retention_mod
from segcore.analytics.trend import STEPS, make_points
from segcore.engine.choice import Engine
from segcore.engine.rules import schema_of
from segcore.engine.sql.analytics import engagement as sql_engagement
from segcore.engine.sql.analytics import events as sql_events
from segcore.engine.sql.analytics import members as sql_members
from segcore.engine.sql.analytics import overlap as sql_overlap
from segcore.engine.sql.analytics import profile as sql_profile
from segcore.engine.sql.analytics import reach as sql_reach
from segcore.engine.sql.analytics import retention as sql_retention
from segcore.engine.sql.analytics import trend as sql_trend
from segcore.engine.sql.engines import engine_dialect, need, run_select
from segcore.errors import UsageError
from segcore.lang.dates import parse_date, resolve_as_of
from segcore.query.queries import (
    EngagementQuery,
    EngagementTrendQuery,
    EventQuery,
    LifecycleQuery,
    MembersQuery,
    OverlapQuery,
    ProfileQuery,
    ReachQuery,
    RetentionQuery,
    StickinessQuery,
    TrendQuery,
)
from segcore.query.results import (
    EngagementResult,
    EventReportResult,
    LifecycleResult,
    MembersResult,
    OverlapResult,
    ProfileResult,
    ReachResult,
    RetentionResult,
    SeriesResult,
    StickinessResult,
    TrendResult,
)
from segcore.store.events import EventStore


def _dialect(engine: Engine) -> str:
    d = engine_dialect(engine)
    need(engine)
    return d


def _iso(T: Any) -> str:
    return T.isoformat().replace("+00:00", "Z")


def _ids(df: pl.DataFrame) -> pl.DataFrame:
    return df.select(pl.col(df.columns[0]).cast(pl.String).alias("user_id")).sort("user_id")


def _flags(rows: pl.DataFrame, prefix: str, names: list[str]) -> pl.DataFrame:
    """SQL 0/1 columns ``<prefix><i>`` as boolean columns named ``names``, ``n`` as count."""
    return rows.select(
        *[(pl.col(f"{prefix}{i}").cast(pl.Int64) == 1).alias(n) for i, n in enumerate(names)],
        pl.col("n").cast(pl.Int64).alias("count"),
    )


# --------------------------------------------------------------------------- members
def members(store: EventStore, q: MembersQuery, engine: Engine) -> MembersResult:
    d = _dialect(engine)
    T = resolve_as_of(q.as_of)
    rule, seg = q.target.rule, q.target.segment
    if q.share_of_all:
        row = run_select(sql_profile.counts_select(store, rule, seg, T, d), engine)
        return MembersResult(_iso(T), int(row[sql_profile.SEG][0] or 0),
                             int(row[sql_profile.ALL][0] or 0))
    row = run_select(sql_members.count_select(store, rule, seg, T, d), engine)
    return MembersResult(_iso(T), int(row.item(0, 0)), None)


def members_actors(store: EventStore, q: MembersQuery, engine: Engine,
                   attributes: bool = False) -> pl.DataFrame:
    d = _dialect(engine)
    ids = _ids(run_select(sql_members.members_select(store, q.target.rule, q.target.segment,
                                                     q.as_of, d), engine))
    if not attributes:
        return ids
    users = store.scan_users().collect()
    return ids.join(users, on="user_id", how="left").sort("user_id")


# --------------------------------------------------------------------------- trend
def trend(store: EventStore, q: TrendQuery, engine: Engine) -> TrendResult:
    d = _dialect(engine)
    pts = make_points(q.range.start, q.range.end, q.every.value)
    instants = [pts.instant(j) for j in range(pts.P)]
    rows = run_select(sql_trend.trend_select(store, q.target.rule, q.target.segment,
                                             instants, d), engine)
    grid = pl.DataFrame({"date": pl.Series(list(pts.dates), dtype=pl.Date),
                         "sc_j": pl.Series(range(1, pts.P), dtype=pl.Int64)})
    rows = rows.select(pl.col("sc_j").cast(pl.Int64),
                       *[pl.col(c).cast(pl.Int64) for c in ("members", "entered", "exited")])
    out = grid.join(rows, on="sc_j", how="left").sort("sc_j")
    return TrendResult(out.select(
        "date", *[pl.col(c).fill_null(0) for c in ("members", "entered", "exited")]))


def trend_actors(store: EventStore, q: TrendQuery, date: Any, which: str,
                 engine: Engine) -> pl.DataFrame:
    d = _dialect(engine)
    if date is None:
        raise UsageError("give the date of the point")
    day = parse_date(date, "point date")
    now = make_points(day, day, "day").instant(1)
    prev = now - dt.timedelta(microseconds=STEPS[q.every.value])
    return _ids(run_select(sql_trend.changes_select(store, q.target.rule, q.target.segment,
                                                    prev, now, which, d), engine))


# --------------------------------------------------------------------------- reach
def reach(store: EventStore, q: ReachQuery, engine: Engine) -> ReachResult:
    d = _dialect(engine)
    T = resolve_as_of(q.as_of)
    rules = reach_mod.channel_rules(store, None if q.channels is None else list(q.channels))
    trees, errors = reach_mod.channel_trees(store, rules)
    rows = run_select(sql_reach.reach_select(store, q.target.rule, q.target.segment, T,
                                             trees, d), engine)
    combos = _flags(rows, "sc_c", list(trees))
    return ReachResult(reach_mod.reach_report(T, rules, errors, combos))


def reach_actors(store: EventStore, q: ReachQuery, channel: str,
                 engine: Engine) -> pl.DataFrame:
    d = _dialect(engine)
    T = resolve_as_of(q.as_of)
    rules = reach_mod.channel_rules(store, [channel])
    name, text = next(iter(rules.items()))
    tree = reach_mod.parse_channel(text, schema_of(store, check_names=False))
    contact = reach_mod.contact_columns(store, tree)
    rows = run_select(sql_reach.reachable_select(store, q.target.rule, q.target.segment, T,
                                                 tree, contact, d), engine)
    return rows.with_columns(pl.col("user_id").cast(pl.String)).sort("user_id")


# --------------------------------------------------------------------------- profile
def profile(store: EventStore, q: ProfileQuery, engine: Engine) -> ProfileResult:
    d = _dialect(engine)
    T = resolve_as_of(q.as_of)
    schema = schema_of(store, check_names=False)
    attrs = profile_mod.profile_attributes(
        schema, None if q.attributes is None else list(q.attributes), q.top, q.bins)
    rule, seg = q.target.rule, q.target.segment
    counts = run_select(sql_profile.counts_select(store, rule, seg, T, d), engine)
    n_seg = int(counts[sql_profile.SEG][0] or 0)
    n_all = int(counts[sql_profile.ALL][0] or 0)
    frames = {}
    for a in attrs:  # ok-loop: one query per attribute
        build = sql_profile.tags_select if schema.users[a] == "list" else sql_profile.values_select
        frames[a] = run_select(build(store, rule, seg, T, a, d), engine)
    return ProfileResult(profile_mod.profile_report(T, schema, attrs, frames, q.top, q.bins,
                                                    counts=(n_seg, n_all)))


# --------------------------------------------------------------------------- overlap
def overlap(store: EventStore, q: OverlapQuery, engine: Engine) -> OverlapResult:
    d = _dialect(engine)
    names = overlap_mod.overlap_items(list(q.items))
    T = resolve_as_of(q.as_of)
    items = [(n, overlap_mod.is_saved(store, n)) for n in names]
    rows = run_select(sql_overlap.overlap_select(store, items, T, d), engine)
    return OverlapResult(overlap_mod.overlap_report(T, names, _flags(rows, "sc_f", names)))


# --------------------------------------------------------------------------- engagement
def _engagement_rows(store, q, instants, engine) -> tuple[pl.DataFrame, dict]:
    d = _dialect(engine)
    window = engagement_mod.goal_window(store, q.goal, q.goal_within)
    terms = engagement_mod.engagement_terms(q.goal, window)
    rows = run_select(sql_engagement.engagement_select(store, q.target.rule, q.target.segment,
                                                       instants, terms, d), engine)
    rows = rows.select(pl.col(c).cast(pl.Int64) for c in ["sc_j", "members", *terms])
    return rows.sort("sc_j"), terms


def engagement(store: EventStore, q: EngagementQuery, engine: Engine) -> EngagementResult:
    T = resolve_as_of(q.as_of)
    rows, terms = _engagement_rows(store, q, [T], engine)
    counts = {t: int(rows[t][0]) for t in terms}
    goal = q.goal if "goal" in terms else None
    return EngagementResult(engagement_mod.engagement_report(
        T, int(rows["members"][0]), counts, goal, q.goal_within))


def engagement_trend(store: EventStore, q: EngagementTrendQuery,
                     engine: Engine) -> SeriesResult:
    pts = make_points(q.range.start, q.range.end, q.every.value)
    rows, terms = _engagement_rows(store, q, [pts.instant(j) for j in range(1, pts.P)], engine)
    frame = rows.with_columns(pl.Series("date", list(pts.dates), dtype=pl.Date))
    return SeriesResult(engagement_mod.series_shares(frame, list(terms)))


# --------------------------------------------------------------------------- event reports
def events(store: EventStore, q: EventQuery, engine: Engine) -> EventReportResult:
    d = _dialect(engine)
    segments = list(q.compare) or None
    names, lo, hi, periods = event_report_mod.report_range(
        store, list(q.events), q.range.start, q.range.end, q.every.value, q.by, segments, q.top)
    args = {"where": q.where, "segment": q.segment}
    group: str | None = None
    groups: list[str] = []
    kept: list[Any] = []
    if segments:
        group, groups = "segment", list(dict.fromkeys(segments))
    elif q.by is not None:
        group = "value"
        totals = run_select(sql_events.totals_select(store, names, lo, hi, q.by, dialect=d,
                                                     **args), engine)
        totals = totals.select(pl.col("sc_raw").alias("raw"),
                               pl.col("sc_raw").cast(pl.String).alias("value"),
                               pl.col("n").cast(pl.Int64))
        top = event_report_mod.top_values(totals, q.top)
        kept, groups = top["raw"].to_list(), top["value"].to_list()
        nulls = totals.filter(pl.col("value").is_null()).height > 0
        others = totals.height - nulls - top.height > 0
        groups += [g for g, present in ((event_report_mod.OTHER, others),
                                        (event_report_mod.NONE, nulls)) if present]
    rows = run_select(sql_events.report_select(
        store, names, lo, hi, q.every.value, segments=groups if segments else None, by=q.by,
        kept=kept, dialect=d, **args), engine)
    period = pl.col("sc_period").cast(pl.Int32).cast(pl.Date).alias("period")
    cols = [period, pl.col("event").cast(pl.String)]
    if group == "segment":
        cols.append(pl.col("sc_group").cast(pl.String).alias("segment"))
    elif group == "value":
        labels = {i: v for i, v in enumerate(groups[:len(kept)])}
        labels[sql_events.NULL_GROUP] = event_report_mod.NONE
        labels[sql_events.OTHER_GROUP] = event_report_mod.OTHER
        cols.append(pl.col("sc_group").cast(pl.Int64)
                    .replace_strict(labels, return_dtype=pl.String).alias("value"))
    counts = rows.select(*cols, pl.col("events"), pl.col("users"))
    return EventReportResult(event_report_mod.report_table(counts, periods, names, group, groups))


# --------------------------------------------------------------------------- retention
def retention(store: EventStore, q: RetentionQuery, engine: Engine) -> RetentionResult:
    """The cohort table from the SQL counts, shaped by the Polars path's ``retention_table``."""
    args = q.args
    sizes, counts = sql_retention.retention_counts(store, engine, **args)
    table = retention_mod.retention_table(
        sizes, counts, every=q.every, start=q.range.start, end=q.range.end, periods=q.periods,
        on_or_after=q.on_or_after, segments=args["segments"])
    return RetentionResult.of(table, q)


def retention_actors(store: EventStore, q: RetentionQuery, cohort: Any, k: int | None,
                     segment: str | None, engine: Engine) -> pl.DataFrame:
    """The users of one retention cell."""
    return sql_retention.retention_users(store, engine, cohort=cohort, k=k, group=segment,
                                         **q.args)


def lifecycle(store: EventStore, q: LifecycleQuery, engine: Engine) -> LifecycleResult:
    """Lifecycle statuses per period from the SQL counts (``lifecycle_table``)."""
    counts = sql_retention.lifecycle_counts(store, engine, **q.args)
    return LifecycleResult(retention_mod.lifecycle_table(
        counts, every=q.every, start=q.range.start, end=q.range.end), q.every.value)


def stickiness(store: EventStore, q: StickinessQuery, engine: Engine) -> StickinessResult:
    """Users by active days per period from the SQL counts (``stickiness_table``)."""
    counts = sql_retention.stickiness_counts(store, engine, **q.args)
    return StickinessResult(retention_mod.stickiness_table(
        counts, every=q.every, start=q.range.start, end=q.range.end), q.every.value)


def lifecycle_actors(store: EventStore, q: LifecycleQuery, period: Any, status: str,
                     engine: Engine) -> pl.DataFrame:
    """The users of one lifecycle bar."""
    return sql_retention.lifecycle_users(store, engine, period=period, status=status, **q.args)


def stickiness_actors(store: EventStore, q: StickinessQuery, period: Any, days: int,
                      engine: Engine) -> pl.DataFrame:
    """The users of one stickiness bar."""
    return sql_retention.stickiness_users(store, engine, period=period, days=days, **q.args)
