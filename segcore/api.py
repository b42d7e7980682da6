"""``segcore.Store``: the Python API, a store's data (:class:`~segcore.store.events.EventStore`)
plus one method per analytic. Every method builds a query object and calls its runner
(:mod:`segcore.query`); :meth:`Store.run` runs any query and returns its typed result.
Every analytic takes ``engine=``: None or ``"auto"`` (default: Polars, or DuckDB for some
analytics on a store too large for the event cache, :mod:`segcore.query.auto`), ``"polars"``,
``"duckdb"``, ``"clickhouse"``, ``"spark"``, a Spark master URL or an
:class:`~segcore.engine.choice.Engine` (docs/engines.md).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from segcore import query as Q
from segcore.engine.choice import Engine
from segcore.lang.dates import check_zone, report_zone
from segcore.store.events import EventStore
from segcore.store.settings import store_zone

# Imported by the methods that use them: segcore.segments and the catalog (sqlite3) by
# those that change segments (a count or an analytic never does), the rule engine by
# parse (a funnel without filters needs none).
if TYPE_CHECKING:
    from segcore.lang.tree import Node
    from segcore.store.catalog import MembersReport, Segment


def _target(rule: Any, segment: str | None) -> Q.Target:
    if isinstance(rule, dict):  # a tree's JSON: checked like any JSON rule text
        rule = json.dumps(rule)
    return Q.Target(rule=rule, segment=segment)


EngineArg = Engine | str | None


def _range(start: Any, end: Any) -> Q.DateRange | None:
    return None if start is None or end is None else Q.DateRange(start, end)


class Store(EventStore):
    """A segcore store rooted at ``home`` (default: ``SEGCORE_HOME`` or ``./data``).

    Examples
    --------
    >>> store = Store("data")                                        # doctest: +SKIP
    >>> store.count("did('charged', within => '30 days')", as_of="2026-06-30")  # doctest: +SKIP

    ``tz``: the report time zone (IANA name) of every call, unless a call gives its own
    ``tz=``; None: the store's setting (``segcore config set timezone ...``), else UTC.
    ``background_cache``: fill the event cache in a daemon thread from the first query on
    (for long-lived processes; see :class:`segcore.store.cache.EventCache`).
    """

    def __init__(self, home: Any = None, *, tz: str | None = None,
                 cache_events: bool | None = None, background_cache: bool = False):
        super().__init__(home, cache_events=cache_events, background_cache=background_cache)
        self.tz = None if tz is None else check_zone(tz)

    # ------------------------------------------------------------------ any query
    def run(self, query: Q.Query, engine: EngineArg = None) -> Any:
        """The typed result of any query object (see :mod:`segcore.query`) on ``engine``."""
        return Q.run(self, query, engine=engine)

    # ------------------------------------------------------------------ rules & segments
    def parse(self, rule: Any) -> Node:
        """Parse rule text (or pass a tree through) against this store's schema."""
        from segcore.engine.rules import to_tree

        return to_tree(self, rule)

    def count(self, rule: Any = None, as_of: Any = None, *, segment: str | None = None,
              engine: EngineArg = None, tz: str | None = None) -> int:
        """Number of members of a rule or saved segment at ``as_of``."""
        return Q.run_members(self, Q.MembersQuery(_target(rule, segment), as_of, tz=tz),
                             engine=engine).members

    def members(self, rule: Any = None, as_of: Any = None, *, segment: str | None = None,
                attributes: bool = False, engine: EngineArg = None,
                tz: str | None = None) -> pl.DataFrame:
        """Members (``user_id``, plus user attributes if asked) at ``as_of``."""
        q = Q.MembersQuery(_target(rule, segment), as_of, tz=tz)
        return Q.members_actors(self, q, attributes=attributes, engine=engine)

    def segments_of(self, user_id: str, as_of: Any = None, *, tz: str | None = None) -> list[str]:
        """Names of the saved segments ``user_id`` belongs to at ``as_of``."""
        return Q.user_segments(self, Q.UserQuery(user_id, as_of, tz=tz))

    def user(self, user_id: str, as_of: Any = None, last_events: int = 20, *,
             tz: str | None = None) -> dict[str, Any]:
        """A user's attributes, latest events and current segments."""
        return Q.run_user(self, Q.UserQuery(user_id, as_of, last_events, tz=tz)).report

    def sql(self, rule: Any = None, dialect: str = "duckdb", as_of: Any = None, *,
            segment: str | None = None, tz: str | None = None) -> str:
        """The rule compiled to SQL in a sqlglot dialect (days of the report zone)."""
        return Q.run_sql(self, Q.SqlQuery(_target(rule, segment), as_of, dialect, tz=tz)).sql

    # ------------------------------------------------------------------ static segments
    def add_members(self, name: str, ids: Any = None, expect_version: int | None = None, *,
                    ids_file: Any = None) -> MembersReport:
        """Add ids to a static segment: a report of added, already members and unknown ids."""
        from segcore.segments import add_members

        return add_members(self, name, ids, ids_file=ids_file, expect_version=expect_version)

    def remove_members(self, name: str, ids: Any = None, expect_version: int | None = None, *,
                       ids_file: Any = None) -> MembersReport:
        """Remove ids from a static segment: a report of removed and not-member ids."""
        from segcore.segments import remove_members

        return remove_members(self, name, ids, ids_file=ids_file,
                              expect_version=expect_version)

    def freeze(self, name: str, new_name: str, as_of: Any = None, *,
               description: str | None = None) -> Segment:
        """A new static segment with the members of ``name`` at ``as_of`` (default now)."""
        from segcore.segments import freeze_segment

        with report_zone(store_zone(self.home, self.tz)):
            return freeze_segment(self, name, new_name, as_of=as_of, description=description)

    # ------------------------------------------------------------------ analytics
    def trend(self, rule: Any = None, start: Any = None, end: Any = None, every: str = "day",
              *, segment: str | None = None, engine: EngineArg = None,
              tz: str | None = None) -> pl.DataFrame:
        """Size over time: DataFrame ``date, members, entered, exited``."""
        q = Q.TrendQuery(_target(rule, segment), _range(start, end), every, tz=tz)
        return Q.run_trend(self, q, engine=engine).points

    def reach(self, rule: Any = None, as_of: Any = None, *, segment: str | None = None,
              engine: EngineArg = None, tz: str | None = None) -> dict[str, Any]:
        """Reachability per channel, like the CLI's JSON."""
        return Q.run_reach(self, Q.ReachQuery(_target(rule, segment), as_of, tz=tz),
                           engine=engine).report

    def profile(self, rule: Any = None, as_of: Any = None, *, segment: str | None = None,
                attributes: Sequence[str] | None = None, top: int = 10,
                bins: int = 10, engine: EngineArg = None,
                tz: str | None = None) -> dict[str, Any]:
        """Attribute distributions of the members against all users."""
        q = Q.ProfileQuery(_target(rule, segment), as_of,
                           None if attributes is None else tuple(attributes), top, bins, tz=tz)
        return Q.run_profile(self, q, engine=engine).report

    def overlap(self, segments: Sequence[str], as_of: Any = None, *,
                engine: EngineArg = None, tz: str | None = None) -> dict[str, Any]:
        """Sizes, exclusive regions and pairwise Jaccard of 2 to 5 segments."""
        return Q.run_overlap(self, Q.OverlapQuery(tuple(segments), as_of, tz=tz),
                             engine=engine).report

    def engagement(self, rule: Any = None, as_of: Any = None, *, segment: str | None = None,
                   goal: str | None = None, goal_within: str = "30 days",
                   engine: EngineArg = None, tz: str | None = None) -> dict[str, Any]:
        """Share of the members active in the last 7/30 days and who did ``goal``."""
        q = Q.EngagementQuery(_target(rule, segment), as_of, goal, goal_within, tz=tz)
        return Q.run_engagement(self, q, engine=engine).report

    def funnel(self, steps: Any, window: str | dt.timedelta = "1d", start: Any = None,
               end: Any = None, strict: bool = False, segments: Sequence[str] | None = None,
               engine: EngineArg = None, **options: Any) -> dict[str, Any]:
        """Funnel report (docs/analytics.md, Funnels), like the CLI's JSON.

        ``options``: ``segment`` (only its members), ``order``, ``exclusions``, ``hold``,
        ``strict_order``, ``dedup``, ``tz`` (the report zone of the range).
        """
        return Q.run_funnel(self, funnel_query(steps, window, start, end, strict, segments,
                                               **options), engine=engine).report

    def events(self, events: Any, start: Any = None, end: Any = None, every: str = "day",
               segment: str | None = None, by: str | None = None,
               engine: EngineArg = None, **options: Any) -> pl.DataFrame:
        """Event report (docs/analytics.md, Event reports).

        ``options``: ``segments`` (a row group per segment), ``top``, ``where``, ``tz``.
        """
        q = Q.EventQuery(events, _range(start, end), every, segment,
                         tuple(options.pop("segments", None) or ()), by, **options)
        return Q.run_events(self, q, engine=engine).rows

    # ------------------------------------------------------------------ retention
    def retention(self, start_event: str | None = None, return_event: str | None = None,
                  start: Any = None, end: Any = None, every: str = "week", periods: int = 8,
                  *, engine: EngineArg = None, **options: Any) -> dict[str, Any]:
        """Retention cohort table and average curve (docs/analytics.md, Retention), like
        the CLI's JSON.

        ``options``: ``recurring``, ``on_or_after``, ``entered`` (cohorts by the period
        users entered this saved segment, instead of ``start_event``), ``segment`` (only
        its members), ``segments`` (one table per segment); ``engine``: auto (default), polars,
        duckdb, clickhouse or spark.
        """
        q = retention_query(start_event, return_event, start, end, every, periods, **options)
        return Q.run_retention(self, q, engine).to_dict()

    def retention_users(self, cohort: Any, k: int | None = None, *,
                        breakdown: str | None = None, **query: Any) -> pl.DataFrame:
        """The users (``user_id``) of one retention cell: the cohort of the period holding
        ``cohort`` (of breakdown segment ``breakdown``) retained in period ``k`` (None: the
        whole cohort); ``query``: :meth:`retention`'s arguments."""
        return Q.retention_actors(self, retention_query(**query), cohort, k, breakdown)

    def lifecycle(self, event: str, start: Any = None, end: Any = None, every: str = "week",
                  *, segment: str | None = None, engine: EngineArg = None) -> pl.DataFrame:
        """New, returning, resurrecting and dormant (negative) users per period:
        DataFrame ``period, new, returning, resurrecting, dormant``."""
        q = Q.LifecycleQuery(event, _range(start, end), every, segment)
        return Q.run_lifecycle(self, q, engine).table

    def lifecycle_users(self, event: str, period: Any, status: str, start: Any = None,
                        end: Any = None, every: str = "week", *,
                        segment: str | None = None) -> pl.DataFrame:
        """The users of one lifecycle bar (``status`` in the period holding ``period``)."""
        q = Q.LifecycleQuery(event, _range(start, end), every, segment)
        return Q.lifecycle_actors(self, q, period, status)

    def stickiness(self, event: str, start: Any = None, end: Any = None, every: str = "week",
                   *, segment: str | None = None, engine: EngineArg = None) -> pl.DataFrame:
        """Users by number of active days per period: DataFrame ``period, days, users``."""
        q = Q.StickinessQuery(event, _range(start, end), every, segment)
        return Q.run_stickiness(self, q, engine).table

    def stickiness_users(self, event: str, period: Any, days: int, start: Any = None,
                         end: Any = None, every: str = "week", *,
                         segment: str | None = None) -> pl.DataFrame:
        """The users active on exactly ``days`` days of the period holding ``period``."""
        q = Q.StickinessQuery(event, _range(start, end), every, segment)
        return Q.stickiness_actors(self, q, period, days)

    def save_users(self, name: str, users: pl.DataFrame, description: str = "") -> dict[str, Any]:
        """Save a drill-down's users (a ``user_id`` frame) as a new static segment."""
        return Q.save_actors(self, users, name, description)


def retention_query(start_event: str | None = None, return_event: str | None = None,
                    start: Any = None, end: Any = None, every: str = "week", periods: int = 8,
                    *, recurring: bool = False, on_or_after: bool = False,
                    entered: str | None = None, segment: str | None = None,
                    segments: Sequence[str] | None = None) -> Q.RetentionQuery:
    """The :class:`~segcore.query.RetentionQuery` of :meth:`Store.retention`'s arguments."""
    return Q.RetentionQuery(start_event, return_event, _range(start, end), every, periods,
                            recurring, on_or_after, entered, segment, tuple(segments or ()))


def funnel_query(steps: Any, window: str | dt.timedelta = "1d", start: Any = None,
                 end: Any = None, strict: bool = False, segments: Sequence[str] | None = None,
                 *, segment: str | None = None, order: str = "ordered",
                 exclusions: Any = None, hold: str | None = None,
                 any_order: bool | None = None, strict_order: bool = False,
                 dedup: bool = False, tz: str | None = None) -> Q.FunnelQuery:
    """The :class:`~segcore.query.FunnelQuery` of the funnel functions' arguments."""
    return Q.FunnelQuery(
        steps=steps, window=window, range=_range(start, end), strict=strict,
        order="any" if any_order else order, exclusions=tuple(exclusions or ()), hold=hold,
        segment=segment, compare=tuple(segments or ()), strict_order=strict_order, dedup=dedup,
        tz=tz)
