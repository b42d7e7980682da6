"""Ingestion: CSV, Parquet, NDJSON and Segment-spec files into the store; other tools'
raw exports (Segment, RudderStack, Mixpanel, Amplitude, PostHog) into both tables at once
(:func:`ingest_export`, mapping in ``docs/ingest.md``).

Everything is read and validated before anything is written: a bad file refuses the
whole import with one :class:`~segcore.errors.IngestError` line naming the file, the
line (CSV: the header is line 1; NDJSON: the physical line; Parquet: "row N") and the
problem. With ``skip_invalid=True`` the valid rows are imported and the rejected ones
are written, each with its ``reason``, to a CSV file.

Examples
--------
>>> from segcore import Store                                         # doctest: +SKIP
>>> ingest(Store("data"), "events", ["orders.csv"], event="charged",  # doctest: +SKIP
...        mapping={"user_id": "CustomerID", "ts": "InvoiceDate"})
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl

from segcore.errors import IngestError
from segcore.fileio import atomic_path
from segcore.ingest.derive import derive_columns, parse_derivation
from segcore.ingest.inputs import expand_inputs
from segcore.ingest.keys import identical_to_stored, ids_without_match, key_event_ids, parse_key
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
from segcore.ingest.tool_exports import read_export
from segcore.ingest.validate import (
    KIND,
    REASON,
    TS_RAW,
    cast_to,
    check_required,
    default_type,
    parse_ts,
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
from segcore.store import EVENT_ID, Store

__all__ = ["ingest", "ingest_export", "IngestError"]

Progress = Callable[[float, str], None]
_BOOKKEEPING = (*META, KIND, REASON, RAW, TS_RAW)
_IDS = {"user_id", "event", "event_id", "ts"}


def _noop(fraction: float, message: str) -> None:
    return None


def _trim(df: pl.DataFrame) -> pl.DataFrame:
    """``--trim``: text values without surrounding spaces; a blank value becomes NULL."""
    text = [c for c, t in df.schema.items() if t == pl.String and c not in _BOOKKEEPING]
    if not text:
        return df
    stripped = pl.col(text).str.strip_chars()
    return df.with_columns(pl.when(stripped != "").then(stripped).name.keep())


def _read_all(
    store: Store,
    kind: str,
    paths: list[Path],
    format: str | None,
    mapping: dict[str, str],
    event: str | None,
    encoding: str,
    report: Progress,
    trim: bool = False,
    derive: Sequence[str] = (),
) -> tuple[pl.DataFrame, dict[str, str], int]:
    """Read, shape and check every file; the rows, ``file -> 'line'|'row'``, ignored lines."""
    frames, units, ignored = [], {}, 0
    stored = store.events_schema() if kind == "events" else store.users_schema()
    # text stored as text is never re-typed (``1.50`` stays ``1.50``); other stored
    # columns are typed like new ones, then cast to their stored type
    text = _stored_text(store, kind)
    derived = {parse_derivation(spec)[0] for spec in derive}
    n = len(paths)
    for i, path in enumerate(paths):  # ok-loop: one pass per input file
        of = f" (file {i + 1:,} of {n:,})" if n > 1 else ""
        report(0.6 * i / n, f"reading {path.name}{of}")
        fmt = detect_format(path, format)
        shown = str(path)
        df, units[shown] = read_file(path, fmt, encoding)
        report(0.6 * (i + 0.5) / n, f"checking {path.name}{of}")
        if fmt == "segment":
            df, skipped = segment_lines(df, kind, shown)
            ignored += skipped
        else:
            df = flatten(df, kind)
        df = apply_mapping(df, mapping, event, shown)
        require(df, kind, shown, provided=derived)
        frames.append(_shaped(df, kind, shown, text, csv=fmt == "csv", trim=trim))
    df = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    if derive:
        df = normalise_ids(derive_columns(df, derive, kind, _BOOKKEEPING, stored))
        if "ts" in derived and TS_RAW in df.columns:  # a derived ts is parsed afresh
            df = df.drop(TS_RAW)
    return check_required(df, kind), units, ignored


def _shaped(
    df: pl.DataFrame, kind: str, shown: str, text: set[str], *, csv: bool, trim: bool = False
) -> pl.DataFrame:
    """One file's rows: scalar columns, optional trimming, the id rule, inferred types, ``ts``.

    Stored text columns (``text``) are never re-typed (``1.50`` stays ``1.50``); other
    stored columns are typed like new ones, then cast to their stored type.
    """
    df = scalar_columns(df, kind, shown)
    if trim:
        df = _trim(df)
    df = normalise_ids(df)
    df = infer_csv_types(df, skip=_IDS | text, temporal_only=not csv)
    if kind == "events" and "ts" in df.columns:  # each file's own timestamp layout
        df = parse_ts(df)
    return df


def _stored_text(store: Store, kind: str) -> set[str]:
    """The stored columns of ``kind`` that hold text or lists (never re-typed)."""
    stored = store.events_schema() if kind == "events" else store.users_schema()
    return {c for c, t in stored.items() if t == pl.String or isinstance(t, pl.List)}


def _targets(store: Store, kind: str, df: pl.DataFrame) -> tuple[dict[str, pl.DataType], list[str]]:
    """Column -> stored dtype for every incoming column, and the new column names."""
    stored = store.events_schema() if kind == "events" else store.users_schema()
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


def _write_rejects(bad: pl.DataFrame, target: Path) -> None:
    """The rejected rows as CSV: ``file, line, reason`` then the source columns as text."""
    schema = bad.schema
    data = [c for c in schema if c not in _BOOKKEEPING]
    cols = [
        pl.col(FILE).alias("file"),
        pl.col(LINE).alias("line"),
        pl.col(REASON).alias("reason"),
    ]
    for c in data:  # ok-loop: one expression per column
        if c == "ts" and TS_RAW in bad.columns:
            cols.append(pl.col(TS_RAW).cast(pl.String).alias(c))
        elif isinstance(schema[c], pl.List):
            cols.append(pl.col(c).list.join(",").alias(c))
        else:
            cols.append(pl.col(c).cast(pl.String).alias(c))
    if RAW in bad.columns:
        cols.append(pl.col(RAW).alias("raw_line"))
    with atomic_path(target) as tmp:
        bad.select(cols).write_csv(tmp)


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
    trim: bool = False,
    derive: Sequence[str] = (),
    key: str | Sequence[str] | None = None,
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
        Input files, folders (every file below with a known extension) and glob
        patterns (:mod:`segcore.ingest.inputs`); all are read and validated before
        anything is written, in one write.
    format
        ``csv``, ``parquet``, ``ndjson`` or ``segment``; default from each extension.
    mapping
        Target column -> source column, e.g. ``{"user_id": "CustomerID"}``.
    event
        A constant event name for every row (events only).
    skip_invalid
        Import the valid rows and write the rejected ones to ``rejects_path``
        (default ``<first file stem>.rejected.csv`` beside the first file).
    progress
        Called with (fraction done, message).
    encoding
        Text encoding of CSV/NDJSON files (e.g. ``latin-1`` for old spreadsheet exports).
    trim
        Remove spaces around text values (every format). By default values are
        stored exactly as written; only ids follow the id rule (:mod:`segcore.ids`).
    derive
        ``"NAME = EXPRESSION"`` derived columns (:mod:`segcore.ingest.derive`).
    key
        Events only: columns (``"InvoiceNo,StockCode"``) whose values make each
        event's ``event_id`` (:mod:`segcore.ingest.keys`), so a re-import is skipped.

    Returns
    -------
    dict
        ``rows_read``, ``rows_imported``, ``rows_rejected``, ``duplicates_skipped``,
        ``identical_rows`` (rows equal to stored events), ``user_ids`` and
        ``user_ids_without_user`` (events) or ``users_without_events`` (users),
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
    key_columns = parse_key(key)
    if key_columns and kind != "events":
        raise IngestError("--key only applies to events (users are matched by user_id)")
    derive = list(derive or ())
    for spec in derive:  # ok-loop: a few --derive options, checked before reading
        parse_derivation(spec)
    mapping = dict(mapping or {})
    bad_targets = [t for t in mapping if not t or not mapping[t]]
    if bad_targets:
        raise IngestError("a mapping needs TARGET=SOURCE with both names")
    report = progress or _noop
    paths = expand_inputs(files, format)

    df, units, ignored = _read_all(
        store, kind, paths, format, mapping, event, encoding, report, trim, derive
    )
    report(0.6, "validating")
    batch = _validate(store, kind, df, units, skip_invalid, key_columns, mapping)
    result = _result(batch, paths, ignored)
    if batch.bad.height:  # first: an unwritable rejects file leaves the store untouched
        result["rejects_file"] = _save_rejects(batch.bad, paths, rejects_path)
    if batch.good.height:
        with store_lock(store.home):
            _write(store, batch, result, report)
    result["summary"] = _summary(result, batch.bad, batch.total)
    report(1.0, "done")
    return result


def ingest_export(
    store: Store,
    files: Sequence[str | Path],
    *,
    format: str,
    skip_invalid: bool = False,
    rejects_path: str | Path | None = None,
    progress: Progress | None = None,
    encoding: str = "utf-8",
) -> dict[str, Any]:
    """Import a tool's raw export into both tables at once (``segcore ingest export``).

    ``format`` is one of :data:`~segcore.ingest.tool_exports.TOOLS`; the mapping of each
    is in ``docs/ingest.md``. Events and users are both validated before either is
    written; a bad file refuses the whole import (nothing written) unless
    ``skip_invalid``, which writes the rejected rows of both tables to one CSV file.

    Returns ``{"format", "files", "events": <ingest result>, "users": <ingest result>,
    "summary"}``; a table the export does not fill is absent.
    """
    if not files:
        raise IngestError("no input files given")
    report = progress or _noop
    paths = [Path(f) for f in files]
    report(0.0, "reading")
    export = read_export(paths, format, encoding)
    report(0.5, "validating")
    shown = ", ".join(str(p) for p in paths)
    batches = []
    for kind, df in export.frames():  # ok-loop: events, users
        df = check_required(_shaped(df, kind, shown, _stored_text(store, kind), csv=False), kind)
        batches.append(_validate(store, kind, df, export.units, skip_invalid))
    results = {b.kind: _result(b, paths, export.ignored if b.kind == "events" else 0)
               for b in batches}
    bad = [b.bad for b in batches if b.bad.height]
    if bad:
        target = _save_rejects(pl.concat(bad, how="diagonal_relaxed"), paths, rejects_path)
        for b in batches:  # ok-loop: two tables
            if b.bad.height:
                results[b.kind]["rejects_file"] = target
    if any(b.good.height for b in batches):
        with store_lock(store.home):
            for b in batches:  # ok-loop: events, then users
                if b.good.height:
                    _write(store, b, results[b.kind], report)
    for b in batches:  # ok-loop: two tables
        results[b.kind]["summary"] = _summary(results[b.kind], b.bad, b.total)
    report(1.0, "done")
    return {
        "format": format,
        "files": [str(p) for p in paths],
        **results,
        "summary": "; ".join(r["summary"] for r in results.values()),
    }


@dataclass
class _Batch:
    """One table's validated rows: stored-typed good rows, rejected rows as read."""

    kind: str
    good: pl.DataFrame
    bad: pl.DataFrame
    total: int
    new_columns: list[str]
    key: list[str] | None = None


def _validate(
    store: Store,
    kind: str,
    df: pl.DataFrame,
    units: dict[str, str],
    skip_invalid: bool,
    key_columns: list[str] | None = None,
    mapping: dict[str, str] | None = None,
) -> _Batch:
    """Cast to the stored types; refuse the first bad row unless ``skip_invalid``.

    With ``key_columns`` each good row's ``event_id`` is made from their values.
    """
    targets, new_columns = _targets(store, kind, df)
    checked = cast_to(df, targets)
    # rejected rows keep their values as read (a failed cast leaves NULL in ``checked``)
    bad = df.with_columns(checked[KIND], checked[REASON]).filter(pl.col(REASON).is_not_null())
    if not skip_invalid:
        raise_first(checked, units)
    good = checked.filter(pl.col(REASON).is_null())
    good = good.drop([c for c in _BOOKKEEPING if c in good.columns])
    good = good.select([pl.col(c).cast(t) for c, t in targets.items()])
    if key_columns:
        good = key_event_ids(good, key_columns, mapping or {})
    return _Batch(kind, good, bad, checked.height, new_columns, key_columns)


def _result(batch: _Batch, paths: list[Path], ignored: int) -> dict[str, Any]:
    result: dict[str, Any] = {
        "kind": batch.kind,
        "files": [str(p) for p in paths],
        "rows_read": batch.total,
        "rows_rejected": batch.bad.height,
        "ignored_lines": ignored,
        "duplicates_skipped": 0,
        "identical_rows": 0,
        "key": batch.key or None,
        "new_columns": batch.new_columns if batch.good.height else [],
        "files_written": [],
        "rejects_file": None,
        "rows_imported": 0,
    }
    if batch.kind == "users":
        result["users_inserted"] = result["users_updated"] = 0
        result["user_ids"], result["users_without_events"] = 0, None
    else:
        result["user_ids"], result["user_ids_without_user"] = 0, None
    return result


def _save_rejects(bad: pl.DataFrame, paths: list[Path], rejects_path: str | Path | None) -> str:
    """Write the rejected rows (default ``<first file stem>.rejected.csv``); the path."""
    target = (
        Path(rejects_path) if rejects_path else (paths[0].parent / f"{paths[0].stem}.rejected.csv")
    )
    _write_rejects(bad, target)
    return str(target)


def _write(store: Store, batch: _Batch, result: dict[str, Any], report: Progress) -> None:
    """Store ``batch.good`` (under the store lock) and fill in ``result``."""
    kind, good = batch.kind, batch.good
    folder = store.events_dir if kind == "events" else store.users_dir
    report(0.7, "checking for duplicates" if kind == "events" else "merging users")
    prepare_dir(folder)
    if kind == "events":
        report(0.72, "comparing with the stored events")
        result["identical_rows"] = identical_to_stored(store, good)
        imported_ids = good["user_id"]
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
        result["user_ids"] = imported_ids.n_unique()
        result["user_ids_without_user"] = ids_without_match(store, kind, imported_ids)
    else:
        users, inserted, updated = merge_users(store, good)
        report(0.85, "writing users")
        result["files_written"].append(str(write_users(store, users)))
        result["rows_imported"] = good.height
        result["users_inserted"] = inserted
        result["users_updated"] = updated
        result["user_ids"] = good["user_id"].n_unique()
        result["users_without_events"] = ids_without_match(store, kind, good["user_id"])


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
    if len(result["files"]) > 1:
        parts[0] += f" from {len(result['files']):,} files"
    same = result["identical_rows"]
    if same and kind == "events":
        if result["key"] or result["duplicates_skipped"]:
            parts.append(f"{same:,} rows are identical to rows already stored")
        else:
            parts.append(
                f"{same:,} rows are identical to rows already stored and were imported "
                "again; use --key to skip them"
            )
    if bad.height:
        parts.append(
            summary_line(bad, total) + f"; rejected rows written to {result['rejects_file']}"
        )
    unmatched = result.get("user_ids_without_user" if kind == "events" else "users_without_events")
    if unmatched is not None and n:  # None: the store has no users (events) to match
        what = "user ids match no user" if kind == "events" else "imported users have no events"
        parts.append(f"{unmatched:,} of {result['user_ids']:,} {what}")
    return ". ".join(parts)
