"""Typed results of the runners; ``to_dict()`` is the JSON the CLI prints, with the
derived numbers (shares) computed here once for the CLI, the API and the dashboard."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import polars as pl


def share(part: int | None, whole: int | None) -> float | None:
    """``part / whole`` (None when either is unknown; 0.0 of nothing)."""
    if part is None or whole is None:
        return None
    return part / whole if whole else 0.0


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    date_cols = [c for c, t in frame.schema.items() if t in (pl.Date, pl.Datetime)]
    return frame.with_columns(pl.col(date_cols).cast(pl.String)).to_dicts() if date_cols \
        else frame.to_dicts()


@dataclasses.dataclass(frozen=True)
class MembersResult:
    """How many members at ``as_of``; ``all_users`` (the universe) when it was asked."""

    as_of: str
    members: int
    all_users: int | None = None

    @property
    def share_of_all(self) -> float | None:
        return share(self.members, self.all_users)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"as_of": self.as_of, "members": self.members}
        if self.all_users is not None:
            out.update(all_users=self.all_users, share_of_all=self.share_of_all)
        return out


@dataclasses.dataclass(frozen=True, eq=False)
class TrendResult:
    """``points``: ``date, members, entered, exited`` per point."""

    points: pl.DataFrame

    def to_dict(self) -> dict[str, Any]:
        df = self.points
        return {"points": [
            {"date": d.isoformat(), "members": int(m), "entered": int(e), "exited": int(x)}
            for d, m, e, x in zip(df["date"].to_list(), df["members"].to_list(),
                                  df["entered"].to_list(), df["exited"].to_list(), strict=True)
        ]}


@dataclasses.dataclass(frozen=True, eq=False)
class SeriesResult:
    """A per-period table (engagement over time, funnel conversion per period)."""

    rows: pl.DataFrame

    def to_dict(self) -> dict[str, Any]:
        return {"points": _rows(self.rows)}


@dataclasses.dataclass(frozen=True, eq=False)
class ReportResult:
    """A report as the analytic returns it (``report``); :meth:`to_dict` adds the
    derived shares."""

    report: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.report[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.report.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.report)


class ReachResult(ReportResult):
    """Members reachable per channel, any and none, and the channel combinations."""

    @property
    def members(self) -> int:
        return int(self.report["members"])

    def to_dict(self) -> dict[str, Any]:
        n = self.members
        return {**self.report, "any_share": share(self.report["any"], n),
                "none_share": share(self.report["none"], n)}


class ProfileResult(ReportResult):
    """Attribute distributions of the members and of all users."""

    def to_dict(self) -> dict[str, Any]:
        return {**self.report, "share_of_all": share(self.report["members"], self.report["all"])}


class OverlapResult(ReportResult):
    """Sizes, exclusive regions and pairs of 2 to 5 segments."""

    def to_dict(self) -> dict[str, Any]:
        union = self.report["union"]
        return {**self.report,
                "shares_of_union": {k: share(v, union) for k, v in self.report["sizes"].items()}}


class EngagementResult(ReportResult):
    """Active in the last 7/30 days and goal, as counts and shares of the members."""


class FunnelResult(ReportResult):
    """Users per step, conversions and times (``segments``: one funnel per segment)."""

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.report)

        def overall(steps: list[dict[str, Any]]) -> float | None:
            return steps[-1]["conversion_from_first"] if steps else None

        if "steps" in out:
            out["overall_conversion"] = overall(out["steps"])
        return out


class UserResult(ReportResult):
    """A user's attributes, event counts, latest events and segments."""

    def to_dict(self) -> dict[str, Any]:
        def plain(v: Any) -> Any:
            if isinstance(v, dt.datetime):
                return v.isoformat().replace("+00:00", "Z")
            if isinstance(v, dt.date):
                return v.isoformat()
            return v

        out = {k: plain(v) for k, v in self.report.items()}
        out["latest_events"] = [{k: plain(v) for k, v in e.items()}
                                for e in self.report["latest_events"]]
        out["attributes"] = {k: plain(v) for k, v in self.report["attributes"].items()}
        return out


@dataclasses.dataclass(frozen=True, eq=False)
class EventReportResult:
    """``rows``: ``period, event, [segment | value], events, users``."""

    rows: pl.DataFrame

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows.to_dicts()}


@dataclasses.dataclass(frozen=True)
class SqlResult:
    """The members query as SQL text."""

    sql: str
    dialect: str

    def to_dict(self) -> dict[str, Any]:
        return {"dialect": self.dialect, "sql": self.sql}
