"""Instants and dates as docs/rules.md defines them (all UTC); durations are in
:mod:`segcore.lang.durations`."""

from __future__ import annotations

import datetime as dt
import re

from segcore.errors import UsageError

UTC = dt.timezone.utc
# Dates and instants outside these years are refused: windows, steps and ranges add and
# subtract up to a century, and Python dates overflow at years 1 and 9999.
MIN_YEAR, MAX_YEAR = 1000, 9000

def parse_date(value: str | dt.date | dt.datetime, what: str = "date") -> dt.date:
    """Parse an ISO date (``2026-06-01``); datetimes give their UTC date."""
    if isinstance(value, dt.datetime):
        day = to_utc(value).date()
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
    """The instant that ends a UTC day: the next day's midnight."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=UTC)


def resolve_as_of(value: str | dt.date | dt.datetime | None = None) -> dt.datetime:
    """The evaluation instant T of docs/rules.md section 2.

    A date means the end of that UTC day; a timestamp means exactly that instant;
    ``None`` means now.
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


def today_at(instant: dt.datetime) -> dt.date:
    """``today()`` at T: the UTC date of the instant just before T."""
    return (to_utc(instant) - dt.timedelta(microseconds=1)).date()


def day_points(start: str | dt.date, end: str | dt.date, every: str = "day") -> list[dt.date]:
    """Dates of the points of a range: every day, or every ISO week's Sunday.

    Weekly points are the Sundays in ``[start, end]``; when the range holds no Sunday,
    the week containing ``end`` is represented by its Sunday anyway.
    """
    a, b = parse_date(start, "start date"), parse_date(end, "end date")
    if b < a:
        raise UsageError(f"the range ends ({b}) before it starts ({a})")
    if every == "day":
        return [a + dt.timedelta(days=i) for i in range((b - a).days + 1)]
    if every == "week":
        first = a + dt.timedelta(days=(6 - a.weekday()))
        points = []
        d = first
        while d <= b:
            points.append(d)
            d += dt.timedelta(days=7)
        return points or [first]
    raise UsageError(f"bad step {every!r}: use day or week")
