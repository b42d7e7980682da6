"""One runner per query: ``run_<kind>(store, query) -> result``, and the drill-downs
(``*_actors``) returning the users behind a number (a ``user_id`` DataFrame).

Every runner reads one consistent set of the store's files (``store.pinned()``) and
calls the analytic's function in :mod:`segcore.engine.polars.evaluate`, :mod:`segcore.analytics`
or :mod:`segcore.engine.sql`; :func:`run` picks the runner of a query by its type. The CLI,
``segcore.Store`` and the dashboard all come through here (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from segcore.analytics import engagement as engagement_mod
from segcore.analytics import event_report as event_report_mod
from segcore.analytics import funnel as funnel_mod
from segcore.analytics import overlap as overlap_mod
from segcore.analytics import profile as profile_mod
from segcore.analytics import reach as reach_mod
from segcore.analytics import retention as retention_mod
from segcore.analytics import trend as trend_mod
from segcore.engine.choice import Engine
from segcore.engine.polars import evaluate
from segcore.engine.sql import compile_sql
from segcore.engine.sql import retention as sql_retention
from segcore.errors import ConflictError, UsageError
from segcore.lang.dates import resolve_as_of
from segcore.query.base import Query
from segcore.query.queries import (
    WHICH,
    EngagementQuery,
    EngagementTrendQuery,
    EventQuery,
    FunnelQuery,
    FunnelTrendQuery,
    LifecycleQuery,
    MembersQuery,
    OverlapQuery,
    ProfileQuery,
    ReachQuery,
    RetentionQuery,
    SqlQuery,
    StickinessQuery,
    TrendQuery,
    UserQuery,
)
from segcore.query.results import (
    EngagementResult,
    EventReportResult,
    FunnelResult,
    LifecycleResult,
    MembersResult,
    OverlapResult,
    ProfileResult,
    ReachResult,
    RetentionResult,
    SeriesResult,
    SqlResult,
    StickinessResult,
    TrendResult,
    UserResult,
)
from segcore.segments import create_segment
from segcore.store.events import EventStore


def _iso(T: Any) -> str:
    return T.isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------- members
def run_members(store: EventStore, q: MembersQuery) -> MembersResult:
    """How many members ``q.target`` has at ``q.as_of`` (and all users, if asked)."""
    as_of = q.as_of if q.as_of is not None else resolve_as_of(None)  # one "now" for both
    T = resolve_as_of(as_of)
    with store.pinned():
        n = evaluate.count(store, q.target.rule, as_of=as_of, segment=q.target.segment)
        everyone = universe_size(store, T) if q.share_of_all else None
    return MembersResult(_iso(T), n, everyone)


def universe_size(store: EventStore, T: Any) -> int:
    """Number of users in the universe at T (users table + users with an event before T),
    kept per data version."""
    sizes = store.memo.setdefault("universe_size", {})
    key = (store.data_version(), T)
    if key not in sizes:
        if len(sizes) >= 256:
            sizes.clear()
        sizes[key] = int(evaluate.universe(store, T).select(pl.len()).collect().item())
    return sizes[key]


def members_actors(store: EventStore, q: MembersQuery, *,
                   attributes: bool = False) -> pl.DataFrame:
    """The members (sorted ``user_id``; with ``attributes``, the user columns too)."""
    with store.pinned():
        return evaluate.members(store, q.target.rule, as_of=q.as_of, segment=q.target.segment,
                                attributes=attributes)


def run_sql(store: EventStore, q: SqlQuery) -> SqlResult:
    """The members query of ``q.target`` compiled to SQL."""
    sql = compile_sql(store, q.target.rule, dialect=q.dialect, as_of=q.as_of,
                      segment=q.target.segment)
    return SqlResult(sql, q.dialect)


def run_user(store: EventStore, q: UserQuery) -> UserResult:
    """A user's attributes, latest events and current segments."""
    with store.pinned():
        return UserResult(evaluate.user_profile(store, q.user_id, as_of=q.as_of,
                                                last_events=q.last_events))


def user_segments(store: EventStore, q: UserQuery) -> list[str]:
    """Names of the saved segments the user belongs to at ``q.as_of``."""
    with store.pinned():
        return evaluate.segments_of(store, q.user_id, as_of=q.as_of)


# --------------------------------------------------------------------------- segment analytics
def run_trend(store: EventStore, q: TrendQuery) -> TrendResult:
    """Members, entered and exited at every point of the range."""
    with store.pinned():
        df = trend_mod.trend(store, q.target.rule, start=q.range.start, end=q.range.end,
                             every=q.every.value, segment=q.target.segment)
    return TrendResult(df)


def trend_actors(store: EventStore, q: TrendQuery, date: Any, which: str = "entered") -> pl.DataFrame:
    """The users who ``entered``/``exited`` at the point of ``date`` (or its ``members``)."""
    if which not in WHICH:
        raise UsageError(f"bad list {which!r}: use entered, exited or members")
    with store.pinned():
        return trend_mod.trend_members(store, q.target.rule, date, segment=q.target.segment,
                                       which=which, every=q.every.value)


def run_reach(store: EventStore, q: ReachQuery) -> ReachResult:
    """Members reachable per channel at ``q.as_of``."""
    with store.pinned():
        return ReachResult(reach_mod.reach(store, q.target.rule, as_of=q.as_of,
                                           segment=q.target.segment,
                                           channels=None if q.channels is None
                                           else list(q.channels)))


def reach_actors(store: EventStore, q: ReachQuery, channel: str) -> pl.DataFrame:
    """Members reachable by ``channel``: ``user_id`` and the contact columns it uses."""
    with store.pinned():
        return reach_mod.reachable_members(store, q.target.rule, channel, q.as_of,
                                           segment=q.target.segment)


def run_profile(store: EventStore, q: ProfileQuery) -> ProfileResult:
    """Attribute distributions of the members against all users."""
    with store.pinned():
        return ProfileResult(profile_mod.profile(
            store, q.target.rule, as_of=q.as_of, segment=q.target.segment,
            attributes=None if q.attributes is None else list(q.attributes),
            top=q.top, bins=q.bins))


def run_overlap(store: EventStore, q: OverlapQuery) -> OverlapResult:
    """Sizes, regions and pairwise overlap of 2 to 5 segments."""
    with store.pinned():
        return OverlapResult(overlap_mod.overlap(store, list(q.items), as_of=q.as_of))


def run_engagement(store: EventStore, q: EngagementQuery) -> EngagementResult:
    """Active and converting shares of the members at ``q.as_of``."""
    with store.pinned():
        return EngagementResult(engagement_mod.engagement(
            store, q.target.rule, as_of=q.as_of, segment=q.target.segment, goal=q.goal,
            goal_within=q.goal_within))


def run_engagement_trend(store: EventStore, q: EngagementTrendQuery) -> SeriesResult:
    """Engagement at every point of the range."""
    with store.pinned():
        return SeriesResult(engagement_mod.engagement_over_time(
            store, q.target.rule, q.range.start, q.range.end, q.every.value,
            segment=q.target.segment, goal=q.goal, goal_within=q.goal_within))


# --------------------------------------------------------------------------- funnels
def _funnel_args(q: FunnelQuery) -> dict[str, Any]:
    rng = q.range
    return {
        "window": q.window,
        "start": None if rng is None else rng.start,
        "end": None if rng is None else rng.end,
        "strict": q.strict,
        "order": q.order,
        "exclusions": q.exclusion_values,
        "hold": q.hold,
        "segment": q.segment,
    }


def run_funnel(store: EventStore, q: FunnelQuery) -> FunnelResult:
    """Users per step (per segment of ``q.compare`` side by side when given)."""
    with store.pinned():
        return FunnelResult(funnel_mod.funnel(store, q.step_values, segments=list(q.compare) or None,
                                              **_funnel_args(q)))


def funnel_actors(store: EventStore, q: FunnelQuery, after_step: int) -> pl.DataFrame:
    """The users who dropped off after ``after_step`` (1-based): reached it, not the next."""
    with store.pinned():
        return funnel_mod.funnel_dropoffs(store, q.step_values, after_step=after_step,
                                          **_funnel_args(q))


def save_dropoffs(store: EventStore, q: FunnelQuery, after_step: int, name: str,
                  description: str = "") -> dict[str, Any]:
    """Save :func:`funnel_actors` as a new static segment ``name``."""
    with store.pinned():
        return funnel_mod.save_dropoffs(store, name, q.step_values, after_step=after_step,
                                        description=description, **_funnel_args(q))


def saved_funnel(store: EventStore, name: str) -> FunnelQuery:
    """The saved funnel ``name`` (NotFoundError if there is none)."""
    return FunnelQuery.from_saved(store.catalog.get_funnel(name)["spec"])


def save_funnel(store: EventStore, name: str, q: FunnelQuery) -> dict[str, Any]:
    """Save ``q`` as funnel ``name`` (its JSON; an existing name is replaced)."""
    return store.catalog.save_funnel(name, q.to_dict())


def run_funnel_trend(store: EventStore, q: FunnelTrendQuery) -> SeriesResult:
    """Conversion per period of entry: ``period, entered, completed, conversion``."""
    args = _funnel_args(q.funnel)
    with store.pinned():
        return SeriesResult(funnel_mod.funnel_over_time(store, q.funnel.step_values,
                                                        every=q.every.value, **args))


# --------------------------------------------------------------------------- event reports
def run_events(store: EventStore, q: EventQuery) -> EventReportResult:
    """Events and distinct users per period."""
    with store.pinned():
        return EventReportResult(event_report_mod.event_report(
            store, list(q.events), start=q.range.start, end=q.range.end, every=q.every.value,
            segment=q.segment, by=q.by, segments=list(q.compare) or None, top=q.top,
            where=q.where))


# --------------------------------------------------------------------------- retention
def _retention_args(store: EventStore, q: RetentionQuery) -> dict[str, Any]:
    if q.start_event is not None:
        retention_mod.check_event(store, q.start_event, "start event")
    retention_mod.check_event(store, q.return_event, "return event")
    return {"return_event": q.return_event, "every": q.every, "periods": q.periods,
            "start": q.range.start, "end": q.range.end, "start_event": q.start_event,
            "entered": q.entered, "recurring": q.recurring, "on_or_after": q.on_or_after,
            "segment": q.segment, "segments": list(q.compare) or None}


def run_retention(store: EventStore, q: RetentionQuery,
                  engine: Engine | str | None = None) -> RetentionResult:
    """The cohort table and average curve (per segment of ``q.compare`` side by side),
    computed by ``engine`` (default polars; cohorts by a segment entered: polars only)."""
    eng = Engine.parse(engine)
    with store.pinned():
        args = _retention_args(store, q)
        if eng.is_polars:
            table = retention_mod.retention(store, **args)
        else:
            sizes, counts = sql_retention.retention_counts(store, eng.name,
                                                           spark_master=eng.master, **args)
            table = retention_mod.retention_table(
                sizes, counts, every=q.every, start=q.range.start, end=q.range.end,
                periods=q.periods, on_or_after=q.on_or_after, segments=args["segments"])
    last = q.every.start_of(q.every.index_of(q.range.end))
    return RetentionResult(table, q.every.value, q.periods, q.on_or_after, last)


def retention_actors(store: EventStore, q: RetentionQuery, cohort: Any, k: int | None = None,
                     segment: str | None = None) -> pl.DataFrame:
    """The users of one cell: the cohort of the period holding ``cohort`` (of breakdown
    ``segment``) retained in period ``k`` (None: the whole cohort)."""
    with store.pinned():
        args = _retention_args(store, q)
        return retention_mod.retention_users(store, cohort=cohort, k=k, group=segment, **args)


def run_lifecycle(store: EventStore, q: LifecycleQuery,
                  engine: Engine | str | None = None) -> LifecycleResult:
    """New, returning, resurrecting and dormant users per period."""
    eng = Engine.parse(engine)
    args = {"event": q.event, "every": q.every, "start": q.range.start, "end": q.range.end,
            "segment": q.segment}
    with store.pinned():
        retention_mod.check_event(store, q.event, "event")
        if eng.is_polars:
            table = retention_mod.lifecycle(store, **args)
        else:
            counts = sql_retention.lifecycle_counts(store, eng.name, spark_master=eng.master,
                                                    **args)
            table = retention_mod.lifecycle_table(counts, every=q.every, start=q.range.start,
                                                  end=q.range.end)
    return LifecycleResult(table, q.every.value)


def lifecycle_actors(store: EventStore, q: LifecycleQuery, period: Any,
                     status: str) -> pl.DataFrame:
    """The users of one lifecycle bar: ``status`` in the period holding ``period``."""
    with store.pinned():
        retention_mod.check_event(store, q.event, "event")
        return retention_mod.lifecycle_users(store, q.event, period=period, status=status,
                                             every=q.every, start=q.range.start,
                                             end=q.range.end, segment=q.segment)


def run_stickiness(store: EventStore, q: StickinessQuery,
                   engine: Engine | str | None = None) -> StickinessResult:
    """Users by number of active days in each period."""
    eng = Engine.parse(engine)
    args = {"event": q.event, "every": q.every, "start": q.range.start, "end": q.range.end,
            "segment": q.segment}
    with store.pinned():
        retention_mod.check_event(store, q.event, "event")
        if eng.is_polars:
            table = retention_mod.stickiness(store, **args)
        else:
            counts = sql_retention.stickiness_counts(store, eng.name, spark_master=eng.master,
                                                     **args)
            table = retention_mod.stickiness_table(counts, every=q.every, start=q.range.start,
                                                   end=q.range.end)
    return StickinessResult(table, q.every.value)


def stickiness_actors(store: EventStore, q: StickinessQuery, period: Any,
                      days: int) -> pl.DataFrame:
    """The users active on exactly ``days`` days of the period holding ``period``."""
    with store.pinned():
        retention_mod.check_event(store, q.event, "event")
        return retention_mod.stickiness_users(store, q.event, period=period, days=days,
                                              every=q.every, start=q.range.start,
                                              end=q.range.end, segment=q.segment)


def save_actors(store: EventStore, users: pl.DataFrame, name: str,
                description: str = "") -> dict[str, Any]:
    """Save the users of a drill-down (a ``user_id`` frame) as a new static segment
    ``name`` (an existing name is a ConflictError, never replaced)."""
    if store.catalog.exists(name):
        raise ConflictError(f"a segment named {name!r} already exists: choose another name")
    ids = users["user_id"].to_list()
    seg, _ = create_segment(store, name, ids=ids, description=description)
    return {"name": seg.name, "version": seg.version, "members": len(ids)}


# --------------------------------------------------------------------------- any query
RUNNERS: dict[type[Query], Callable[[EventStore, Any], Any]] = {
    MembersQuery: run_members,
    SqlQuery: run_sql,
    UserQuery: run_user,
    TrendQuery: run_trend,
    ReachQuery: run_reach,
    ProfileQuery: run_profile,
    OverlapQuery: run_overlap,
    EngagementQuery: run_engagement,
    EngagementTrendQuery: run_engagement_trend,
    FunnelQuery: run_funnel,
    FunnelTrendQuery: run_funnel_trend,
    EventQuery: run_events,
    RetentionQuery: run_retention,
    LifecycleQuery: run_lifecycle,
    StickinessQuery: run_stickiness,
}


def run(store: EventStore, query: Query) -> Any:
    """The result of any query (its runner, by the query's type)."""
    runner = RUNNERS.get(type(query))
    if runner is None:
        raise UsageError(f"not a query: {type(query).__name__}")
    return runner(store, query)
