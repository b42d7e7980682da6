"""Ingestion: CSV, Parquet, NDJSON and Segment-spec files into the store.

Everything is read and validated before anything is written: a bad file refuses the
whole import with one :class:`~segcore.errors.IngestError` line naming the file, the
line (CSV: the header is line 1; NDJSON: the physical line; Parquet: "row N") and the
problem. With ``skip_invalid=True`` the valid rows are imported and the rejected ones
are written as read, each with its ``__line`` and ``__reason``, under ``<home>/rejects``.
Rows are validated again under the store's writer lock when another import changed the
stored columns meanwhile, so every file of the store agrees on each column's type.

Examples
--------
>>> from segcore import Store                                         # doctest: +SKIP
>>> ingest(Store("data"), "events", ["orders.csv"], event="charged",  # doctest: +SKIP
...        mapping={"user_id": "CustomerID", "ts": "InvoiceDate"})
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import polars as pl

from segcore.errors import IngestError
from segcore.fileio import atomic_path
from segcore.ingest.readers import FILE, LINE, META, RAW, detect_format, read_file
from segcore.ingest.shape import (
    apply_mapping,
    flatten,
    infer_csv_types,
    normalise_ids,
    require,
    scalar_columns,
    segment_lines,
)
from segcore.ingest.validate import (
    KIND,
    REASON,
    cast_to,
    check_required,
    default_type,
    raise_first,
    summary_line,
)
from segcore.ingest.write import (
    dedup_events,
    merge_users,
    prepare_dir,
    store_lock,
    write_events,
    write_users,
)
from segcore.outputs import check_output_path
from segcore.store import EVENT_ID, Store

__all__ = ["ingest", "IngestError"]

Progress = Callable[[float, str], None]
_BOOKKEEPING = (*META, KIND, REASON, RAW, "__ts_raw")
_IDS = {"user_id", "event", "event_id", "ts"}
REJECTS_DIR = "rejects"  # <home>/rejects: rejected rows; never read as store data


def _noop(fraction: float, message: str) -> None:
    return None


def _read_all(
    kind: str,
    paths: list[Path],
    format: str | None,
    mapping: dict[str, str],
    event: str | None,
    encoding: str,
    known: set[str],
    keep_source: bool,
    report: Progress,
) -> tuple[pl.DataFrame, list[pl.DataFrame], dict[str, str], int]:
    """Read, shape and check every file: the rows, each file's rows as read (only with
    ``keep_source``, for the rejects file), ``file -> 'line'|'row'``,
    and the number of ignored lines. ``known``: the stored columns (kept as text)."""
    frames, sources, units, ignored = [], [], {}, 0
    for i, path in enumerate(paths):  # ok-loop: one pass per input file
        report(0.6 * i / len(paths), f"reading {path.name}")
        fmt = detect_format(path, format)
        shown = str(path)
        df, units[shown] = read_file(path, fmt, encoding)
        # a re-imported rejects file: its __reason column is no data (readers renumber __line)
        df = df.drop([c for c in (KIND, REASON, "__ts_raw") if c in df.columns])
        if keep_source:
            sources.append(df)
        report(0.6 * (i + 0.5) / len(paths), f"checking {path.name}")
        if fmt == "segment":
            df, skipped = segment_lines(df, kind, shown)
            ignored += skipped
        else:
            df = flatten(df, kind)
        df = apply_mapping(df, mapping, event, shown)
        require(df, kind, shown)
        df = normalise_ids(scalar_columns(df, kind, shown))
        # stored columns are cast from the text itself, later
        df = infer_csv_types(df, skip=_IDS | known, temporal_only=fmt != "csv")
        frames.append(check_required(df, kind))
    return pl.concat(frames, how="diagonal_relaxed"), sources, units, ignored


def _targets(
    stored: dict[str, pl.DataType], df: pl.DataFrame
) -> tuple[dict[str, pl.DataType], list[str]]:
    """Column -> stored dtype for every incoming column, and the new column names."""
    targets, new = {}, []
    for name, dtype in df.schema.items():  # ok-loop: one entry per column
        if name in _BOOKKEEPING:
            continue
        if name in stored and stored[name] != pl.Null:
            targets[name] = stored[name]
        else:
            targets[name] = default_type(dtype)
            if name not in stored:
                new.append(name)
    return targets, new


def _stored_schema(store: Store, kind: str) -> dict[str, pl.DataType]:
    return store.events_schema() if kind == "events" else store.users_schema()


def _as_text(df: pl.DataFrame) -> pl.DataFrame:
    """Every column as text for CSV: nested objects as JSON, lists joined by commas."""
    out = []
    for name, dtype in df.schema.items():  # ok-loop: one expression per column
        col = pl.col(name)
        if isinstance(dtype, pl.Struct):
            out.append(col.struct.json_encode())
        elif isinstance(dtype, pl.List | pl.Array):
            out.append(col.cast(pl.List(pl.String), strict=False).list.join(","))
        else:
            out.append(col.cast(pl.String))
    return df.select(out)


def _write_rejects(
    bad: pl.DataFrame, sources: list[pl.DataFrame], target: Path
) -> None:
    """The rejected rows as read from their source: the original columns and values (so the
    file re-imports with the same ``--map`` flags), then ``__line`` and ``__reason`` (and
    ``__file`` when several inputs had rejects, ``__raw`` for unreadable JSON lines).

    NDJSON when ``target`` ends in ``.ndjson``/``.jsonl``/``.json`` (nested objects kept),
    else CSV.
    """
    keys = bad.select(FILE, LINE, REASON)
    files = keys[FILE].unique(maintain_order=True).to_list()
    ndjson = target.suffix.lower() in (".ndjson", ".jsonl", ".json")
    parts = []
    for source in sources:  # ok-loop: one frame per input file
        rows = keys.join(source, on=[FILE, LINE], how="inner", maintain_order="left")
        if not rows.height:
            continue
        data = [c for c in rows.columns if c not in (*META, RAW, REASON)]
        extra = [RAW] if RAW in rows.columns and rows[RAW].is_not_null().any() else []
        tail = [LINE, REASON, *([FILE] if len(files) > 1 else [])]
        parts.append(rows.select(*data, *extra, *tail))
    with atomic_path(target) as tmp:
        if ndjson:
            with open(tmp, "wb") as fh:
                for part in parts:  # ok-loop: one block of lines per input file
                    part.write_ndjson(fh)
        else:
            pl.concat([_as_text(p) for p in parts], how="diagonal").write_csv(tmp)


def _default_rejects(store: Store, first: Path, fmt: str) -> Path:
    """``<home>/rejects/<stem>-<UTC time>.rejected.csv`` (``.ndjson`` for JSON inputs)."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    ext = "ndjson" if fmt in ("ndjson", "segment") else "csv"
    return store.home / REJECTS_DIR / f"{first.stem}-{stamp}.rejected.{ext}"


@dataclasses.dataclass
class _Batch:
    """An import read and validated against one state of the store's schema."""

    schema: dict[str, pl.DataType]  # the stored schema it was validated against
    rows: pl.DataFrame  # valid rows, in the stored types
    bad: pl.DataFrame  # rejected rows with __file, __line, __kind, __reason
    sources: list[pl.DataFrame]  # each file's rows as read (for the rejects file)
    units: dict[str, str]
    ignored: int
    total: int
    new_columns: list[str]


def _prepare(store: Store, kind: str, paths: list[Path], read: dict[str, Any],
             skip_invalid: bool, report: Progress) -> _Batch:
    """Read every file and validate every row against the store's schema as it is now."""
    schema = _stored_schema(store, kind)
    df, sources, units, ignored = _read_all(
        kind, paths, known=set(schema), keep_source=skip_invalid, report=report, **read
    )
    report(0.6, "validating")
    targets, new_columns = _targets(schema, df)
    checked = cast_to(df, targets)
    # rejected rows keep their values as read (a failed cast leaves NULL in ``checked``)
    bad = df.with_columns(checked[KIND], checked[REASON]).filter(pl.col(REASON).is_not_null())
    if not skip_invalid:
        raise_first(checked, units)
    good = checked.filter(pl.col(REASON).is_null())
    good = good.select([pl.col(c).cast(t) for c, t in targets.items()])
    return _Batch(schema, good, bad, sources, units, ignored, checked.height, new_columns)


def ingest(
    store: Store,
    kind: Literal["events", "users"],
    files: Sequence[str | Path],
    *,
    format: str | None = None,
    mapping: dict[str, str] | None = None,
    event: str | None = None,
    skip_invalid: bool = False,
    rejects_path: str | Path | None = None,
    progress: Progress | None = None,
    encoding: str = "utf-8",
) -> dict[str, Any]:
    """Import event or user files into ``store``.

    Parameters
    ----------
    store
        The target store.
    kind
        ``"events"`` (appended, deduplicated by ``event_id``) or ``"users"`` (upserted
        by ``user_id``).
    files
        Input files; all are validated before anything is written.
    format
        ``csv``, ``parquet``, ``ndjson`` or ``segment``; default from each extension.
    mapping
        Target column -> source column, e.g. ``{"user_id": "CustomerID"}``.
    event
        A constant event name for every row (events only).
    skip_invalid
        Import the valid rows and write the rejected ones, as read (original columns,
        then ``__line`` and ``__reason``), to ``rejects_path`` (default
        ``<home>/rejects/<first file stem>-<UTC time>.rejected.csv``, ``.ndjson`` for
        JSON input). It may not be inside the store's data or catalog, nor an input.
    progress
        Called with (fraction done, message).
    encoding
        Text encoding of CSV/NDJSON files (e.g. ``latin-1`` for old spreadsheet exports).

    Returns
    -------
    dict
        ``rows_read``, ``rows_imported``, ``rows_rejected``, ``duplicates_skipped``,
        ``new_columns``, ``files_written``, ``rejects_file``, ``summary`` and more.

    Raises
    ------
    IngestError
        A refused import (nothing written). ``StoreError`` when the store cannot be written.
    """
    if kind not in ("events", "users"):
        raise IngestError(f"unknown kind {kind!r}: use events or users")
    if not files:
        raise IngestError("no input files given")
    if event is not None and kind != "events":
        raise IngestError("--event only applies to events")
    mapping = dict(mapping or {})
    bad_targets = [t for t in mapping if not t or not mapping[t]]
    if bad_targets:
        raise IngestError("a mapping needs TARGET=SOURCE with both names")
    report = progress or _noop
    paths = [Path(f) for f in files]

    if rejects_path is not None:
        check_output_path(store, rejects_path, "the rejects file", inputs=paths)
    read = {"format": format, "mapping": mapping, "event": event, "encoding": encoding}
    batch = _prepare(store, kind, paths, read, skip_invalid, report)
    result: dict[str, Any] = {
        "kind": kind,
        "files": [str(p) for p in paths],
        "duplicates_skipped": 0,
        "new_columns": [],
        "files_written": [],
        "rejects_file": None,
        "rows_imported": 0,
    }
    if kind == "users":
        result["users_inserted"] = result["users_updated"] = 0
    rejects = (
        Path(rejects_path)
        if rejects_path
        else _default_rejects(store, paths[0], detect_format(paths[0], format))
    )
    if batch.rows.height:
        with store_lock(store.home):
            if _stored_schema(store, kind) != batch.schema:
                # another import changed the columns while this one waited for the lock:
                # validate again against the schema as it is now, so files never disagree
                report(0.0, "the store changed: checking again")
                batch = _prepare(store, kind, paths, read, skip_invalid, report)
            prepare_dir(store.events_dir if kind == "events" else store.users_dir)
            created = _rejects(batch, rejects, result)
            try:
                _write_rows(store, kind, batch, result, report)
            except BaseException:
                if created:  # the failed import leaves nothing behind
                    with contextlib.suppress(OSError):
                        rejects.unlink()
                raise
    else:
        _rejects(batch, rejects, result)
    result.update(
        rows_read=batch.total,
        rows_rejected=batch.bad.height,
        ignored_lines=batch.ignored,
    )
    result["summary"] = _summary(result, batch.bad, batch.total)
    report(1.0, "done")
    return result


def _rejects(batch: _Batch, target: Path, result: dict[str, Any]) -> bool:
    """Write the rejected rows (if any) to ``target``; whether it created a new file."""
    if not batch.bad.height:
        return False
    created = not target.exists()
    _write_rejects(batch.bad, batch.sources, target)
    result["rejects_file"] = str(target)
    return created


def _write_rows(
    store: Store, kind: str, batch: _Batch, result: dict[str, Any], report: Progress
) -> None:
    """Append (events) or upsert (users) the valid rows; the caller holds the lock."""
    good = batch.rows
    report(0.7, "checking for duplicates" if kind == "events" else "merging users")
    result["new_columns"] = batch.new_columns
    if kind == "events":
        if EVENT_ID not in good.columns:
            good = good.with_columns(pl.lit(None, dtype=pl.String).alias(EVENT_ID))
        good, dupes = dedup_events(store, good)
        result["duplicates_skipped"] = dupes
        report(0.85, "writing events")
        if good.height:
            result["files_written"].append(str(write_events(store, good)))
        else:
            result["new_columns"] = []
        result["rows_imported"] = good.height
    else:
        users, inserted, updated = merge_users(store, good)
        report(0.85, "writing users")
        result["files_written"].append(str(write_users(store, users)))
        result["rows_imported"] = good.height
        result["users_inserted"] = inserted
        result["users_updated"] = updated


def _summary(result: dict[str, Any], bad: pl.DataFrame, total: int) -> str:
    kind, n = result["kind"], result["rows_imported"]
    parts = [f"imported {n:,} of {total:,} rows into {kind}"]
    extras = []
    if kind == "users":
        extras.append(
            f"{result['users_inserted']:,} new users, {result['users_updated']:,} updated"
        )
    if result["duplicates_skipped"]:
        extras.append(f"{result['duplicates_skipped']:,} duplicates skipped")
    if result["ignored_lines"]:
        extras.append(f"{result['ignored_lines']:,} lines of other types ignored")
    if result["new_columns"]:
        extras.append("new columns: " + ", ".join(result["new_columns"]))
    if extras:
        parts[0] += " (" + "; ".join(extras) + ")"
    if bad.height:
        parts.append(
            summary_line(bad, total) + f"; rejected rows written to {result['rejects_file']}"
        )
    return ". ".join(parts)
