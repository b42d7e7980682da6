"""Timestamps of incoming files to ``Datetime("us", "UTC")``.

Accepted (docs/rules.md section 1: the store keeps UTC microseconds):

- ISO 8601 with any UTC offset (``+02:00``, ``+0200``, ``Z``), with ``T`` or a space,
  with or without seconds and fractions; naive values are taken as UTC; a date alone
  is midnight UTC. These forms may be mixed within one column.
- Epoch numbers: seconds, milliseconds or microseconds (told apart by magnitude:
  above 1e14 microseconds, above 1e11 milliseconds, else seconds); numbers below 1e8
  are refused (spreadsheet serial dates, counters). A column of 8-digit numbers that
  all read as ``YYYYMMDD`` dates is taken as dates.
- Other common layouts (``12/1/2010 8:26``, month first as in the UCI Online Retail
  export, then day first, ``31.12.2025``, ``2025/12/31``): the first layout of
  :data:`OTHER_FORMATS` that parses every non-NULL value of the column is used.
- Parquet/JSON values that already are dates or datetimes (naive = UTC).

Naive values (no offset: text without one, dates, naive datetimes; never epoch numbers)
are UTC unless the import names a source time zone (``--source-tz``,
:func:`source_zone`): then they are wall-clock times there, converted by
:func:`segcore.lang.dates.localize`'s rule -- an ambiguous time (clocks went back, it
happened twice) is its first occurrence; a nonexistent one (clocks went forward) is
moved forward by the length of the gap -- and both are counted.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass

import polars as pl

from segcore.lang.dates import check_zone

UTC_US = pl.Datetime("us", "UTC")

# Tried in order on the values still unparsed (``%#z`` takes Z, +02, +0200, +02:00).
FAST_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%#z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d",
)
# After normalising the text (``T`` separator, ``UTC``/``GMT`` suffix, spaced offsets).
ISO_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M%z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
)
OTHER_FORMATS = (
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%d-%b-%Y %H:%M:%S",
    "%d-%b-%Y",
)
_NUMBER = r"^-?\d+(\.\d+)?$"


def _epoch(num: pl.Expr) -> pl.Expr:
    """Epoch seconds/millis/micros (by magnitude) to UTC microseconds.

    Numbers below 1e8 (before 1973-03-03 as seconds) are refused (NULL): they are far
    more likely spreadsheet serial dates or counters than event times.
    """
    x = num.cast(pl.Float64)
    x = pl.when(x >= 1e8).then(x)
    scale = pl.when(x > 1e14).then(1.0).when(x > 1e11).then(1e3).otherwise(1e6)
    micros = (x * scale).round(0).cast(pl.Int64, strict=False)  # beyond int64: NULL, refused
    return micros.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def _normalise(s: pl.Series) -> pl.Series:
    return (
        s.str.replace(r"^(\d{4}-\d{2}-\d{2}) +(\d)", "${1}T${2}")
        .str.replace(r"(?i)\s*(Z|UTC|GMT)$", "+00:00")
        .str.replace(r"\s+([+-]\d{2}:?\d{2})$", "${1}")
    )


def _fill(values: pl.Series, result: pl.Series | None, formats: tuple[str, ...]) -> pl.Series:
    """Parse ``values`` with each format in turn, only where still unparsed."""
    for fmt in formats:  # ok-loop: a few candidate formats, each vectorised
        if result is None:
            result = _parse(values, fmt)
            continue
        todo = (result.is_null() & values.is_not_null()).arg_true()
        if todo.is_empty():
            break
        result = result.scatter(todo, _parse(values.gather(todo), fmt))
    return result


def _parse(values: pl.Series, fmt: str) -> pl.Series:
    return values.str.to_datetime(fmt, strict=False, time_unit="us", time_zone="UTC")


def _parse_expr(s: pl.Expr, fmt: str) -> pl.Expr:
    return s.str.to_datetime(fmt, strict=False, time_unit="us", time_zone="UTC")


@dataclass
class SourceZone:
    """The zone of an import's naive timestamps and how many of them fell on a clock
    change: ``ambiguous`` (taken as the first occurrence), ``nonexistent`` (moved
    forward by the gap)."""

    name: str
    ambiguous: int = 0
    nonexistent: int = 0


_SOURCE: contextvars.ContextVar[SourceZone | None] = contextvars.ContextVar("source_zone",
                                                                           default=None)


@contextlib.contextmanager
def source_zone(tz: str | None) -> Iterator[SourceZone | None]:
    """Parse naive timestamps as wall-clock times in ``tz`` under the ``with`` (None or
    UTC: as UTC); yields the counts."""
    zone = None if tz is None or check_zone(tz) == "UTC" else SourceZone(check_zone(tz))
    token = _SOURCE.set(zone)
    try:
        yield zone
    finally:
        _SOURCE.reset(token)


# an offset after a time of day: Z, UTC, GMT, +02, +0200, +02:00
_OFFSET = r"(?i)\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*(z|utc|gmt|[+-]\d{2}(:?\d{2})?)$"


def _naive(values: pl.Series) -> pl.Series:
    """Which values carry no offset (wall-clock times)."""
    dtype = values.dtype
    if isinstance(dtype, pl.Datetime):
        return pl.Series([dtype.time_zone is None] * len(values))
    if dtype == pl.Date:
        return pl.Series([True] * len(values))
    if dtype.is_numeric() or dtype == pl.Null:
        return pl.Series([False] * len(values))
    text = values.cast(pl.String).str.strip_chars()
    return ~text.str.contains(_OFFSET).fill_null(True)


def _localize(parsed: pl.Series, naive: pl.Series, zone: SourceZone) -> pl.Series:
    """Naive values read as UTC -> the same wall-clock times in ``zone``, counted."""
    day = pl.duration(days=1)
    wall = pl.col("t").dt.replace_time_zone(None)

    def local(e: pl.Expr, ambiguous: str) -> pl.Expr:
        return e.dt.replace_time_zone(zone.name, ambiguous=ambiguous, non_existent="null")

    frame = pl.DataFrame({"t": parsed, "n": naive}).with_columns(
        local(wall, "earliest").alias("first"), local(wall, "latest").alias("last"),
        # a skipped time: 24 hours after the same wall time the day before (fold=0)
        (local(wall - day, "earliest") + day).alias("shifted"))
    is_naive = pl.col("n") & pl.col("t").is_not_null()
    out = frame.select(
        pl.when(is_naive)
        .then(pl.coalesce("first", "shifted").dt.convert_time_zone("UTC"))
        .otherwise(pl.col("t")).alias("v"),
        (is_naive & (pl.col("first") != pl.col("last"))).sum().alias("ambiguous"),
        (is_naive & pl.col("first").is_null()).sum().alias("nonexistent"),
    )
    zone.ambiguous += int(out["ambiguous"][0])
    zone.nonexistent += int(out["nonexistent"][0])
    return out["v"].alias(parsed.name).cast(UTC_US)


def parse_timestamps(values: pl.Series) -> pl.Series:
    """Parse a column to ``Datetime("us", "UTC")``; unparseable values become NULL.

    Naive values are UTC, or wall-clock times of the :func:`source_zone` in force. The
    caller compares NULLs in the result with non-NULL inputs to name bad values.
    """
    parsed = _parse_utc(values)
    zone = _SOURCE.get()
    if zone is None:
        return parsed
    return _localize(parsed, _naive(values), zone)


def _parse_utc(values: pl.Series) -> pl.Series:
    dtype = values.dtype
    frame = values.to_frame("v")
    if isinstance(dtype, pl.Datetime):
        expr = pl.col("v")
        expr = (
            expr.dt.replace_time_zone("UTC")
            if dtype.time_zone is None
            else expr.dt.convert_time_zone("UTC")
        )
        return frame.select(expr.dt.cast_time_unit("us")).to_series().cast(UTC_US)
    if dtype == pl.Date:
        return frame.select(
            pl.col("v").cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        ).to_series()
    if dtype.is_numeric():
        return frame.select(_epoch(pl.col("v"))).to_series()
    if dtype == pl.Null:
        return pl.Series(values.name, [None] * len(values), dtype=UTC_US)
    s = pl.col("v").cast(pl.String).str.strip_chars()
    present = frame.select(s.is_not_null().sum()).item()
    numeric = frame.select((s.str.contains(_NUMBER) | s.is_null()).all()).item()
    if present and numeric:
        compact = frame.select((s.str.contains(r"^\d{8}$") | s.is_null()).all()).item()
        if compact:  # 20260131: a date written without separators
            days = frame.select(_parse_expr(s, "%Y%m%d")).to_series()
            if days.is_not_null().sum() == present:
                return days
        return frame.select(_epoch(s)).to_series()
    text = frame.select(s).to_series()
    iso = _fill(text, None, FAST_FORMATS)
    if iso.is_null().sum() > text.is_null().sum():
        todo = (iso.is_null() & text.is_not_null()).arg_true()
        iso = iso.scatter(todo, _fill(_normalise(text.gather(todo)), None, ISO_FORMATS))
    iso_ok = iso.is_not_null().sum()
    if iso_ok == present:
        return iso
    best, best_ok = iso, iso_ok
    for fmt in OTHER_FORMATS:  # ok-loop: a dozen candidate formats, not rows
        parsed = frame.select(_parse_expr(s, fmt)).to_series()
        ok = parsed.is_not_null().sum()
        if ok == present:
            return parsed
        if ok > best_ok:
            best, best_ok = parsed, ok
    return best
