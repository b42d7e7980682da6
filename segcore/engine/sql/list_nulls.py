"""Which rows of a Parquet file hold a NULL list: the companion ClickHouse needs.

ClickHouse has no NULL arrays and its Parquet reader turns a NULL list into ``[]``,
so the compiled ClickHouse SQL cannot see the difference by itself. For each
(Parquet file, list column) with NULL lists, segcore writes a small companion
Parquet file of their row numbers (column ``sc_row``, the file's ``_row_number``),
read by Polars, and the SQL tests ``_row_number IN (SELECT sc_row FROM file(...))``.

Companions live under ``<home>/.cache/list-nulls/`` (a temporary folder when the
store is read-only), named by a hash of the file's path, size and modification time
and of the column, so a changed file never meets a stale companion. They are
written atomically; concurrent writers write the same bytes.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import polars as pl

from segcore.errors import StoreError
from segcore.store.files import write_parquet_atomic

ROW = "sc_row"
_NULL_COUNTS: dict[tuple, dict[str, int]] = {}


def _key(f: Path) -> tuple:
    st = f.stat()
    return (str(f.resolve()), st.st_size, st.st_mtime_ns)


def null_counts(f: Path, columns: list[str]) -> dict[str, int]:
    """Number of NULL values of ``columns`` in Parquet file ``f`` (cached per file version)."""
    key = (*_key(f), tuple(columns))
    if key not in _NULL_COUNTS:
        row = pl.scan_parquet(f, glob=False).select(pl.col(columns).null_count()).collect()
        _NULL_COUNTS[key] = {c: int(row[c][0]) for c in columns}
    return _NULL_COUNTS[key]


def null_rows_file(home: Path, f: Path, column: str) -> Path | None:
    """The companion file of the rows of ``f`` whose list ``column`` is NULL (None if none)."""
    if not null_counts(f, [column])[column]:
        return None
    digest = hashlib.sha1(repr((*_key(f), column)).encode()).hexdigest()[:24]
    name = f"{digest}.parquet"
    folders = (
        Path(home) / ".cache" / "list-nulls",
        Path(tempfile.gettempdir()) / "segcore-list-nulls",
    )
    for folder in folders:
        target = folder / name
        if target.exists():
            return target.resolve()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            rows = (
                pl.scan_parquet(f, glob=False)
                .select(pl.col(column).is_null())
                .with_row_index(ROW)
                .filter(pl.col(column))
                .select(pl.col(ROW).cast(pl.UInt64))
                .collect()
            )
            write_parquet_atomic(rows, target)
            return target.resolve()
        except (OSError, StoreError):
            continue  # a read-only store: the temporary folder
    raise StoreError(f"cannot write the list-NULL companion of {f} (no writable folder)")
