"""Small reusable pieces of the dashboard: number formats, error boxes, downloads."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import polars as pl
import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import RerunException, StopException

from segcore.errors import ConflictError, RuleError, SegcoreError


def fmt_int(n: int | float | None) -> str:
    """``1234`` -> ``'1,234'`` (``'-'`` for None)."""
    return "-" if n is None else f"{int(round(n)):,}"


def fmt_pct(x: float | None, digits: int = 1) -> str:
    """``0.1234`` -> ``'12.3%'`` (``'-'`` for None)."""
    return "-" if x is None else f"{100 * x:.{digits}f}%"


def pct_expr(column: str, digits: int = 1) -> pl.Expr:
    """A share column as text ``'12.3%'`` (a Polars expression)."""
    return ((pl.col(column) * 100).round(digits).cast(pl.String) + "%").alias(column)


def fmt_seconds(s: float | None) -> str:
    """A duration in words: ``'42s'``, ``'3.5m'``, ``'2.1h'``, ``'1.5d'``."""
    if s is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s / size:.1f}{unit}"
    return f"{s:.0f}s"


def friendly(err: Exception) -> str:
    """The message shown for a segcore error."""
    if isinstance(err, ConflictError):
        return f"Someone else changed this segment meanwhile: {err}"
    return str(err)


def rule_error(text: str, err: RuleError) -> None:
    """Show a rule error with its position and the offending line marked."""
    if err.line is None or err.col is None:
        st.error(err.message)
        return
    st.error(f"Line {err.line}, column {err.col}: {err.message}")
    lines = text.splitlines() or [""]
    if 1 <= err.line <= len(lines):
        src = lines[err.line - 1]
        st.code(f"{src}\n{' ' * max(err.col - 1, 0)}^", language=None)


@contextmanager
def guard(what: str = "") -> Iterator[None]:
    """Turn any exception of the block into a friendly message (never a traceback)."""
    try:
        yield
    except (RerunException, StopException):
        raise
    except SegcoreError as err:
        st.error(friendly(err))
    except Exception as err:  # noqa: BLE001 - the user never sees a traceback
        prefix = f"{what}: " if what else ""
        st.error(f"Something went wrong: {prefix}{type(err).__name__}: {err}")


def csv_bytes(df: pl.DataFrame) -> bytes:
    """A frame as CSV (list columns joined with ``|``)."""
    lists = [c for c, t in df.schema.items() if isinstance(t, pl.List)]
    if lists:
        df = df.with_columns(pl.col(lists).cast(pl.List(pl.String)).list.join("|"))
    return df.write_csv().encode()


def parquet_bytes(df: pl.DataFrame) -> bytes:
    """A frame as Parquet bytes."""
    buf = io.BytesIO()
    df.write_parquet(buf)
    return buf.getvalue()


def download(container, label: str, make: Callable[[], bytes], **kwargs: Any) -> None:
    """A download button whose file is generated on click and served once.

    ``make`` runs only when the button is clicked; the file's URL then works for one fetch
    (``dashboard.exposure.serve_downloads_once``). Where that protection could not be set
    up, the button is disabled rather than serving data on a reusable URL.
    """
    safe = bool(st.session_state.get("downloads_ok", False))
    container.download_button(
        label,
        make,
        on_click="ignore",
        disabled=not safe,
        help=None if safe else "Downloads are off: this Streamlit version serves them unprotected.",
        **kwargs,
    )


def segment_names() -> list[str]:
    """Names of the saved segments, sorted."""
    from dashboard.state import store

    return [s.name for s in store().catalog.list()]


def week_note(start: Any, end: Any, every: str) -> str | None:
    """What a weekly view of ``start..end`` leaves out: its points are Sundays (the end of
    each ISO week), so the days after the last Sunday are not shown; None if nothing is."""
    import datetime as dt

    from segcore.lang.dates import day_points

    if every != "week":
        return None
    last = day_points(start, end, "week")[-1]
    end_day = end if isinstance(end, dt.date) else dt.date.fromisoformat(str(end))
    if last == end_day:
        return None
    if last > end_day:
        return (f"Weekly points are Sundays: the range holds no full week, so the point "
                f"shown is the week ending on Sunday {last} (after {end_day}).")
    return (f"Weekly points are Sundays: the chart ends on Sunday {last}, the last full week "
            f"of the range; {last + dt.timedelta(days=1)} to {end_day} (a partial week) is "
            "not shown. Pick the day step to see it.")


def clicked_row(key: str) -> int | None:
    """The row index selected in the ``st.dataframe`` of ``key`` (``on_select``), if any."""
    sel = st.session_state.get(key)
    rows = getattr(getattr(sel, "selection", None), "rows", None)
    if rows is None and isinstance(sel, dict):
        rows = sel.get("selection", {}).get("rows")
    return rows[0] if rows else None


def partial_periods(df: pl.DataFrame, column: str, start: Any, end: Any,
                    every: str) -> pl.DataFrame:
    """``df`` with a ``partial`` column: True for a weekly period (named by its Monday)
    that the range ``start..end`` cuts (its first or last week)."""
    import datetime as dt

    if every != "week":
        return df.with_columns(pl.lit(False).alias("partial"))
    first, last = (d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d))
                   for d in (start, end))
    day = pl.col(column).cast(pl.Date)
    return df.with_columns(
        ((day < pl.lit(first)) | (day + pl.duration(days=6) > pl.lit(last))).alias("partial")
    )
