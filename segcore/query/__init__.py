"""Queries: every analytic as a frozen, validated, hashable query object with one runner.

>>> from segcore import Store                                            # doctest: +SKIP
>>> from segcore.query import DateRange, Target, TrendQuery, run_trend    # doctest: +SKIP
>>> q = TrendQuery(Target(segment="Cart abandoners"), DateRange.of("2026-06-01", "2026-06-30"))
>>> run_trend(Store("data"), q).to_dict()                                # doctest: +SKIP

- :mod:`segcore.query.base`: :class:`DateRange`, :class:`Period`, :class:`Target`, JSON;
- :mod:`segcore.query.queries`: the query classes;
- :mod:`segcore.query.results`: the typed results (``to_dict()`` with derived shares);
- :mod:`segcore.query.runners`: ``run_<kind>(store, query)`` and the ``*_actors`` drill-downs.
"""

from __future__ import annotations

from segcore.query.base import DateRange, Period, Query, Target, query_from_json
from segcore.query.queries import (
    CompareQuery,
    EngagementQuery,
    EngagementTrendQuery,
    EventQuery,
    Exclusion,
    FunnelQuery,
    FunnelTrendQuery,
    LifecycleQuery,
    MembersQuery,
    OverlapQuery,
    ProfileQuery,
    ReachQuery,
    RetentionQuery,
    SqlQuery,
    Step,
    StickinessQuery,
    TrendQuery,
    UserQuery,
    UserSearchQuery,
    ValuesQuery,
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
from segcore.query.runners import (
    funnel_actors,
    lifecycle_actors,
    members_actors,
    reach_actors,
    retention_actors,
    run,
    run_compare,
    run_engagement,
    run_engagement_trend,
    run_events,
    run_funnel,
    run_funnel_trend,
    run_lifecycle,
    run_members,
    run_overlap,
    run_profile,
    run_reach,
    run_retention,
    run_sql,
    run_stickiness,
    run_trend,
    run_user,
    run_user_search,
    run_values,
    save_actors,
    save_dropoffs,
    save_funnel,
    saved_funnel,
    stickiness_actors,
    trend_actors,
    user_segments,
)

__all__ = [
    "CompareQuery", "UserSearchQuery", "ValuesQuery", "run_compare", "run_user_search",
    "run_values",
    "DateRange", "EngagementQuery", "EngagementResult", "EngagementTrendQuery", "EventQuery",
    "EventReportResult", "Exclusion", "FunnelQuery", "FunnelResult", "FunnelTrendQuery",
    "MembersQuery", "MembersResult", "OverlapQuery", "OverlapResult", "Period", "ProfileQuery",
    "ProfileResult", "Query", "ReachQuery", "ReachResult", "SeriesResult", "SqlQuery",
    "SqlResult", "Step", "Target", "TrendQuery", "TrendResult", "UserQuery", "UserResult",
    "funnel_actors", "members_actors", "query_from_json", "reach_actors", "run",
    "run_engagement", "run_engagement_trend", "run_events", "run_funnel", "run_funnel_trend",
    "run_members", "run_overlap", "run_profile", "run_reach", "run_sql", "run_trend",
    "run_user", "save_dropoffs", "save_funnel", "saved_funnel", "trend_actors", "user_segments",
    "LifecycleQuery", "LifecycleResult", "RetentionQuery", "RetentionResult", "StickinessQuery",
    "StickinessResult", "lifecycle_actors", "retention_actors", "run_lifecycle", "run_retention",
    "run_stickiness", "save_actors", "stickiness_actors",
]
