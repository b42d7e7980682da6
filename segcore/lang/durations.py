"""Durations: the one parser of ``'30 days'``, ``10m``, ``1d``, ``2w`` (docs/rules.md).

Rule intervals (``within => '30 days'``), funnel windows, goal windows and the
dashboard's duration widgets all read durations here. Months, quarters and years
have no fixed length and are refused.
"""

from __future__ import annotations

import datetime as dt
import re

from segcore.errors import RuleError, UsageError

US = 1_000_000
MAX_US = 100 * 366 * 86_400 * US  # a century

UNIT_US: dict[str, int] = {
    "microsecond": 1, "millisecond": 1_000, "second": US, "minute": 60 * US,
    "hour": 3_600 * US, "day": 86_400 * US, "week": 604_800 * US,
}
ALIASES: dict[str, str] = {
    "s": "second", "sec": "second", "secs": "second", "m": "minute", "min": "minute",
    "mins": "minute", "h": "hour", "hr": "hour", "hrs": "hour", "d": "day", "w": "week",
    "ms": "millisecond", "us": "microsecond",
}
_TEXT = re.compile(r"\s*(\d+(?:\.\d+)?)?\s*([A-Za-z]+)\s*")


class DurationError(ValueError):
    """Why a duration text is not one (the callers add what and where); empty when it
    is not shaped like a number and a unit (callers give their own example)."""


def unit_of(word: str) -> str | None:
    """``'mins'`` -> ``'minute'`` (None: not a unit)."""
    unit = ALIASES.get(word.lower(), word.lower())
    if unit.endswith("s") and unit[:-1] in UNIT_US:
        unit = unit[:-1]
    return unit if unit in UNIT_US else None


def microseconds(text: str, *, number_required: bool = False) -> float:
    """Microseconds of a duration text (may be fractional), or DurationError."""
    m = _TEXT.fullmatch(str(text))
    if not m or (number_required and m.group(1) is None):
        raise DurationError("")
    word = m.group(2).lower()
    unit = unit_of(word)
    if unit is None:
        if word.rstrip("s") in ("month", "year", "quarter"):
            raise DurationError(f"{word.rstrip('s')}s have no fixed length; use days or weeks")
        raise DurationError(
            f"unknown unit {m.group(2)!r} (use second, minute, hour, day or week)")
    us = (float(m.group(1)) if m.group(1) else 1.0) * UNIT_US[unit]
    if us > MAX_US:
        raise DurationError("longer than 100 years")
    return us


def duration_us(text: str, where: str = "interval") -> int:
    """A rule interval in whole microseconds; a bad one is a RuleError naming ``where``."""
    try:
        us = microseconds(text)
    except DurationError as exc:
        reason = str(exc) or "write a number and a unit, e.g. '30 days'"
        raise RuleError(f"bad {where} {text!r}: {reason}") from None
    if us != int(us):
        raise RuleError(f"bad {where} {text!r}: finer than a microsecond")
    return int(us)


def parse_duration(text: str | dt.timedelta) -> dt.timedelta:
    """A window given on the command line or in a query (``30m``, ``'10 minutes'``).

    >>> parse_duration("10 minutes")
    datetime.timedelta(seconds=600)
    """
    if isinstance(text, dt.timedelta):
        return text
    try:
        us = microseconds(str(text), number_required=True)
    except DurationError as exc:
        reason = str(exc) or "write a number and a unit, e.g. 30m, 12h, 1d, 2w or '10 minutes'"
        raise UsageError(f"bad duration {text!r}: {reason}") from None
    return dt.timedelta(microseconds=us)


def split(us: int | None, units: tuple[str, ...] = ("day", "hour", "minute")) -> tuple[int, str]:
    """``(n, unit)`` with the largest of ``units`` that divides ``us`` (for widgets);
    ``(0, units[0])`` for nothing; DurationError when none divides it."""
    if not us:
        return 0, units[0]
    for unit in units:
        if us % UNIT_US[unit] == 0:
            return us // UNIT_US[unit], unit
    raise DurationError(f"{us} microseconds is not a whole number of {', '.join(units)}")


def text(n: int, unit: str) -> str:
    """``(3, 'day')`` -> ``'3 days'``."""
    return f"{n} {unit}{'' if n == 1 else 's'}"
