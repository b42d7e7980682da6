"""A file's first rows and the column mapping guessed for it (the dashboard's import form).

:func:`guess_mapping` picks, for each store column (``user_id``, ``event``, ``ts``), the
file's column of that name, else the first of its usual names in other tools' exports
(case, spaces, dashes and underscores ignored); a column already named like its target
needs no mapping and none is guessed for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from segcore.ingest.readers import detect_format, read_file

# the usual names of each store column in exports, most specific first
ALIASES: dict[str, tuple[str, ...]] = {
    "user_id": ("userid", "customerid", "distinctid", "uid", "user", "customer", "memberid",
                "accountid", "clientid"),
    "event": ("eventname", "eventtype", "eventaction", "action", "name", "type"),
    "ts": ("timestamp", "time", "eventtime", "eventtimestamp", "datetime", "occurredat",
           "createdat", "invoicedate", "date"),
}


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-.]", "", name).lower()


def guess_mapping(columns: list[str]) -> dict[str, str]:
    """Store column -> the file's column read for it (only where the names differ)."""
    by_norm: dict[str, str] = {}
    for c in columns:  # ok-loop: one per column name
        by_norm.setdefault(_norm(c), c)
    out: dict[str, str] = {}
    for target, names in ALIASES.items():  # ok-loop: three store columns
        if target in columns:
            continue
        found = next((by_norm[n] for n in (_norm(target), *names) if n in by_norm), None)
        if found is not None and found not in out.values():
            out[target] = found
    return out


@dataclass(frozen=True)
class Preview:
    """The file's columns (in order), its first rows and the guessed mapping."""

    columns: list[str]
    rows: pl.DataFrame
    mapping: dict[str, str]


def preview_file(path: str | Path, format: str | None = None, encoding: str = "utf-8",
                 rows: int = 5) -> Preview:
    """The first ``rows`` rows of one import file, read as the import reads it."""
    path = Path(path)
    df, _ = read_file(path, detect_format(path, format), encoding)
    shown = [c for c in df.columns if not c.startswith("\x00")]
    return Preview(shown, df.select(shown).head(rows), guess_mapping(shown))


__all__ = ["ALIASES", "Preview", "guess_mapping", "preview_file"]
