"""The columns of Parquet files, read from their footers once per file version.

A footer is read again only when its file's size or modification time changes, so a
connected dataset of many files, or a store's event files, costs one footer read per
file per process instead of one per query.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import polars as pl

from segcore.errors import StoreError

_MAX_FILES = 16_384  # footers kept per process; more files than this are read again
_footers: dict[tuple[str, int, int], pl.Schema] = {}
_lock = threading.Lock()


def file_schema(path: Path) -> pl.Schema:
    """The columns of one Parquet file (one clear error if it cannot be read)."""
    try:
        st = os.stat(path)
        key = (str(path), st.st_mtime_ns, st.st_size)
        found = _footers.get(key)
        if found is None:
            found = pl.scan_parquet(path, glob=False).collect_schema()  # '[' is no glob
            with _lock:
                if len(_footers) >= _MAX_FILES:
                    _footers.clear()
                _footers[key] = found
    except Exception as exc:  # a missing, truncated or non-Parquet file
        raise StoreError(f"cannot read {path}: {exc}") from None
    return found


def union_schema(files: list[Path]) -> dict[str, pl.DataType]:
    """The columns of all ``files`` in order of first appearance, each with the first type
    that is not Null (a column that is all NULL in one file takes another file's type)."""
    schema: dict[str, pl.DataType] = {}
    for f in files:  # ok-loop: one footer per file
        for name, dtype in file_schema(f).items():  # ok-loop: its columns
            if name not in schema or schema[name] == pl.Null:
                schema[name] = dtype
    return schema
