"""Queries: every analytic as a frozen, validated, hashable query object with one runner.

>>> from segcore import Store                                            # doctest: +SKIP
>>> from segcore.query import DateRange, Target, TrendQuery, run_trend    # doctest: +SKIP
>>> q = TrendQuery(Target(segment="Cart abandoners"), DateRange.of("2026-06-01", "2026-06-30"))
>>> run_trend(Store("data"), q).to_dict()                                # doctest: +SKIP

- :mod:`segcore.query.base`: :class:`DateRange`, :class:`Period`, :class:`Target`, JSON;
- :mod:`segcore.query.queries`: the query classes;
- :mod:`segcore.query.results`: the typed results (``to_dict()`` with derived shares);
- :mod:`segcore.query.runners`: ``run_<kind>(store, query)`` and the ``*_actors`` drill-downs.

Every name here is imported from its module on first use (PEP 562), so that a process
defines only the query and result classes it uses: a count needs only
:mod:`segcore.query.members` and :mod:`segcore.query.runners`.
"""

from __future__ import annotations

import importlib
from typing import Any

# the public names of this package, by the module that defines them
_EXPORTS: dict[str, tuple[str, ...]] = {
    "base": (
        "DateRange", "Period", "Query", "Target",
    ),
    "members": (
        "MembersQuery", "SqlQuery", "UserQuery",
    ),
    "queries": (
        "CompareQuery", "EngagementQuery", "EngagementTrendQuery", "EventQuery", "Exclusion",
        "FunnelQuery", "FunnelTrendQuery", "LifecycleQuery", "OverlapQuery", "ProfileQuery",
        "query_from_json", "ReachQuery", "RetentionQuery", "Step", "StickinessQuery",
        "TrendQuery", "UserSearchQuery", "ValuesQuery",
    ),
    "results": (
        "EngagementResult", "EventReportResult", "FunnelResult", "LifecycleResult",
        "MembersResult", "OverlapResult", "ProfileResult", "ReachResult", "RetentionResult",
        "SeriesResult", "SqlResult", "StickinessResult", "TrendResult", "UserResult",
    ),
    "runners": (
        "funnel_actors", "lifecycle_actors", "members_actors", "reach_actors",
        "retention_actors", "run", "run_compare", "run_engagement", "run_engagement_trend",
        "run_events", "run_funnel", "run_funnel_trend", "run_lifecycle", "run_members",
        "run_overlap", "run_profile", "run_reach", "run_retention", "run_sql",
        "run_stickiness", "run_trend", "run_user", "run_user_search", "run_values",
        "save_actors", "save_dropoffs", "save_funnel", "saved_funnel", "stickiness_actors",
        "trend_actors", "user_segments",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:  # a submodule (``segcore.query.runners``...) or nothing
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
