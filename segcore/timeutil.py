"""Instants, dates and durations as RULES.md defines them (all UTC)."""

from __future__ import annotations

import datetime as dt
import re

from segcore.errors import UsageError

UTC = dt.timezone.utc
# Dates and instants outside these years are refused: windows, steps and ranges add and
# subtract up to a century, and Python dates overflow at years 1 and 9999.
MIN_YEAR, MAX_YEAR = 1000, 9000

_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*$")


def parse_duration(text: str | dt.timedelta) -> dt.timedelta:
    """Parse ``30m``, ``12h``, ``1d``, ``2w`` or ``'10 minutes'`` into a timedelta.

    >>> parse_duration("10 minutes")
    datetime.timedelta(seconds=600)
    """
    if isinstance(text, dt.timedelta):
        return text
    m = _DURATION.match(str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise UsageError(
            f"bad duration {text!r}: write a number and a unit, e.g. 30m, 12h, 1d, 2w or '10 minutes'"
        )
    seconds = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if seconds > 100 * 366 * 86400:
        raise UsageError(f"duration {text!r} is longer than 100 years")
    return dt.timedelta(seconds=seconds)


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
    """The evaluation instant T of RULES.md section 2.

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


def naive_utc(instant: dt.datetime) -> dt.datetime:
    """Drop tzinfo after converting to UTC (for literals in Polars/SQL)."""
    return to_utc(instant).replace(tzinfo=None)


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
