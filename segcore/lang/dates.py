"""Instants and dates as docs/rules.md defines them; durations are in
:mod:`segcore.lang.durations`.

Instants are UTC-aware datetimes everywhere. Calendar days (a date as-of, ``today()``,
the days and weeks of a report) are days of the *report time zone*
(:class:`ReportZone`, docs/rules.md section 2): UTC unless the store or the request names
an IANA zone. :func:`report_zone` sets it for the code under it (a context variable), so
every engine and analytic reads the same zone from :func:`current_zone`.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass

from segcore.errors import UsageError

UTC = dt.timezone.utc
# Dates and instants outside these years are refused: windows, steps and ranges add and
# subtract up to a century, and Python dates overflow at years 1 and 9999.
MIN_YEAR, MAX_YEAR = 1000, 9000

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def check_zone(name: str) -> str:
    """An IANA time-zone name (``Europe/Berlin``, ``UTC``); anything else is a UsageError."""
    text = str(name).strip() if name is not None else ""
    if text.upper() in ("UTC", "Z", "ETC/UTC"):
        return "UTC"
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"unknown time zone {name!r}: give an IANA name like Europe/Berlin or UTC") from None
    return text


def check_week_start(value: str | int) -> int:
    """``monday``..``sunday`` (or 0..6) -> 0..6; anything else is a UsageError."""
    if isinstance(value, int) and 0 <= value <= 6:
        return value
    text = str(value).strip().lower()
    for i, day in enumerate(WEEKDAYS):
        if text in (day, day[:3]):
            return i
    raise UsageError(f"bad week start {value!r}: use monday .. sunday")


@dataclass(frozen=True)
class ReportZone:
    """The time zone whose calendar days the reports count (IANA ``name``) and the first
    day of its weeks (``week_start``: 0 Monday .. 6 Sunday).

    A local day runs from its midnight to the next one, converted to UTC instants: 24
    hours long, or 23 / 25 (23.5 / 24.5 at Lord Howe) on the days the clocks change. A
    local midnight that does not exist starts the day at the first instant after the gap;
    one that happens twice starts it at the first occurrence.
    """

    name: str = "UTC"
    week_start: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", check_zone(self.name))
        object.__setattr__(self, "week_start", check_week_start(self.week_start))

    @property
    def is_utc(self) -> bool:
        return self.name == "UTC"

    @property
    def tzinfo(self) -> dt.tzinfo:
        return UTC if self.is_utc else zoneinfo.ZoneInfo(self.name)

    def start_of_day(self, day: dt.date) -> dt.datetime:
        """The UTC instant at which local ``day`` begins."""
        return localize(dt.datetime.combine(day, dt.time()), self)

    def end_of_day(self, day: dt.date) -> dt.datetime:
        """The UTC instant that ends local ``day``: the next local midnight."""
        return self.start_of_day(day + dt.timedelta(days=1))

    def local_date(self, instant: dt.datetime) -> dt.date:
        """The local date of an instant (naive instants are UTC)."""
        return to_utc(instant).astimezone(self.tzinfo).date()

    def week_end(self, day: dt.date) -> dt.date:
        """The last day of the week holding ``day``."""
        return day + dt.timedelta(days=(self.week_start + 6 - day.weekday()) % 7)

    def week_first(self, day: dt.date) -> dt.date:
        """The first day of the week holding ``day``."""
        return day - dt.timedelta(days=(day.weekday() - self.week_start) % 7)


UTC_ZONE = ReportZone()
_ZONE: contextvars.ContextVar[ReportZone | None] = contextvars.ContextVar("report_zone",
                                                                         default=None)


def current_zone() -> ReportZone:
    """The report zone in force (UTC unless :func:`report_zone` set one)."""
    return _ZONE.get() or UTC_ZONE


def zone_is_set() -> bool:
    """Has a :func:`report_zone` around the caller set the zone?"""
    return _ZONE.get() is not None


def as_zone(zone: ReportZone | str | None, week_start: str | int | None = None) -> ReportZone:
    """A ReportZone from a zone, a name or None (the zone in force)."""
    if isinstance(zone, ReportZone):
        return zone if week_start is None else ReportZone(zone.name, week_start)
    base = current_zone()
    return ReportZone(base.name if zone is None else zone,
                      base.week_start if week_start is None else week_start)


@contextlib.contextmanager
def report_zone(zone: ReportZone | str | None,
                week_start: str | int | None = None) -> Iterator[ReportZone]:
    """Count calendar days in ``zone`` for the code under the ``with``."""
    chosen = as_zone(zone, week_start)
    token = _ZONE.set(chosen)
    try:
        yield chosen
    finally:
        _ZONE.reset(token)


def localize(naive: dt.datetime, zone: ReportZone | None = None) -> dt.datetime:
    """The UTC instant of a naive local time in ``zone`` (default: the zone in force).

    The one rule for wall-clock times around a clock change (docs/rules.md): an
    ambiguous time (it happens twice, when clocks go back) is its first occurrence;
    a nonexistent time (skipped, when clocks go forward) is moved forward by the length
    of the gap (02:30 on 2026-03-29 in Berlin is 03:30 CEST) -- Python's ``fold=0``.
    """
    zone = zone or current_zone()
    if naive.tzinfo is not None:
        return naive.astimezone(UTC)
    if zone.is_utc:
        return naive.replace(tzinfo=UTC)
    return naive.replace(tzinfo=zone.tzinfo, fold=0).astimezone(UTC)


def parse_date(value: str | dt.date | dt.datetime, what: str = "date") -> dt.date:
    """Parse an ISO date (``2026-06-01``); datetimes give their date in the report zone."""
    if isinstance(value, dt.datetime):
        day = current_zone().local_date(value)
    elif isinstance(value, dt.date):
        day = value
    else:
        try:
            day = dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise UsageError(f"bad {what} {value!r}: expected YYYY-MM-DD") from None
    return _check_year(day, what, value)


def _check_year(day: dt.date, what: str, value: object) -> dt.date:
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise UsageError(
            f"{what} {str(value)!r} is outside the supported years {MIN_YEAR} to {MAX_YEAR}"
        )
    return day


def to_utc(value: dt.datetime) -> dt.datetime:
    """Naive datetimes are taken as UTC; aware ones are converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def end_of_day(day: dt.date) -> dt.datetime:
    """The UTC instant that ends a day of the report zone: the next local midnight."""
    zone = current_zone()
    if zone.is_utc:
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=UTC)
    return zone.end_of_day(day)


def start_of_day(day: dt.date) -> dt.datetime:
    """The UTC instant that begins a day of the report zone: its local midnight."""
    return end_of_day(day - dt.timedelta(days=1))


def resolve_as_of(value: str | dt.date | dt.datetime | None = None) -> dt.datetime:
    """The evaluation instant T of docs/rules.md section 2.

    A date means the end of that day in the report zone; a timestamp means exactly that
    instant (without an offset it is UTC); ``None`` means now.
    """
    if value is None:
        return dt.datetime.now(UTC).replace(microsecond=0)
    if isinstance(value, dt.datetime):
        _check_year(value.date(), "as-of", value)
        return to_utc(value)
    if isinstance(value, dt.date):
        return end_of_day(_check_year(value, "as-of date", value))
    text = str(value).strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return end_of_day(parse_date(text, "as-of date"))
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise UsageError(
            f"bad as-of {value!r}: expected YYYY-MM-DD or an ISO timestamp like 2026-06-01T12:30:00Z"
        ) from None
    _check_year(parsed.date(), "as-of", value)
    return to_utc(parsed)


DEFAULT_AS_OF_RULE = ("now (to the minute), except when the store's last event is on an "
                      "earlier day than today in the report zone: then the end of that day")


@dataclass(frozen=True)
class DefaultAsOf:
    """The instant T used when none is given (:func:`default_as_of`) and why."""

    instant: dt.datetime
    last_event_day: bool  # True: the end of the last event day; False: now

    @property
    def day(self) -> dt.date:
        """The report zone's date of T (the day it ends, for an end of day)."""
        return today_at(self.instant)

    def text(self) -> str:
        """The instant in ISO form (``...Z``), as :func:`resolve_as_of` reads it."""
        return self.instant.isoformat().replace("+00:00", "Z")

    def describe(self) -> str:
        """One line: the instant and which half of the rule chose it."""
        why = ("the end of the last event day: the data ends before today"
               if self.last_event_day else "now")
        return f"{self.text()} ({why}; {current_zone().name})"


def default_as_of(last_event: dt.datetime | None,
                  now: dt.datetime | None = None) -> DefaultAsOf:
    """The default instant T of the CLI and the dashboard: :data:`DEFAULT_AS_OF_RULE`.

    ``last_event``: the store's latest event time (None: no events); ``now``: the clock
    (tests). A sample or exported store thus shows its last day, a live store the present.
    """
    clock = to_utc(now) if now is not None else dt.datetime.now(UTC)
    clock = clock.replace(second=0, microsecond=0)
    zone = current_zone()
    if last_event is not None and zone.local_date(last_event) < zone.local_date(clock):
        return DefaultAsOf(end_of_day(zone.local_date(last_event)), True)
    return DefaultAsOf(clock, False)


def today_at(instant: dt.datetime) -> dt.date:
    """``today()`` at T: the report zone's date of the instant just before T."""
    before = to_utc(instant) - dt.timedelta(microseconds=1)
    zone = current_zone()
    return before.date() if zone.is_utc else zone.local_date(before)


def day_points(start: str | dt.date, end: str | dt.date, every: str = "day") -> list[dt.date]:
    """Dates of the points of a range: every day, or every week's last day.

    Weeks start on the report zone's ``week_start`` (Monday unless configured): weekly
    points are the weeks' last days (Sundays) in ``[start, end]``; when the range holds
    none, the week containing ``end`` is represented by its last day anyway.
    """
    a, b = parse_date(start, "start date"), parse_date(end, "end date")
    if b < a:
        raise UsageError(f"the range ends ({b}) before it starts ({a})")
    if every == "day":
        return [a + dt.timedelta(days=i) for i in range((b - a).days + 1)]
    if every == "week":
        first = current_zone().week_end(a)
        points = []
        d = first
        while d <= b:
            points.append(d)
            d += dt.timedelta(days=7)
        return points or [first]
    raise UsageError(f"bad step {every!r}: use day or week")
