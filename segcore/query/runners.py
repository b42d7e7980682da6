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

from segcore.analytics import compare as compare_mod
from segcore.analytics import engagement as engagement_mod
from segcore.analytics import event_report as event_report_mod
from segcore.analytics import funnel as funnel_mod
from segcore.analytics import overlap as overlap_mod
from segcore.analytics import profile as profile_mod
from segcore.analytics import reach as reach_mod
from segcore.analytics import trend as trend_mod
from segcore.analytics import values as values_mod
from segcore.engine.polars import evaluate
from segcore.engine.sql import compile_sql
from segcore.errors import UsageError
from segcore.lang.dates import resolve_as_of
from segcore.query.base import Query
from segcore.query.queries import (
    WHICH,
    CompareQuery,
    EngagementQuery,
    EngagementTrendQuery,
    EventQuery,
    FunnelQuery,
    FunnelTrendQuery,
    MembersQuery,
    OverlapQuery,
    ProfileQuery,
    ReachQuery,
    SqlQuery,
    TrendQuery,
    UserQuery,
    UserSearchQuery,
    ValuesQuery,
)
from segcore.query.results import (
    EngagementResult,
    EventReportResult,
    FunnelResult,
    MembersResult,
    OverlapResult,
    ProfileResult,
    ReachResult,
    SeriesResult,
    SqlResult,
    TrendResult,
    UserResult,
)
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


# --------------------------------------------------------------------------- comparisons, lookups
def run_compare(store: EventStore, q: CompareQuery) -> SeriesResult:
    """``segment, date, members, entered, exited, all_users, share`` per segment and point."""
    with store.pinned():
        return SeriesResult(compare_mod.compare_trend(store, q.segments, q.range.start,
                                                      q.range.end, q.every.value))


def run_values(store: EventStore, q: ValuesQuery) -> SeriesResult:
    """``value, count``: the most frequent values of a user attribute or event property."""
    with store.pinned():
        return SeriesResult(values_mod.top_values(store, q.column, event=q.event, top=q.top))


def run_user_search(store: EventStore, q: UserSearchQuery) -> SeriesResult:
    """``user_id`` and the email / name columns of the users found by id, email or name."""
    with store.pinned():
        return SeriesResult(values_mod.find_users(store, q.text, limit=q.limit))


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
    CompareQuery: run_compare,
    ValuesQuery: run_values,
    UserSearchQuery: run_user_search,
}


def run(store: EventStore, query: Query) -> Any:
    """The result of any query (its runner, by the query's type)."""
    runner = RUNNERS.get(type(query))
    if runner is None:
        raise UsageError(f"not a query: {type(query).__name__}")
    return runner(store, query)
