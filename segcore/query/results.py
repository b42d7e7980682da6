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


# --------------------------------------------------------------------------- retention
@dataclasses.dataclass(frozen=True, eq=False)
class RetentionResult:
    """``table``: ``[segment,] cohort, size, k, retained`` (every cohort period of the
    range, k = 0..``periods``); ``last``: the first day of the range's last period
    (the average curve counts a cohort at k only when its period k has begun by then)."""

    table: pl.DataFrame
    every: str
    periods: int
    on_or_after: bool
    last: dt.date

    @classmethod
    def of(cls, table: pl.DataFrame, q: Any) -> RetentionResult:
        """The result of a :class:`~segcore.query.RetentionQuery` ``q`` from its table."""
        last = q.every.start_of(q.every.index_of(q.range.end))
        return cls(table, q.every.value, q.periods, q.on_or_after, last)

    @property
    def segments(self) -> list[str | None]:
        if "segment" not in self.table.columns:
            return [None]
        return list(dict.fromkeys(self.table["segment"].to_list()))

    def part(self, segment: str | None = None) -> pl.DataFrame:
        """The table of one breakdown segment (None: the whole table without breakdown)."""
        if segment is None or "segment" not in self.table.columns:
            return self.table
        return self.table.filter(pl.col("segment") == segment).drop("segment")

    def cohorts(self, segment: str | None = None) -> list[dict[str, Any]]:
        """``{period, size, retained[], shares[]}`` per cohort."""
        wide = (self.part(segment).group_by("cohort", "size", maintain_order=True)
                .agg(pl.col("retained").sort_by("k")))
        return [
            {"period": c.isoformat(), "size": int(n), "retained": list(r),
             "shares": [share(x, n) for x in r]}
            for c, n, r in zip(wide["cohort"].to_list(), wide["size"].to_list(),
                               wide["retained"].to_list(), strict=True)
        ]

    def average(self, segment: str | None = None) -> list[dict[str, Any]]:
        """The average curve: per k, retained / size summed over the cohorts whose
        period k has begun by the range's last period (``cohorts``: how many; ``share``
        None when none has)."""
        df = self.part(segment)
        step = {"day": "1d", "week": "1w", "month": "1mo"}[self.every]
        begun = df.with_columns(
            pl.col("cohort").dt.offset_by(pl.concat_str(pl.col("k"), pl.lit(step[1:])))
            .alias("at")
        ).filter(pl.col("at") <= self.last)
        agg = begun.group_by("k").agg(pl.len().alias("cohorts"), pl.col("size").sum(),
                                      pl.col("retained").sum())
        agg = pl.DataFrame({"k": list(range(self.periods + 1))},
                           schema={"k": df.schema["k"]}).join(agg, on="k", how="left") \
            .with_columns(pl.col("cohorts", "size", "retained").fill_null(0)).sort("k")
        return agg.select(
            *[pl.col(c).cast(pl.Int64) for c in ("k", "cohorts", "size", "retained")],
            pl.when(pl.col("cohorts") == 0).then(None)
            .when(pl.col("size") == 0).then(0.0)
            .otherwise(pl.col("retained") / pl.col("size")).alias("share"),
        ).to_dicts()

    def to_dict(self) -> dict[str, Any]:
        head: dict[str, Any] = {"every": self.every, "periods": self.periods,
                                "on_or_after": self.on_or_after}
        if "segment" not in self.table.columns:
            return {**head, "cohorts": self.cohorts(), "average": self.average()}
        return {**head, "segments": [
            {"segment": s, "cohorts": self.cohorts(s), "average": self.average(s)}
            for s in self.segments]}


@dataclasses.dataclass(frozen=True, eq=False)
class LifecycleResult:
    """``table``: ``period, new, returning, resurrecting, dormant`` (dormant negative)."""

    table: pl.DataFrame
    every: str

    def to_dict(self) -> dict[str, Any]:
        gained = pl.col("new") + pl.col("resurrecting")
        rows = self.table.with_columns(
            pl.col("period").dt.to_string("%Y-%m-%d"),
            (gained + pl.col("returning")).alias("active"),
            pl.when(pl.col("dormant") != 0).then(gained / -pl.col("dormant"))
            .otherwise(None).alias("quick_ratio"),
        ).to_dicts()
        return {"every": self.every, "periods": rows}


@dataclasses.dataclass(frozen=True, eq=False)
class StickinessResult:
    """``table``: ``period, days, users`` (days = 1..the period's length)."""

    table: pl.DataFrame
    every: str

    def to_dict(self) -> dict[str, Any]:
        wide = self.table.group_by("period", maintain_order=True).agg(
            pl.col("users").sort_by("days"))
        out = []
        for p, users in zip(wide["period"].to_list(), wide["users"].to_list(), strict=True):
            total = sum(users)
            out.append({"period": p.isoformat(), "users": total, "days": list(users),
                        "shares": [share(u, total) for u in users]})
        return {"every": self.every, "periods": out}
