"""The query objects: one frozen, validated, hashable dataclass per analytic.

A query holds what was asked, nothing computed: it is checked when built (types,
shapes, dates, durations) and against the store when run (event names, columns,
saved segments). ``to_json``/``from_json`` round-trip it, so a saved funnel is the
:class:`FunnelQuery`'s JSON and the dashboard caches results on the query itself.
Runners are in :mod:`segcore.query.runners`. The members queries (count, list, SQL,
one user) are defined in :mod:`segcore.query.members` and imported here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any, ClassVar

from segcore.errors import UsageError
from segcore.lang.durations import parse_duration
from segcore.query.base import (
    DateRange,
    Period,
    Query,
    Target,
    check_as_of,
    names,
    set_fields,
)
from segcore.query.base import query_from_json as query_from_json  # knows every kind here

# The members queries have their own module (a count defines no other query class);
# they are part of this module's set of queries too.
from segcore.query.members import MembersQuery as MembersQuery
from segcore.query.members import SqlQuery as SqlQuery
from segcore.query.members import UserQuery as UserQuery

ORDERS = ("ordered", "any")
WHICH = ("entered", "exited", "members")


def _text_or_none(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise UsageError(f"{what} must be rule text, got {type(value).__name__}")
    return value.strip() or None


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{what} must be a positive number, got {value!r}")
    return value


# --------------------------------------------------------------------------- segment analytics
@dataclasses.dataclass(frozen=True)
class TrendQuery(Query):
    """Size of ``target`` at the end of every day (or ISO week's Sunday) of ``range``,
    with who entered and exited since the previous point."""

    kind: ClassVar[str] = "trend"
    target: Target
    range: DateRange | None = None
    every: Period = Period.DAY

    def __post_init__(self) -> None:
        set_fields(self, every=Period.parse(self.every))
        if self.range is None:
            raise UsageError("a trend needs a start and an end date")


@dataclasses.dataclass(frozen=True)
class ReachQuery(Query):
    """Members of ``target`` at ``as_of`` reachable per channel (``channels``: all)."""

    kind: ClassVar[str] = "reach"
    target: Target
    as_of: str | None = None
    channels: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        chans = None if self.channels is None else names(self.channels, "channels")
        set_fields(self, as_of=check_as_of(self.as_of), channels=chans)


@dataclasses.dataclass(frozen=True)
class ProfileQuery(Query):
    """Distributions of ``attributes`` (None: a standard set) among the members of
    ``target`` and among all users at ``as_of``."""

    kind: ClassVar[str] = "profile"
    target: Target
    as_of: str | None = None
    attributes: tuple[str, ...] | None = None
    top: int = 10
    bins: int = 10

    def __post_init__(self) -> None:
        attrs = None if self.attributes is None else names(self.attributes, "attributes")
        if not isinstance(self.top, int) or not isinstance(self.bins, int):
            raise UsageError("top and bins must be at least 1")
        set_fields(self, as_of=check_as_of(self.as_of), attributes=attrs)


@dataclasses.dataclass(frozen=True)
class OverlapQuery(Query):
    """Sizes, exclusive regions and pairwise Jaccard of 2 to 5 ``items`` (saved segment
    names or rules) at ``as_of``."""

    kind: ClassVar[str] = "overlap"
    items: tuple[str, ...]
    as_of: str | None = None

    def __post_init__(self) -> None:
        items = self.items
        if isinstance(items, str) or not all(isinstance(i, str) for i in items or ()):
            raise UsageError("overlap: give segment names or rules")
        set_fields(self, items=tuple(items or ()), as_of=check_as_of(self.as_of))


@dataclasses.dataclass(frozen=True)
class EngagementQuery(Query):
    """Share of the members of ``target`` active in the last 7 and 30 days before
    ``as_of``, and who did ``goal`` within ``goal_within``."""

    kind: ClassVar[str] = "engagement"
    target: Target
    as_of: str | None = None
    goal: str | None = None
    goal_within: str = "30 days"

    def __post_init__(self) -> None:
        parse_duration(self.goal_within)
        set_fields(self, as_of=check_as_of(self.as_of))


@dataclasses.dataclass(frozen=True)
class EngagementTrendQuery(Query):
    """:class:`EngagementQuery` at every point of ``range`` (members at each point)."""

    kind: ClassVar[str] = "engagement_trend"
    target: Target
    range: DateRange | None = None
    every: Period = Period.DAY
    goal: str | None = None
    goal_within: str = "30 days"

    def __post_init__(self) -> None:
        parse_duration(self.goal_within)
        set_fields(self, every=Period.parse(self.every))
        if self.range is None:
            raise UsageError("a trend needs a start and an end date")


# --------------------------------------------------------------------------- funnels
@dataclasses.dataclass(frozen=True)
class Step:
    """A funnel step: an event name and an optional ``where`` filter (rule text)."""

    event: str
    where: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.event, str):
            raise UsageError(f"a step's event must be a name, got {self.event!r}")
        set_fields(self, where=_text_or_none(self.where, f"the where filter of step {self.event!r}"))

    @classmethod
    def of(cls, value: Any, where: str) -> Step:
        """A step from an event name, ``{"event", "where"}`` or a Step."""
        from segcore.analytics.funnel import step_fields  # lazily: a CLI call may not need it

        if isinstance(value, Step):
            return value
        return cls(*step_fields(value, where))

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.event, "where": self.where}


@dataclasses.dataclass(frozen=True)
class Exclusion:
    """An exclusion event between steps ``between = (i, j)`` (0-based; None: first-last)."""

    event: str
    where: str | None = None
    between: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.event, str):
            raise UsageError(f"an exclusion's event must be a name, got {self.event!r}")
        between = None if self.between is None else tuple(self.between)
        set_fields(self, where=_text_or_none(self.where, "an exclusion's where filter"),
             between=between)

    @classmethod
    def of(cls, value: Any) -> Exclusion:
        if isinstance(value, Exclusion):
            return value
        if isinstance(value, str):
            return cls(value)
        if isinstance(value, Mapping) and isinstance(value.get("event"), str):
            unknown = set(value) - {"event", "where", "between"}
            if unknown:
                raise UsageError(f"exclusion: unknown key(s) {sorted(unknown)}; "
                                 "use event, where, between")
            return cls(value["event"], value.get("where"), value.get("between"))
        raise UsageError("exclusion: expected an event name or {'event': ..., 'between': [i, j]}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.event}
        if self.where is not None:
            out["where"] = self.where
        if self.between is not None:
            out["between"] = list(self.between)
        return out


def _window_text(window: Any) -> str:
    if isinstance(window, dt.timedelta):
        return f"{int(window.total_seconds())}s"
    if not isinstance(window, str):
        raise UsageError(f"bad duration {window!r}: give text such as 1d or '30 minutes'")
    parse_duration(window)
    return window


@dataclasses.dataclass(frozen=True)
class FunnelQuery(Query):
    """Users reaching each of ``steps`` within ``window`` of their first step in ``range``
    (None: the store's first to last day), see docs/analytics.md (Funnels).

    ``segment``: only its members count; ``compare``: one funnel per saved segment, side
    by side; ``strict_order``/``dedup``: the strict-order and step-deduplication modes.
    Saved funnels are this query's JSON.
    """

    kind: ClassVar[str] = "funnel"
    steps: tuple[Step, ...]
    window: str = "1d"
    range: DateRange | None = None
    strict: bool = False
    order: str = "ordered"
    exclusions: tuple[Exclusion, ...] = ()
    hold: str | None = None
    segment: str | None = None
    compare: tuple[str, ...] = ()
    strict_order: bool = False
    dedup: bool = False

    def __post_init__(self) -> None:
        steps = self.steps
        if isinstance(steps, str | Step | Mapping):
            steps = [steps]
        parsed = tuple(Step.of(s, f"step {i + 1}") for i, s in enumerate(steps or []))
        if not parsed:
            raise UsageError("a funnel needs at least one step")
        if self.order not in ORDERS:
            raise UsageError(f"bad order {self.order!r}: use ordered or any")
        set_fields(self, steps=parsed, window=_window_text(self.window), strict=bool(self.strict),
             exclusions=tuple(Exclusion.of(x) for x in self.exclusions or ()),
             compare=names(self.compare, "compare"),
             segment=self.segment or None, hold=self.hold or None,
             strict_order=bool(self.strict_order), dedup=bool(self.dedup))

    @property
    def step_values(self) -> list[Any]:
        """Steps as the funnel functions take them (names, or event/where dicts)."""
        return [s.event if s.where is None else s.to_dict() for s in self.steps]

    @property
    def exclusion_values(self) -> list[dict[str, Any]]:
        return [x.to_dict() for x in self.exclusions]

    @classmethod
    def _decode(cls, body: dict[str, Any]) -> dict[str, Any]:
        out = super()._decode(body)
        out["steps"] = tuple(out.get("steps") or ())
        out["exclusions"] = tuple(out.get("exclusions") or ())
        out["compare"] = tuple(out.get("compare") or ())
        return out

    @classmethod
    def from_saved(cls, spec: Mapping[str, Any]) -> FunnelQuery:
        """A saved funnel: this query's JSON, or the dashboard's earlier format
        (``start``/``end`` at the top, no ``kind``)."""
        if "kind" in spec:
            return cls.from_dict(spec)
        body = dict(spec)
        start, end = body.pop("start", None), body.pop("end", None)
        if start is not None and end is not None:
            body["range"] = {"start": start, "end": end}
        keep = {f.name for f in dataclasses.fields(cls)}
        return cls.from_dict({k: v for k, v in body.items() if k in keep})


@dataclasses.dataclass(frozen=True)
class FunnelTrendQuery(Query):
    """Conversion of ``funnel`` per ``every`` period of entry."""

    kind: ClassVar[str] = "funnel_trend"
    funnel: FunnelQuery
    every: Period = Period.DAY

    def __post_init__(self) -> None:
        set_fields(self, every=Period.parse(self.every))

    @classmethod
    def _decode(cls, body: dict[str, Any]) -> dict[str, Any]:
        out = dict(body)
        if isinstance(out.get("funnel"), Mapping):
            out["funnel"] = FunnelQuery.from_dict(out["funnel"])
        return out


# --------------------------------------------------------------------------- event reports
@dataclasses.dataclass(frozen=True)
class EventQuery(Query):
    """Events and distinct users of ``events`` per ``every`` period of ``range``.

    ``segment``: only its members' events; ``compare``: a row group per saved segment;
    ``by``: a row group per value of an event property (top ``top``, the rest "other").
    """

    kind: ClassVar[str] = "events"
    events: tuple[str, ...]
    range: DateRange | None = None
    every: Period = Period.DAY
    segment: str | None = None
    compare: tuple[str, ...] = ()
    by: str | None = None
    top: int = 10
    where: str | None = None

    def __post_init__(self) -> None:
        events = names(self.events, "events")
        if not events:
            raise UsageError("an event report needs at least one event")
        if self.range is None:
            raise UsageError("an event report needs a range: give start and end dates")
        if self.by is not None and self.compare:
            raise UsageError("break down by segments or by a property, not both")
        set_fields(self, events=events, every=Period.parse(self.every),
             compare=names(self.compare, "compare"), segment=self.segment or None,
             top=_positive_int(self.top, "top"),
             where=_text_or_none(self.where, "the where filter"))

    @classmethod
    def _decode(cls, body: dict[str, Any]) -> dict[str, Any]:
        out = super()._decode(body)
        out["events"] = tuple(out.get("events") or ())
        out["compare"] = tuple(out.get("compare") or ())
        return out


# --------------------------------------------------------------------------- retention
MAX_RETENTION_PERIODS = 400
RETENTION_STEPS = ("day", "week", "month")


def _event_name(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{what} must be an event name, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class RetentionQuery(Query):
    """Cohorts by the period of ``start_event`` (or of entering the saved segment
    ``entered``) and the users of each who did ``return_event`` in each of the
    ``periods`` periods after (docs/analytics.md, Retention).

    ``recurring``: a cohort per period the user did the start event in (else only the
    first time ever); ``on_or_after``: retained in period k = came back in k or later;
    ``segment``: only its members; ``compare``: one cohort table per saved segment.
    """

    kind: ClassVar[str] = "retention"
    start_event: str | None = None
    return_event: str | None = None
    range: DateRange | None = None
    every: Period = Period.WEEK
    periods: int = 8
    recurring: bool = False
    on_or_after: bool = False
    entered: str | None = None
    segment: str | None = None
    compare: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        start = _event_name(self.start_event, "the start event")
        entered = _text_or_none(self.entered, "the entered segment")
        if (start is None) == (entered is None):
            raise UsageError("retention: give a start event or a segment entered, not both")
        ret = _event_name(self.return_event, "the return event")
        if ret is None:
            raise UsageError("retention: give the return event")
        if self.range is None:
            raise UsageError("retention needs a range: give start and end dates")
        periods = _positive_int(self.periods, "periods")
        if periods > MAX_RETENTION_PERIODS:
            raise UsageError(f"periods must be at most {MAX_RETENTION_PERIODS}, got {periods}")
        set_fields(self, start_event=start, return_event=ret, entered=entered, periods=periods,
             every=Period.parse(self.every, RETENTION_STEPS), recurring=bool(self.recurring),
             on_or_after=bool(self.on_or_after), segment=self.segment or None,
             compare=names(self.compare, "compare"))

    @property
    def args(self) -> dict[str, Any]:
        """Keyword arguments of :func:`segcore.analytics.retention.retention` (and of its SQL
        counterpart)."""
        return {"return_event": self.return_event, "every": self.every, "periods": self.periods,
                "start": self.range.start, "end": self.range.end,
                "start_event": self.start_event, "entered": self.entered,
                "recurring": self.recurring, "on_or_after": self.on_or_after,
                "segment": self.segment, "segments": list(self.compare) or None}

    @classmethod
    def _decode(cls, body: dict[str, Any]) -> dict[str, Any]:
        out = super()._decode(body)
        out["compare"] = tuple(out.get("compare") or ())
        return out


# --------------------------------------------------------------------------- comparisons, lookups
@dataclasses.dataclass(frozen=True)
class CompareQuery(Query):
    """Sizes of saved ``segments`` at every point of one ``range``, with who entered and
    exited and the share of all users (segment by segment, one chart)."""

    kind: ClassVar[str] = "compare"
    segments: tuple[str, ...]
    range: DateRange | None = None
    every: Period = Period.DAY

    def __post_init__(self) -> None:
        segments = names(self.segments, "segments")
        if not segments:
            raise UsageError("compare: choose at least one segment")
        if self.range is None:
            raise UsageError("a comparison needs a start and an end date")
        set_fields(self, segments=segments, every=Period.parse(self.every))

    @classmethod
    def _decode(cls, body: dict[str, Any]) -> dict[str, Any]:
        out = super()._decode(body)
        out["segments"] = tuple(out.get("segments") or ())
        return out


@dataclasses.dataclass(frozen=True)
class EventPeriodsQuery(Query):
    """One ``event`` per ``every`` period of ``range`` (``segment``: only its members):
    the shape lifecycle and stickiness share (:attr:`kind` names which)."""

    event: str
    range: DateRange | None = None
    every: Period = Period.WEEK
    segment: str | None = None

    def __post_init__(self) -> None:
        if _event_name(self.event, "the event") is None:
            raise UsageError(f"{self.kind}: give the event")
        if self.range is None:
            raise UsageError(f"{self.kind} needs a range: give start and end dates")
        set_fields(self, every=Period.parse(self.every, RETENTION_STEPS), segment=self.segment or None)

    @property
    def args(self) -> dict[str, Any]:
        """Keyword arguments of the function of :mod:`segcore.analytics.retention` named
        like :attr:`kind`."""
        return {"event": self.event, "every": self.every, "start": self.range.start,
                "end": self.range.end, "segment": self.segment}


@dataclasses.dataclass(frozen=True)
class LifecycleQuery(EventPeriodsQuery):
    """New, returning, resurrecting and dormant users of ``event`` per ``every`` period of
    ``range`` (``segment``: only its members)."""

    kind: ClassVar[str] = "lifecycle"


@dataclasses.dataclass(frozen=True)
class StickinessQuery(EventPeriodsQuery):
    """Users of ``event`` by the number of distinct days they did it in each ``every``
    period of ``range`` (``segment``: only its members)."""

    kind: ClassVar[str] = "stickiness"


@dataclasses.dataclass(frozen=True)
class ValuesQuery(Query):
    """The ``top`` values of user attribute ``column`` (or, with ``event``, of that event's
    property) with their counts: the builder's suggestions."""

    kind: ClassVar[str] = "values"
    column: str
    event: str | None = None
    top: int = 10

    def __post_init__(self) -> None:
        if not isinstance(self.column, str) or not self.column:
            raise UsageError("values: give a column name")
        set_fields(self, event=self.event or None, top=_positive_int(self.top, "top"))


@dataclasses.dataclass(frozen=True)
class UserSearchQuery(Query):
    """Users whose id is ``text`` or whose email or name contains it (at most ``limit``)."""

    kind: ClassVar[str] = "user_search"
    text: str
    limit: int = 20

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or not self.text.strip():
            raise UsageError("type a user id, an email or a name")
        set_fields(self, text=self.text.strip(), limit=_positive_int(self.limit, "limit"))
