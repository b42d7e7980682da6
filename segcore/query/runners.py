"""One runner per query: ``run_<kind>(store, query) -> result``, and the drill-downs
(``*_actors``) returning the users behind a number (a ``user_id`` DataFrame).

Every runner takes an ``engine`` (:class:`segcore.engine.choice.Engine`, or its text;
None or ``"auto"``: Polars, or DuckDB for some analytics on a store too large for the
event cache, :mod:`segcore.query.auto`). On Polars it reads one consistent set of the store's files
(``store.pinned()``) and calls the analytic's function in :mod:`segcore.engine.polars.evaluate`
or :mod:`segcore.analytics`; on a SQL engine it calls its counterpart in
:mod:`segcore.query.sql_runners`, which returns the same typed result. :func:`run` picks
the runner of a query by its kind. The CLI, ``segcore.Store`` and the dashboard all come
through here (docs/architecture.md, docs/engines.md).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import polars as pl

from segcore.engine.choice import Engine
from segcore.engine.polars import evaluate
from segcore.errors import ConflictError, UsageError
from segcore.lang.dates import (
    ReportZone,
    report_zone,
    resolve_as_of,
    zone_is_set,
)
from segcore.query.auto import choose_engine, is_auto
from segcore.query.base import Query, Target
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
from segcore.store.events import EventStore
from segcore.store.settings import store_zone

# Query classes are only annotations here (:func:`run` goes by ``kind``), so a count
# defines no query class but its own; the few a runner builds are imported there.
if TYPE_CHECKING:
    from segcore.query.members import MembersQuery, SqlQuery, UserQuery
    from segcore.query.queries import (
        CompareQuery,
        EngagementQuery,
        EngagementTrendQuery,
        EventQuery,
        FunnelQuery,
        FunnelTrendQuery,
        LifecycleQuery,
        OverlapQuery,
        ProfileQuery,
        ReachQuery,
        RetentionQuery,
        StickinessQuery,
        TrendQuery,
        UserSearchQuery,
        ValuesQuery,
    )

EngineArg = Engine | str | None


def _on_sql() -> Any:
    """:mod:`segcore.query.sql_runners`, imported on first use (a Polars-only process
    never loads the SQL compilers)."""
    from segcore.query import sql_runners

    return sql_runners


def _sql(store: EventStore, engine: EngineArg, analytic: str) -> Engine | None:
    """The SQL engine ``analytic`` runs on, or None for the Polars backend (no engine
    given: :func:`segcore.query.auto.choose_engine`).

    Every analytic follows the report zone on every engine: instants come from its
    midnights, ``today()`` and dates compile with the dialect's zone functions, event
    reports and funnels count its local days (:mod:`segcore.engine.sql.localday`), and
    retention, lifecycle and stickiness number its local days, weeks and months
    (``Dialect.local_date``).
    """
    e = choose_engine(store, analytic, engine)
    if e.is_polars:
        return None
    from segcore.engine.sql.engines import prepare

    return prepare(e)


def _iso(T: Any) -> str:
    return T.isoformat().replace("+00:00", "Z")


R = TypeVar("R")


def query_zone(store: EventStore, q: Query) -> ReportZone:
    """The report zone ``q`` runs in: its ``tz``, else the caller's zone, else the store's
    (``Store(tz=...)`` or its settings), else UTC (:func:`segcore.store.settings.store_zone`)."""
    tz = q.tz
    inner = getattr(q, "funnel", None)
    if tz is None and isinstance(inner, Query):
        tz = inner.tz
    if tz is None and not zone_is_set():
        tz = getattr(store, "tz", None)
    return store_zone(store.home, tz)


def zoned(runner: Callable[..., R]) -> Callable[..., R]:
    """Run ``runner(store, q, ...)`` with the days of :func:`query_zone`."""
    @functools.wraps(runner)
    def in_zone(store: EventStore, q: Any, *args: Any, **kwargs: Any) -> R:
        with report_zone(query_zone(store, q)):
            return runner(store, q, *args, **kwargs)
    return in_zone


# --------------------------------------------------------------------------- members
@zoned
def run_members(store: EventStore, q: MembersQuery, engine: EngineArg = None) -> MembersResult:
    """How many members ``q.target`` has at ``q.as_of`` (and all users, if asked)."""
    if (sql := _sql(store, engine, "members")) is not None:
        return _on_sql().members(store, q, sql)
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


@zoned
def members_actors(store: EventStore, q: MembersQuery, *,
                   attributes: bool = False, engine: EngineArg = None) -> pl.DataFrame:
    """The members (sorted ``user_id``; with ``attributes``, the user columns too)."""
    if (sql := _sql(store, engine, "members")) is not None:
        return _on_sql().members_actors(store, q, sql, attributes)
    with store.pinned():
        return evaluate.members(store, q.target.rule, as_of=q.as_of, segment=q.target.segment,
                                attributes=attributes)


@zoned
def run_sql(store: EventStore, q: SqlQuery, engine: EngineArg = None) -> SqlResult:
    """The members query of ``q.target`` compiled to SQL."""
    from segcore.engine.sql import compile_sql
    # compiling needs no engine: the dialect is the query's
    sql = compile_sql(store, q.target.rule, dialect=q.dialect, as_of=q.as_of,
                      segment=q.target.segment, events_table=q.events_table,
                      users_table=q.users_table)
    return SqlResult(sql, q.dialect)


@zoned
def run_user(store: EventStore, q: UserQuery, engine: EngineArg = None) -> UserResult:
    """A user's attributes, latest events and current segments."""
    _ = is_auto(engine) or Engine.parse(engine)  # one user's page reads the local store on every engine
    with store.pinned():
        return UserResult(evaluate.user_profile(store, q.user_id, as_of=q.as_of,
                                                last_events=q.last_events))


@zoned
def user_segments(store: EventStore, q: UserQuery, engine: EngineArg = None) -> list[str]:
    """Names of the saved segments the user belongs to at ``q.as_of``."""
    _ = is_auto(engine) or Engine.parse(engine)  # one user's segments: the local store on every engine
    with store.pinned():
        return evaluate.segments_of(store, q.user_id, as_of=q.as_of)


# --------------------------------------------------------------------------- segment analytics
@zoned
def run_trend(store: EventStore, q: TrendQuery, engine: EngineArg = None) -> TrendResult:
    """Members, entered and exited at every point of the range."""
    from segcore.analytics import trend as trend_mod
    if (sql := _sql(store, engine, "trend")) is not None:
        return _on_sql().trend(store, q, sql)
    with store.pinned():
        df = trend_mod.trend(store, q.target.rule, start=q.range.start, end=q.range.end,
                             every=q.every.value, segment=q.target.segment)
    return TrendResult(df)


@zoned
def trend_actors(store: EventStore, q: TrendQuery, date: Any, which: str = "entered",
                 engine: EngineArg = None) -> pl.DataFrame:
    """The users who ``entered``/``exited`` at the point of ``date`` (or its ``members``)."""
    from segcore.analytics import trend as trend_mod
    from segcore.query.queries import WHICH

    if which not in WHICH:
        raise UsageError(f"bad list {which!r}: use entered, exited or members")
    if (sql := _sql(store, engine, "trend")) is not None:
        return _on_sql().trend_actors(store, q, date, which, sql)
    with store.pinned():
        return trend_mod.trend_members(store, q.target.rule, date, segment=q.target.segment,
                                       which=which, every=q.every.value)


@zoned
def run_reach(store: EventStore, q: ReachQuery, engine: EngineArg = None) -> ReachResult:
    """Members reachable per channel at ``q.as_of``."""
    from segcore.analytics import reach as reach_mod
    if (sql := _sql(store, engine, "reach")) is not None:
        return _on_sql().reach(store, q, sql)
    with store.pinned():
        return ReachResult(reach_mod.reach(store, q.target.rule, as_of=q.as_of,
                                           segment=q.target.segment,
                                           channels=None if q.channels is None
                                           else list(q.channels)))


@zoned
def reach_actors(store: EventStore, q: ReachQuery, channel: str,
                 engine: EngineArg = None) -> pl.DataFrame:
    """Members reachable by ``channel``: ``user_id`` and the contact columns it uses."""
    from segcore.analytics import reach as reach_mod
    if (sql := _sql(store, engine, "reach")) is not None:
        return _on_sql().reach_actors(store, q, channel, sql)
    with store.pinned():
        return reach_mod.reachable_members(store, q.target.rule, channel, q.as_of,
                                           segment=q.target.segment)


@zoned
def run_profile(store: EventStore, q: ProfileQuery, engine: EngineArg = None) -> ProfileResult:
    """Attribute distributions of the members against all users."""
    from segcore.analytics import profile as profile_mod
    if (sql := _sql(store, engine, "profile")) is not None:
        return _on_sql().profile(store, q, sql)
    with store.pinned():
        return ProfileResult(profile_mod.profile(
            store, q.target.rule, as_of=q.as_of, segment=q.target.segment,
            attributes=None if q.attributes is None else list(q.attributes),
            top=q.top, bins=q.bins))


@zoned
def run_overlap(store: EventStore, q: OverlapQuery, engine: EngineArg = None) -> OverlapResult:
    """Sizes, regions and pairwise overlap of 2 to 5 segments."""
    from segcore.analytics import overlap as overlap_mod
    if (sql := _sql(store, engine, "overlap")) is not None:
        return _on_sql().overlap(store, q, sql)
    with store.pinned():
        return OverlapResult(overlap_mod.overlap(store, list(q.items), as_of=q.as_of))


@zoned
def run_engagement(store: EventStore, q: EngagementQuery, engine: EngineArg = None) -> EngagementResult:
    """Active and converting shares of the members at ``q.as_of``."""
    from segcore.analytics import engagement as engagement_mod
    if (sql := _sql(store, engine, "engagement")) is not None:
        return _on_sql().engagement(store, q, sql)
    with store.pinned():
        return EngagementResult(engagement_mod.engagement(
            store, q.target.rule, as_of=q.as_of, segment=q.target.segment, goal=q.goal,
            goal_within=q.goal_within))


@zoned
def run_engagement_trend(store: EventStore, q: EngagementTrendQuery,
                         engine: EngineArg = None) -> SeriesResult:
    """Engagement at every point of the range."""
    from segcore.analytics import engagement as engagement_mod
    if (sql := _sql(store, engine, "engagement_trend")) is not None:
        return _on_sql().engagement_trend(store, q, sql)
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
        **({"strict_order": True} if q.strict_order else {}),
        **({"dedup": True} if q.dedup else {}),
    }


@zoned
def run_funnel(store: EventStore, q: FunnelQuery, engine: EngineArg = None) -> FunnelResult:
    """Users per step (per segment of ``q.compare`` side by side when given), computed
    by ``engine`` (default Polars; docs/engines.md, Funnels)."""
    from segcore.analytics import funnel as funnel_mod
    from segcore.engine.sql.funnel import funnel_backend
    with store.pinned():
        return FunnelResult(funnel_mod.funnel(store, q.step_values, segments=list(q.compare) or None,
                                              backend=funnel_backend(store, _sql(store, engine, "funnel") or Engine()),
                                              **_funnel_args(q)))


@zoned
def funnel_actors(store: EventStore, q: FunnelQuery, after_step: int,
                  engine: EngineArg = None) -> pl.DataFrame:
    """The users who dropped off after ``after_step`` (1-based): reached it, not the next."""
    from segcore.analytics import funnel as funnel_mod
    from segcore.engine.sql.funnel import funnel_backend
    with store.pinned():
        return funnel_mod.funnel_dropoffs(store, q.step_values, after_step=after_step,
                                          backend=funnel_backend(store, _sql(store, engine, "funnel") or Engine()),
                                          **_funnel_args(q))


@zoned
def save_dropoffs(store: EventStore, q: FunnelQuery, after_step: int, name: str,
                  description: str = "", engine: EngineArg = None) -> dict[str, Any]:
    """Save :func:`funnel_actors` as a new static segment ``name``."""
    from segcore.analytics import funnel as funnel_mod
    from segcore.engine.sql.funnel import funnel_backend
    with store.pinned():
        return funnel_mod.save_dropoffs(store, name, q.step_values, after_step=after_step,
                                        description=description,
                                        backend=funnel_backend(store, _sql(store, engine, "funnel") or Engine()),
                                        **_funnel_args(q))


def saved_funnel(store: EventStore, name: str) -> FunnelQuery:
    """The saved funnel ``name`` (NotFoundError if there is none)."""
    from segcore.query.queries import FunnelQuery

    return FunnelQuery.from_saved(store.catalog.get_funnel(name)["spec"])


def save_funnel(store: EventStore, name: str, q: FunnelQuery) -> dict[str, Any]:
    """Save ``q`` as funnel ``name`` (its JSON; an existing name is replaced)."""
    return store.catalog.save_funnel(name, q.to_dict())


@zoned
def run_funnel_trend(store: EventStore, q: FunnelTrendQuery,
                     engine: EngineArg = None) -> SeriesResult:
    """Conversion per period of entry: ``period, entered, completed, conversion``."""
    from segcore.analytics import funnel as funnel_mod
    from segcore.engine.sql.funnel import funnel_backend
    args = _funnel_args(q.funnel)
    with store.pinned():
        return SeriesResult(funnel_mod.funnel_over_time(store, q.funnel.step_values,
                                                        every=q.every.value,
                                                        backend=funnel_backend(store, _sql(store, engine, "funnel") or Engine()),
                                                        **args))


# --------------------------------------------------------------------------- event reports
@zoned
def run_events(store: EventStore, q: EventQuery, engine: EngineArg = None) -> EventReportResult:
    """Events and distinct users per period."""
    from segcore.analytics import event_report as event_report_mod
    if (sql := _sql(store, engine, "events")) is not None:
        return _on_sql().events(store, q, sql)
    with store.pinned():
        return EventReportResult(event_report_mod.event_report(
            store, list(q.events), start=q.range.start, end=q.range.end, every=q.every.value,
            segment=q.segment, by=q.by, segments=list(q.compare) or None, top=q.top,
            where=q.where))


# --------------------------------------------------------------------------- retention
def _checked(store: EventStore, q: RetentionQuery | LifecycleQuery | StickinessQuery) -> None:
    """Unknown event names are a UsageError (as on every engine)."""
    from segcore.analytics import retention as retention_mod
    if q.kind == "retention":
        if q.start_event is not None:
            retention_mod.check_event(store, q.start_event, "start event")
        retention_mod.check_event(store, q.return_event, "return event")
    else:
        retention_mod.check_event(store, q.event, "event")


@zoned
def run_retention(store: EventStore, q: RetentionQuery,
                  engine: EngineArg = None) -> RetentionResult:
    """The cohort table and average curve (per segment of ``q.compare`` side by side)."""
    from segcore.analytics import retention as retention_mod
    _checked(store, q)
    if (sql := _sql(store, engine, "retention")) is not None:
        return _on_sql().retention(store, q, sql)
    with store.pinned():
        table = retention_mod.retention(store, **q.args)
    return RetentionResult.of(table, q)


@zoned
def retention_actors(store: EventStore, q: RetentionQuery, cohort: Any, k: int | None = None,
                     segment: str | None = None, engine: EngineArg = None) -> pl.DataFrame:
    """The users of one cell: the cohort of the period holding ``cohort`` (of breakdown
    ``segment``) retained in period ``k`` (None: the whole cohort)."""
    from segcore.analytics import retention as retention_mod
    _checked(store, q)
    if (sql := _sql(store, engine, "retention")) is not None:
        return _on_sql().retention_actors(store, q, cohort, k, segment, sql)
    with store.pinned():
        return retention_mod.retention_users(store, cohort=cohort, k=k, group=segment, **q.args)


@zoned
def run_lifecycle(store: EventStore, q: LifecycleQuery,
                  engine: EngineArg = None) -> LifecycleResult:
    """New, returning, resurrecting and dormant users per period."""
    from segcore.analytics import retention as retention_mod
    _checked(store, q)
    if (sql := _sql(store, engine, "lifecycle")) is not None:
        return _on_sql().lifecycle(store, q, sql)
    with store.pinned():
        return LifecycleResult(retention_mod.lifecycle(store, **q.args), q.every.value)


@zoned
def lifecycle_actors(store: EventStore, q: LifecycleQuery, period: Any, status: str,
                     engine: EngineArg = None) -> pl.DataFrame:
    """The users of one lifecycle bar: ``status`` in the period holding ``period``."""
    from segcore.analytics import retention as retention_mod
    _checked(store, q)
    if (sql := _sql(store, engine, "lifecycle")) is not None:
        return _on_sql().lifecycle_actors(store, q, period, status, sql)
    args = q.args
    with store.pinned():
        return retention_mod.lifecycle_users(store, args.pop("event"), period=period,
                                             status=status, **args)


@zoned
def run_stickiness(store: EventStore, q: StickinessQuery,
                   engine: EngineArg = None) -> StickinessResult:
    """Users by number of active days in each period."""
    from segcore.analytics import retention as retention_mod
    _checked(store, q)
    if (sql := _sql(store, engine, "stickiness")) is not None:
        return _on_sql().stickiness(store, q, sql)
    with store.pinned():
        return StickinessResult(retention_mod.stickiness(store, **q.args), q.every.value)


@zoned
def stickiness_actors(store: EventStore, q: StickinessQuery, period: Any, days: int,
                      engine: EngineArg = None) -> pl.DataFrame:
    """The users active on exactly ``days`` days of the period holding ``period``."""
    from segcore.analytics import retention as retention_mod
    _checked(store, q)
    if (sql := _sql(store, engine, "stickiness")) is not None:
        return _on_sql().stickiness_actors(store, q, period, days, sql)
    args = q.args
    with store.pinned():
        return retention_mod.stickiness_users(store, args.pop("event"), period=period,
                                              days=days, **args)


def save_actors(store: EventStore, users: pl.DataFrame, name: str,
                description: str = "") -> dict[str, Any]:
    """Save the users of a drill-down (a ``user_id`` frame) as a new static segment
    ``name`` (an existing name is a ConflictError, never replaced)."""
    from segcore.segments import create_segment  # the catalog's code: only when saving

    if store.catalog.exists(name):
        raise ConflictError(f"a segment named {name!r} already exists: choose another name")
    ids = users["user_id"].to_list()
    seg, _ = create_segment(store, name, ids=ids, description=description)
    return {"name": seg.name, "version": seg.version, "members": len(ids)}
# --------------------------------------------------------------------------- comparisons, lookups
@zoned
def run_compare(store: EventStore, q: CompareQuery, engine: EngineArg = None) -> SeriesResult:
    """``segment, date, members, entered, exited, all_users, share`` per segment and point
    (each segment's trend on ``engine``; all users from the store)."""
    from segcore.analytics import compare as compare_mod
    from segcore.query.queries import TrendQuery

    sql = _sql(store, engine, "trend")

    def sql_trend(name: str) -> pl.DataFrame:
        one = TrendQuery(Target(segment=name), q.range, q.every, tz=q.tz)
        return _on_sql().trend(store, one, sql).points

    with store.pinned():
        return SeriesResult(compare_mod.compare_trend(
            store, q.segments, q.range.start, q.range.end, q.every.value,
            trend_of=None if sql is None else sql_trend))


@zoned
def run_values(store: EventStore, q: ValuesQuery, engine: EngineArg = None) -> SeriesResult:
    """``value, count``: the most frequent values of a user attribute or event property
    (read from the local store on every engine, like a user's page)."""
    from segcore.analytics import values as values_mod
    with store.pinned():
        return SeriesResult(values_mod.top_values(store, q.column, event=q.event, top=q.top))


@zoned
def run_user_search(store: EventStore, q: UserSearchQuery,
                    engine: EngineArg = None) -> SeriesResult:
    """``user_id`` and the email / name columns of the users found by id, email or name
    (read from the local store on every engine)."""
    from segcore.analytics import values as values_mod
    with store.pinned():
        return SeriesResult(values_mod.find_users(store, q.text, limit=q.limit))


# --------------------------------------------------------------------------- any query
# the runner of each query kind (``Query.kind``)
RUNNERS: dict[str, Callable[..., Any]] = {
    "members": run_members,
    "sql": run_sql,
    "user": run_user,
    "trend": run_trend,
    "reach": run_reach,
    "profile": run_profile,
    "overlap": run_overlap,
    "engagement": run_engagement,
    "engagement_trend": run_engagement_trend,
    "funnel": run_funnel,
    "funnel_trend": run_funnel_trend,
    "events": run_events,
    "retention": run_retention,
    "lifecycle": run_lifecycle,
    "stickiness": run_stickiness,
    "compare": run_compare,
    "values": run_values,
    "user_search": run_user_search,
}


def run(store: EventStore, query: Query, engine: EngineArg = None) -> Any:
    """The result of any query (its runner, by the query's kind) on ``engine``."""
    runner = RUNNERS.get(query.kind) if isinstance(query, Query) else None
    if runner is None:
        raise UsageError(f"not a query: {type(query).__name__}")
    return runner(store, query, engine=engine)
