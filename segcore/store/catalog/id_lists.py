"""Lists of user ids given by hand or in a file: parsing, duplicates, unknown ids."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import polars as pl

from segcore.errors import CatalogError
from segcore.store.catalog.schema import EXAMPLES, ID_HEADERS
from segcore.store.ids import id_series


def id_list_series(values: Iterable[Any]) -> pl.Series:
    """Ids as a String Series under the id rule (``segcore.store.ids``), missing ids dropped."""
    if isinstance(values, pl.Series):
        s = values.rename("user_id")
    else:
        s = pl.Series("user_id", list(values), dtype=pl.String, strict=False)
    s = id_series(s)
    return s.filter(s.is_not_null())


def dedup_report(ids: pl.Series) -> tuple[list[str], dict[str, Any]]:
    """Unique ids in first-seen order and a duplicate report."""
    unique = ids.unique(maintain_order=True)
    dup_mask = ids.is_duplicated()
    dup_values = ids.filter(dup_mask).unique(maintain_order=True)
    report = {
        "rows": ids.len(),
        "members": unique.len(),
        "duplicates": ids.len() - unique.len(),
        "duplicate_ids": dup_values.len(),
        "duplicate_examples": dup_values.head(EXAMPLES).to_list(),
    }
    return unique.to_list(), report


def unknown_ids(
    ids: list[str], known_ids: set[str] | pl.Series | None
) -> tuple[int, list[str]] | None:
    """(number, examples) of ``ids`` not among ``known_ids``; None if not asked."""
    if known_ids is None:
        return None
    known = (
        known_ids if isinstance(known_ids, pl.Series)
        else pl.Series(list(known_ids), dtype=pl.String)
    )
    s = pl.Series("user_id", ids, dtype=pl.String)
    missing = s.filter(~s.is_in(known.cast(pl.String).implode()))
    return missing.len(), missing.head(EXAMPLES).to_list()


def read_source(source: Any) -> tuple[str, str]:
    """(text, where) from a path, bytes, text stream or binary stream."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, where = bytes(source), "the uploaded data"
    elif isinstance(source, str) and ("\n" in source or "\r" in source):
        return source.lstrip("\ufeff"), "the pasted text"  # a path has no line break
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CatalogError(f"ids file {path} does not exist") from None
        except IsADirectoryError:
            raise CatalogError(f"ids file {path} is a folder, not a file") from None
        except OSError as exc:
            raise CatalogError(f"cannot read ids file {path}: {exc.strerror or exc}") from None
        where = str(path)
    elif hasattr(source, "read"):
        data = source.read()
        where = getattr(source, "name", None) or "the uploaded data"
        if isinstance(data, str):
            return data.lstrip("\ufeff"), str(where)
    else:
        raise CatalogError(
            f"cannot read ids from a {type(source).__name__}; give a path, bytes or text"
        )
    try:
        return data.decode("utf-8-sig"), str(where)
    except UnicodeDecodeError as exc:
        raise CatalogError(
            f"{where} is not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8 CSV"
        ) from None


def pick_separator(line: str) -> str | None:
    counts = {sep: line.count(sep) for sep in (",", ";", "\t", "|")}
    sep, n = max(counts.items(), key=lambda kv: kv[1])
    return sep if n else None


def norm_header(h: str) -> str:
    return h.strip().strip('"').strip().casefold()


def parse_ids_text(text: str, where: str = "the pasted text") -> tuple[list[str], dict[str, Any]]:
    """Parse user ids from CSV text or a plain list (one id per line).

    Parameters
    ----------
    text
        A CSV with a header (the id column is ``user_id`` or ``id``, any case;
        a single column may have any header), or ids one per line with no header.
    where
        Named in error messages.

    Returns
    -------
    (ids, report)
        ``ids``: the unique ids as strings (leading zeros kept, whitespace
        stripped, empty values skipped), in first-seen order. ``report``:
        ``rows`` (ids read), ``members`` (unique), ``duplicates`` (extra
        occurrences), ``duplicate_ids``, ``duplicate_examples``, ``header``
        (the id column's name, or None for a plain list), ``column``.
    """
    lines = text.splitlines()
    first_idx = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first_idx is None:
        ids, report = dedup_report(pl.Series("user_id", [], dtype=pl.String))
        return ids, {**report, "header": None, "column": None}
    first = lines[first_idx]
    sep = pick_separator(first)
    if sep is None:
        # one column: a header if it is a known id name, or if it has no digit
        # while the values below it do (e.g. "customer" above "00123").
        col = pl.Series("user_id", lines[first_idx:], dtype=pl.String)
        col = col.str.strip_chars().str.strip_chars('"').str.strip_chars()
        head = col[0]
        rest = col.slice(1)
        is_header = norm_header(head) in ID_HEADERS or (
            not any(ch.isdigit() for ch in head) and bool(rest.str.contains(r"\d").any())
        )
        values = rest if is_header else col
        ids, report = dedup_report(id_list_series(values))
        return ids, {
            **report,
            "header": head if is_header else None,
            "column": head if is_header else None,
        }
    try:
        frame = pl.read_csv(
            "\n".join(lines[first_idx:]).encode(),
            separator=sep,
            infer_schema=False,
            truncate_ragged_lines=True,
            empty_string_is_null=False,
        )
    except Exception as exc:  # polars raises several types on malformed CSV
        raise CatalogError(f"cannot read {where} as CSV: {str(exc).splitlines()[0]}") from None
    by_norm = {norm_header(c): c for c in frame.columns}
    column = next((by_norm[h] for h in ID_HEADERS if h in by_norm), None)
    if column is None:
        found = ", ".join(repr(c) for c in frame.columns)
        raise CatalogError(
            f"{where} has no user id column: expected a column named 'user_id' or 'id', "
            f"found {found}"
        )
    ids, report = dedup_report(id_list_series(frame.get_column(column)))
    return ids, {**report, "header": column, "column": column}


def parse_ids_csv(source: Any) -> tuple[list[str], dict[str, Any]]:
    """Parse user ids from a CSV file or a plain list of ids.

    Parameters
    ----------
    source
        A path (``str`` or ``Path``), the file's bytes, an open file (text or
        binary), or pasted text (a ``str`` with a line break; for a single
        pasted id use :func:`parse_ids_text`).

    Returns
    -------
    (ids, report)
        See :func:`parse_ids_text`.
    """
    text, where = read_source(source)
    ids, report = parse_ids_text(text, where)
    if not ids:  # an empty upload is a mistake (wrong file, lost export), not a segment
        what = f"under its {report['header']!r} column" if report["header"] else "in it"
        raise CatalogError(f"{where} has no user ids {what}: nothing to import")
    return ids, report


