"""Ingestion: CSV, Parquet, NDJSON and Segment-spec files into the store; other tools'
raw exports (Segment, RudderStack, Mixpanel, Amplitude, PostHog) into both tables at once
(:func:`ingest_export`, mapping in ``docs/ingest.md``).

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
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl

from segcore.errors import IngestError
from segcore.ingest.derive import derive_columns, parse_derivation
from segcore.ingest.inputs import expand_inputs
from segcore.ingest.keys import identical_to_stored, ids_without_match, key_event_ids, parse_key
from segcore.ingest.readers import FILE, LINE, META, RAW, detect_format, read_file
from segcore.ingest.records import (
    check_if_imported,
    describe,
    file_digest,
    imported_before,
    record_imports,
)
from segcore.ingest.shape import (
    apply_mapping,
    flatten,
    infer_csv_types,
    normalise_ids,
    require,
    scalar_columns,
    segment_lines,
)
from segcore.ingest.timestamps import source_zone
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
from segcore.lang.dates import check_zone
from segcore.store.events import EVENT_ID, EventStore
from segcore.store.files import atomic_path
from segcore.store.outputs import check_output_path

__all__ = ["ingest", "ingest_export", "IngestError", "REJECTS_DIR"]

Progress = Callable[[float, str], None]
_BOOKKEEPING = (*META, KIND, REASON, RAW, TS_RAW)
_IDS = {"user_id", "event", "event_id", "ts"}
REJECTS_DIR = "rejects"  # <home>/rejects: rejected rows; never read as store data
# the columns a rejects file adds to the source's own: a file that has both __line and
# __reason is a rejects file being re-imported, and these are not imported (said so)
REJECTS_COLUMNS = ("__line", "__reason")
_REJECTS_EXTRA = ("__file", "__raw")


def _noop(fraction: float, message: str) -> None:
    return None


def _trim(df: pl.DataFrame) -> pl.DataFrame:
    """``--trim``: text values without surrounding spaces; a blank value becomes NULL."""
    text = [c for c, t in df.schema.items() if t == pl.String and c not in _BOOKKEEPING]
    if not text:
        return df
    stripped = pl.col(text).str.strip_chars()
    return df.with_columns(pl.when(stripped != "").then(stripped).name.keep())


@dataclass(frozen=True)
class _Reading:
    """How to read the input files (the options of one ``ingest`` call)."""

    format: str | None
    mapping: dict[str, str]
    event: str | None
    encoding: str
    trim: bool = False
    derive: tuple[str, ...] = ()


@dataclass
class _Input:
    """Every input file's rows, shaped and checked (not yet cast to the stored types)."""

    rows: pl.DataFrame
    sources: list[pl.DataFrame]  # each file's rows as read (for the rejects file)
    units: dict[str, str]  # file -> 'line' | 'row'
    ignored: int  # Segment lines of other types
    rejects_files: int = 0  # re-imported rejects files (their __line/__reason dropped)


def _read_all(
    kind: str,
    paths: list[Path],
    stored: dict[str, pl.DataType],
    how: _Reading,
    keep_source: bool,
    report: Progress,
) -> _Input:
    """Read, shape and check every file against the ``stored`` schema."""
    frames, sources, units, ignored, marked = [], [], {}, 0, 0
    # text stored as text is never re-typed (``1.50`` stays ``1.50``); other stored
    # columns are typed like new ones, then cast to their stored type
    text = {c for c, t in stored.items() if t == pl.String or isinstance(t, pl.List)}
    derived = {parse_derivation(spec)[0] for spec in how.derive}
    n = len(paths)
    for i, path in enumerate(paths):  # ok-loop: one pass per input file
        of = f" (file {i + 1:,} of {n:,})" if n > 1 else ""
        report(0.6 * i / n, f"reading {path.name}{of}")
        fmt = detect_format(path, how.format)
        shown = str(path)
        df, units[shown] = read_file(path, fmt, how.encoding)
        if all(c in df.columns for c in REJECTS_COLUMNS):  # a rejects file, fixed by hand
            df = df.drop([c for c in (*REJECTS_COLUMNS, *_REJECTS_EXTRA) if c in df.columns])
            marked += 1
        if keep_source:
            sources.append(df)
        report(0.6 * (i + 0.5) / n, f"checking {path.name}{of}")
        if fmt == "segment":
            df, skipped = segment_lines(df, kind, shown)
            ignored += skipped
        else:
            df = flatten(df, kind)
        df = apply_mapping(df, how.mapping, how.event, shown)
        require(df, kind, shown, provided=derived)
        frames.append(_shaped(df, kind, shown, text, csv=fmt == "csv", trim=how.trim))
    df = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    if how.derive:
        df = normalise_ids(derive_columns(df, how.derive, kind, _BOOKKEEPING, stored))
        if "ts" in derived and TS_RAW in df.columns:  # a derived ts is parsed afresh
            df = df.drop(TS_RAW)
    return _Input(check_required(df, kind), sources, units, ignored, marked)


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


def _stored_schema(store: EventStore, kind: str) -> dict[str, pl.DataType]:
    return store.events_schema() if kind == "events" else store.users_schema()


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
        data = [c for c in rows.columns if c not in (*META, RAW, REASON, KIND, TS_RAW)]
        extra = [RAW] if RAW in rows.columns and rows[RAW].is_not_null().any() else []
        tail = [
            pl.col(LINE).alias("__line"),
            pl.col(REASON).alias("__reason"),
            *([pl.col(FILE).alias("__file")] if len(files) > 1 else []),
        ]
        raw = [pl.col(RAW).alias("__raw")] if extra else []
        parts.append(rows.select(*data, *raw, *tail))
    with atomic_path(target) as tmp:
        if ndjson:
            with open(tmp, "wb") as fh:
                for part in parts:  # ok-loop: one block of lines per input file
                    part.write_ndjson(fh)
        else:
            pl.concat([_as_text(p) for p in parts], how="diagonal").write_csv(tmp)


def _default_rejects(store: EventStore, first: Path, fmt: str) -> Path:
    """``<home>/rejects/<stem>-<UTC time>.rejected.csv`` (``.ndjson`` for JSON inputs)."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    ext = "ndjson" if fmt in ("ndjson", "segment") else "csv"
    return store.home / REJECTS_DIR / f"{first.stem}-{stamp}.rejected.{ext}"


@dataclass
class _Batch:
    """One table's rows validated against one state of the store's schema."""

    kind: str
    schema: dict[str, pl.DataType]  # the stored schema it was validated against
    good: pl.DataFrame  # valid rows, in the stored types
    bad: pl.DataFrame  # rejected rows with their file, line, kind and reason
    sources: list[pl.DataFrame]  # each file's rows as read (for the rejects file)
    units: dict[str, str]
    ignored: int
    total: int
    new_columns: list[str]
    key: list[str] | None = None
    rejects_files: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _validate(
    kind: str,
    schema: dict[str, pl.DataType],
    read: _Input,
    skip_invalid: bool,
    key_columns: list[str] | None = None,
    mapping: dict[str, str] | None = None,
) -> _Batch:
    """Cast to the stored types; refuse the first bad row unless ``skip_invalid``.

    With ``key_columns`` each good row's ``event_id`` is made from their values.
    """
    df = read.rows
    targets, new_columns = _targets(schema, df)
    checked = cast_to(df, targets)
    # rejected rows keep their values as read (a failed cast leaves NULL in ``checked``)
    bad = df.with_columns(checked[KIND], checked[REASON]).filter(pl.col(REASON).is_not_null())
    if not skip_invalid:
        raise_first(checked, read.units)
    good = checked.filter(pl.col(REASON).is_null())
    good = good.select([pl.col(c).cast(t) for c, t in targets.items()])
    if key_columns:
        good = key_event_ids(good, key_columns, mapping or {})
    return _Batch(kind, schema, good, bad, read.sources, read.units, read.ignored,
                  checked.height, new_columns, key_columns, read.rejects_files)


def _refuse_connected(store: EventStore, kind: str) -> None:
    """A table read from a connected source takes no imports (segcore/store/sources.py)."""
    connected = store.source(kind)
    if connected is not None:
        raise IngestError(
            f"this store's {kind} are read from the {connected.where} (sources.toml): "
            f"add rows there, or disconnect first (segcore connect {kind} --off)"
        )


def ingest(
    store: EventStore,
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
    source_tz: str | None = None,
    if_imported: str = "ask",
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
        Import the valid rows and write the rejected ones, as read (original columns,
        then ``__line`` and ``__reason``), to ``rejects_path`` (default
        ``<home>/rejects/<first file stem>-<UTC time>.rejected.csv``, ``.ndjson`` for
        JSON input). It may not be inside the store's data or catalog, nor an input.
    progress
        Called with (fraction done, message).
    encoding
        Text encoding of CSV/NDJSON files (e.g. ``latin-1`` for old spreadsheet exports).
    trim
        Remove spaces around text values (every format). By default values are
        stored exactly as written; only ids follow the id rule (:mod:`segcore.store.ids`).
    derive
        ``"NAME = EXPRESSION"`` derived columns (:mod:`segcore.ingest.derive`).
    key
        Events only: columns (``"InvoiceNo,StockCode"``) whose values make each
        event's ``event_id`` (:mod:`segcore.ingest.keys`), so a re-import is skipped.
    source_tz
        The IANA zone of naive timestamps (no offset), e.g. ``Europe/London`` for a shop
        export in UK local time (default: UTC). Ambiguous local times are taken as their
        first occurrence, nonexistent ones moved forward by the gap
        (:mod:`segcore.ingest.timestamps`); both are counted (``ambiguous_times``,
        ``nonexistent_times``) and named in the summary.
    if_imported
        Events only: what to do with a file whose content was imported before
        (:mod:`segcore.ingest.records`) when its events carry no ``event_id`` (no ``key``,
        no ids in the file) to skip them by: ``"ask"`` refuses the import (nothing
        written) with an error naming the file and the two choices, ``"skip"`` leaves
        those files out, ``"again"`` imports them anyway. Files with ids are deduplicated
        by them in every mode. ``imported_before`` in the result names the repeated files.

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
    _refuse_connected(store, kind)
    if event is not None and kind != "events":
        raise IngestError("--event only applies to events")
    key_columns = parse_key(key)
    if key_columns and kind != "events":
        raise IngestError("--key only applies to events (users are matched by user_id)")
    derive = tuple(derive or ())
    for spec in derive:  # ok-loop: a few --derive options, checked before reading
        parse_derivation(spec)
    mapping = dict(mapping or {})
    bad_targets = [t for t in mapping if not t or not mapping[t]]
    if bad_targets:
        raise IngestError("a mapping needs TARGET=SOURCE with both names")
    report = progress or _noop
    paths = expand_inputs(files, format)
    if rejects_path is not None:
        check_output_path(store, rejects_path, "the rejects file", inputs=paths)
    how = _Reading(format, mapping, event, encoding, trim, derive)
    if source_tz is not None:
        check_zone(source_tz)  # a bad name is refused before anything is read
    clock: dict[str, Any] = {}
    check_if_imported(if_imported)
    digests = {p: file_digest(p) for p in paths} if kind == "events" else {}
    before = imported_before(store, digests)
    if before and if_imported == "skip":
        paths = [p for p in paths if p not in before]
        digests = {p: d for p, d in digests.items() if p not in before}
        if not paths:
            return _nothing_new(kind, before, report)

    def prepare() -> _Batch:
        schema = _stored_schema(store, kind)
        with source_zone(source_tz) as zone:
            read = _read_all(kind, paths, schema, how, skip_invalid, report)
            report(0.6, "validating")
            batch = _validate(kind, schema, read, skip_invalid, key_columns, mapping)
        clock.update(source_tz=None if zone is None else zone.name,
                     ambiguous_times=0 if zone is None else zone.ambiguous,
                     nonexistent_times=0 if zone is None else zone.nonexistent)
        return batch

    batch = prepare()
    if before and if_imported == "ask" and not _has_ids(batch):
        report(1.0, "refused: imported before")
        raise IngestError(
            f"already imported: {describe(before)}; importing the same content again "
            "would store its events twice. Choose --if-imported skip (leave those files "
            "out) or --if-imported again (import them anyway), or give --key"
        )
    rejects = (
        Path(rejects_path)
        if rejects_path
        else _default_rejects(store, paths[0], detect_format(paths[0], format))
    )
    batch = _store_batches(store, [batch], prepare_again=lambda b: prepare(),
                           rejects=rejects, report=report)[0]
    if kind == "events":
        store.event_counts()  # the new file's statistics, kept beside it (store/stats.py)
    result = batch.extra
    result["files"] = [str(p) for p in paths]
    result.update(clock)
    result["imported_before"] = [str(p) for p in before if p in digests]
    result["skipped_files"] = [str(p) for p in before if p not in digests]
    if digests:
        with store_lock(store.home):
            record_imports(store, digests, int(result["rows_imported"]))
    result["summary"] = _summary(result, batch.bad, batch.total)
    report(1.0, "done")
    return result


def ingest_export(
    store: EventStore,
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
    if rejects_path is not None:
        check_output_path(store, rejects_path, "the rejects file", inputs=paths)

    def prepare() -> list[_Batch]:
        report(0.0, "reading")
        export = read_export(paths, format, encoding)
        report(0.5, "validating")
        shown = ", ".join(str(p) for p in paths)
        batches = []
        for kind, df in export.frames():  # ok-loop: events, users
            _refuse_connected(store, kind)
            schema = _stored_schema(store, kind)
            text = {c for c, t in schema.items() if t == pl.String or isinstance(t, pl.List)}
            rows = check_required(_shaped(df, kind, shown, text, csv=False), kind)
            ignored = export.ignored if kind == "events" else 0
            read = _Input(rows, [df], export.units, ignored)
            batches.append(_validate(kind, schema, read, skip_invalid))
        return batches

    batches = prepare()
    by_kind = {b.kind: i for i, b in enumerate(batches)}
    rejects = (
        Path(rejects_path)
        if rejects_path
        else _default_rejects(store, paths[0], "ndjson")
    )
    batches = _store_batches(
        store, batches, prepare_again=lambda b: prepare()[by_kind[b.kind]],
        rejects=rejects, report=report,
    )
    results = {}
    for b in batches:  # ok-loop: two tables
        b.extra["files"] = [str(p) for p in paths]
        b.extra["summary"] = _summary(b.extra, b.bad, b.total)
        results[b.kind] = b.extra
    report(1.0, "done")
    return {
        "format": format,
        "files": [str(p) for p in paths],
        **results,
        "summary": "; ".join(r["summary"] for r in results.values()),
    }


def _store_batches(
    store: EventStore,
    batches: list[_Batch],
    *,
    prepare_again: Callable[[_Batch], _Batch],
    rejects: Path,
    report: Progress,
) -> list[_Batch]:
    """Write the batches' rejected rows to ``rejects`` and their good rows to the store.

    Under the writer lock a batch whose stored schema changed meanwhile (another import
    added columns) is read and validated again, so the files of a store never disagree on
    a column's type. A failed write removes a rejects file this import created.
    """
    created = False
    if any(b.good.height for b in batches):
        with store_lock(store.home):
            batches = [
                prepare_again(b) if _stored_schema(store, b.kind) != b.schema else b
                for b in batches
            ]
            created = _rejects(batches, rejects)
            try:
                for b in batches:  # ok-loop: one or two tables
                    b.extra = _result(b)
                    if b.good.height:
                        prepare_dir(store.events_dir if b.kind == "events" else store.users_dir)
                        _write(store, b, b.extra, report)
            except BaseException:
                if created:  # the failed import leaves nothing behind
                    with contextlib.suppress(OSError):
                        rejects.unlink()
                raise
    else:
        _rejects(batches, rejects)
        for b in batches:  # ok-loop: one or two tables
            b.extra = _result(b)
    for b in batches:  # ok-loop: one or two tables
        if b.bad.height:
            b.extra["rejects_file"] = str(rejects)
    return batches


def _rejects(batches: list[_Batch], target: Path) -> bool:
    """Write every batch's rejected rows (if any) to ``target``; whether it created it."""
    bad = [b for b in batches if b.bad.height]
    if not bad:
        return False
    created = not target.exists()
    rows = pl.concat([b.bad for b in bad], how="diagonal_relaxed")
    sources = [s for b in bad for s in b.sources]
    _write_rejects(rows, sources, target)
    return created


def _result(batch: _Batch) -> dict[str, Any]:
    result: dict[str, Any] = {
        "kind": batch.kind,
        "files": list(batch.units),
        "rows_read": batch.total,
        "rows_rejected": batch.bad.height,
        "ignored_lines": batch.ignored,
        "rejects_files_reimported": batch.rejects_files,
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


def _write(store: EventStore, batch: _Batch, result: dict[str, Any], report: Progress) -> None:
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


def _has_ids(batch: _Batch) -> bool:
    """Whether every valid row has an ``event_id`` (a repeat is then skipped by it)."""
    good = batch.good
    return EVENT_ID in good.columns and good[EVENT_ID].null_count() == 0


def _nothing_new(kind: str, before: dict[Path, dict[str, Any]], report: Progress) -> dict[str, Any]:
    """The result of an import whose every file was imported before and skipped."""
    report(1.0, "done")
    return {"kind": kind, "files": [], "rows_read": 0, "rows_imported": 0, "rows_rejected": 0,
            "duplicates_skipped": 0, "identical_rows": 0, "new_columns": [],
            "imported_before": [], "skipped_files": [str(p) for p in before],
            "summary": f"imported nothing: every file was imported before ({describe(before)})"}


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
    if result.get("ambiguous_times"):
        extras.append(f"{result['ambiguous_times']:,} ambiguous local times (clocks went "
                      "back) taken as their first occurrence")
    if result.get("nonexistent_times"):
        extras.append(f"{result['nonexistent_times']:,} nonexistent local times (clocks "
                      "went forward) moved forward by the gap")
    if result.get("rejects_files_reimported"):
        extras.append("a rejects file's __line and __reason columns not imported")
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
    again = [Path(f).name for f in result.get("imported_before", [])]
    if again:
        parts.append("imported before (same content): " + ", ".join(again))
    skipped = [Path(f).name for f in result.get("skipped_files", [])]
    if skipped:
        parts.append("skipped, imported before: " + ", ".join(skipped))
    if bad.height:
        parts.append(
            summary_line(bad, total) + f"; rejected rows written to {result['rejects_file']}"
        )
    unmatched = result.get("user_ids_without_user" if kind == "events" else "users_without_events")
    if unmatched is not None and n:  # None: the store has no users (events) to match
        what = "user ids match no user" if kind == "events" else "imported users have no events"
        parts.append(f"{unmatched:,} of {result['user_ids']:,} {what}")
    return ". ".join(parts)
