"""Raw exports of Segment, RudderStack, Mixpanel, Amplitude and PostHog: events and users.

:func:`read_export` reads a tool's own export files into two frames in the shape the
ingest pipeline validates (``segcore.ingest.ingest_export`` stores both in one import):

- events: ``user_id, event, ts, event_id`` and the event's properties as columns;
- users: ``user_id`` and the user's traits / profile properties as columns, ordered
  oldest first (the pipeline keeps the last non-NULL value per user and column, so the
  newest value of each trait wins).

The mapping of every tool is in ``docs/ingest.md``. Inputs may be plain NDJSON (or a
JSON array), gzip-compressed files (``.gz``), zip archives (Amplitude's export: a folder
of gzipped hourly files) and folders of such files; PostHog files may also be Parquet
or CSV (``properties`` then holds JSON text). Lines that are not JSON are kept as broken
rows (the import names their line, or rejects them with ``--skip-invalid``).

Event properties that are lists or objects are stored as JSON text; for users, lists of
scalars stay lists of strings.
"""

from __future__ import annotations

import gzip
import io
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from segcore.errors import IngestError
from segcore.ingest.readers import ERROR, META, RAW, read_csv, read_ndjson, read_parquet
from segcore.ingest.shape import SEGMENT_TS_FIELDS, segment_lines
from segcore.ingest.timestamps import parse_timestamps

TOOLS = ("segment", "rudderstack", "mixpanel", "amplitude", "posthog")
AT = "__at"  # when a users row was true (sorts the users frame; dropped before storing)
EVENT_KEYS = ("user_id", "event", "ts", "event_id")

# Amplitude: top-level fields kept as event columns / as user attributes
AMPLITUDE_EVENT_FIELDS = ("device_id", "session_id")
AMPLITUDE_USER_FIELDS = (
    "country", "region", "city", "language", "platform", "os_name", "device_type",
)
_SEGMENT_TYPES = ("track", "page", "screen", "identify")


@dataclass
class Export:
    """What one export holds: events and users rows, position words, ignored lines."""

    events: list[pl.DataFrame] = field(default_factory=list)
    users: list[pl.DataFrame] = field(default_factory=list)
    units: dict[str, str] = field(default_factory=dict)
    ignored: int = 0

    def frames(self) -> Iterator[tuple[str, pl.DataFrame]]:
        """``("events", rows)`` and ``("users", rows)`` for the kinds the export holds."""
        if self.events:
            yield "events", pl.concat(self.events, how="diagonal_relaxed")
        if self.users:
            users = pl.concat(self.users, how="diagonal_relaxed")
            # oldest first; profile exports (the current state, no time) last, in file order
            users = users.sort(AT, nulls_last=True, maintain_order=True).drop(AT)
            yield "users", users


def read_export(paths: list[Path], tool: str, encoding: str = "utf-8") -> Export:
    """Read ``tool``'s export files (see the module docstring)."""
    if tool not in TOOLS:
        raise IngestError(f"unknown export format {tool!r}: use one of {', '.join(TOOLS)}")
    convert = _CONVERTERS[tool]
    out = Export()
    with tempfile.TemporaryDirectory(prefix="segcore-export-") as tmp:
        for path in paths:  # ok-loop: one pass per input file
            for readable, shown in _expand(Path(path), str(path), Path(tmp)):  # ok-loop: files
                df, unit = _read(readable, shown, encoding)
                out.units[shown] = unit
                events, users, ignored = convert(_unwrap(df), shown)
                out.ignored += ignored
                if events is not None and events.height:
                    out.events.append(_scalars(events, "events"))
                if users is not None and users.height:
                    out.users.append(_scalars(users, "users"))
    if not out.events and not out.users:
        raise IngestError(f"{', '.join(map(str, paths))}: no {tool} events or users found")
    return out


# ---------------------------------------------------------------------- files
def _expand(path: Path, shown: str, tmp: Path) -> Iterator[tuple[Path, str]]:
    """(a readable uncompressed file, its name as shown) for a file, .gz, .zip or folder."""
    if path.is_dir():
        inner = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not inner:
            raise IngestError(f"{shown}: folder holds no files")
        for p in inner:  # ok-loop: files in the folder
            yield from _expand(p, str(p), tmp)
        return
    if not path.exists():
        raise IngestError(f"{shown}: file not found")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic[:2] == b"\x1f\x8b":
        yield _unpacked(_gunzip(path.read_bytes(), shown), _strip_gz(path.name), tmp), shown
    elif magic == b"PK\x03\x04":
        yield from _unzip(path, shown, tmp)
    else:
        yield path, shown


def _strip_gz(name: str) -> str:
    return name[:-3] if name.lower().endswith(".gz") else name


def _gunzip(data: bytes, shown: str) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise IngestError(f"{shown}: not a readable gzip file ({exc})") from None


def _unpacked(data: bytes, name: str, tmp: Path) -> Path:
    folder = Path(tempfile.mkdtemp(dir=tmp))
    target = folder / (Path(name).name or "part")
    target.write_bytes(data)
    return target


def _unzip(path: Path, shown: str, tmp: Path) -> Iterator[tuple[Path, str]]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise IngestError(f"{shown}: not a readable zip file ({exc})") from None
    with archive:
        names = sorted(
            i.filename for i in archive.infolist()
            if not i.is_dir() and not Path(i.filename).name.startswith(".")
        )
        if not names:
            raise IngestError(f"{shown}: zip file holds no files")
        for name in names:  # ok-loop: files in the archive
            where = f"{shown}:{name}"
            try:
                data = archive.read(name)
            except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
                raise IngestError(f"{where}: cannot read from the zip file ({exc})") from None
            if data[:2] == b"\x1f\x8b":
                data, name = _gunzip(data, where), _strip_gz(name)
            yield _unpacked(data, name, tmp), where


def _read(path: Path, shown: str, encoding: str) -> tuple[pl.DataFrame, str]:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return read_parquet(path, shown), "row"
    if suffix in (".csv", ".tsv"):
        return read_csv(path, shown, encoding), "line"
    df = read_ndjson(path, shown, encoding)
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return df, ("record" if head[:1] == b"[" else "line")


def _unwrap(df: pl.DataFrame) -> pl.DataFrame:
    """Batch payloads (``{"batch": [...]}``) and API pages (``{"results": [...]}``) to rows."""
    for key in ("batch", "results"):  # ok-loop: two wrapper names
        dtype = df.schema.get(key)
        if isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct):
            rows = df.select(key, *META).explode(key).filter(pl.col(key).is_not_null())
            return rows.unnest(key)
    return df


# ---------------------------------------------------------------------- helpers
def _col(df: pl.DataFrame, name: str) -> pl.Expr:
    """A top-level column as text, NULL when the file has no such column."""
    if name not in df.columns:
        return pl.lit(None, dtype=pl.String)
    return pl.col(name).cast(pl.String)


def _field(df: pl.DataFrame, struct: str, name: str) -> pl.Expr:
    """A field of a struct column (NULL when absent)."""
    dtype = df.schema.get(struct)
    if not isinstance(dtype, pl.Struct) or name not in {f.name for f in dtype.fields}:
        return pl.lit(None, dtype=pl.String)
    return pl.col(struct).struct.field(name)


def _decoded(df: pl.DataFrame, name: str) -> pl.DataFrame:
    """Column ``name`` as a struct: JSON text (Parquet/CSV exports) is parsed."""
    if name not in df.columns or df.schema[name] != pl.String:
        return df
    text = df[name].fill_null("{}").str.strip_chars().replace("", "{}")
    buf = io.BytesIO((text.str.join("\n").item() + "\n").encode("utf-8"))
    try:
        parsed = pl.read_ndjson(buf, infer_schema_length=None)
    except (pl.exceptions.PolarsError, ValueError) as exc:
        raise IngestError(f"column {name!r} does not hold JSON objects ({exc})") from None
    if parsed.width == 0:
        return df.drop(name)
    return df.with_columns(pl.Series(name, parsed.to_struct(name)))


def _spread(df: pl.DataFrame, struct: str, drop: tuple[str, ...] = ()) -> pl.DataFrame:
    """The fields of ``struct`` as columns (not over existing columns), minus ``drop``.

    Fields without a value in these rows (present only in other kinds of lines of the
    file) are left out.
    """
    dtype = df.schema.get(struct)
    if not isinstance(dtype, pl.Struct):
        return df.drop(struct) if struct in df.columns else df
    taken = set(df.columns)
    fields = [f.name for f in dtype.fields if f.name not in taken and f.name not in drop]
    if fields and df.height:
        present = df.select(
            [pl.col(struct).struct.field(f).is_not_null().any().alias(f) for f in fields]
        ).row(0, named=True)
        fields = [f for f in fields if present[f]]
    return df.with_columns(
        [pl.col(struct).struct.field(f).alias(f) for f in fields]
    ).drop(struct)


def _keep_meta(df: pl.DataFrame) -> list[str]:
    return [*META, *([RAW] if RAW in df.columns else [])]


def _broken(df: pl.DataFrame) -> pl.Expr:
    return pl.col(ERROR).is_not_null()


def _json_text(value: pl.Expr) -> pl.Expr:
    """A list value as its JSON text (vectorised through a one-field struct)."""
    encoded = pl.struct(value.alias("v")).struct.json_encode()
    return pl.when(value.is_not_null()).then(encoded.str.slice(5).str.strip_suffix("}"))


def _scalars(df: pl.DataFrame, kind: str) -> pl.DataFrame:
    """Lists in event properties (and nested lists for users) become JSON text."""
    fixes = []
    for name, dtype in df.schema.items():  # ok-loop: one check per column
        if not isinstance(dtype, pl.List | pl.Array):
            continue
        nested = isinstance(dtype.inner, pl.Struct | pl.List | pl.Array)
        if kind == "events" or nested:
            fixes.append(_json_text(pl.col(name)).alias(name))
    return df.with_columns(fixes) if fixes else df


def _at(expr: pl.Expr, df: pl.DataFrame) -> pl.Series:
    """Parsed times of ``expr`` per row (to order users rows), NULL where unreadable."""
    return parse_timestamps(df.with_columns(expr.alias(AT))[AT])


# ---------------------------------------------------------------------- Segment / RudderStack
def _segment(df: pl.DataFrame, shown: str) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """track/page/screen -> events, identify -> users (traits, else context.traits)."""
    if "type" not in df.columns:
        raise IngestError(f"{shown}: no 'type' field: these are not Segment-spec calls")
    typ = pl.col("type").cast(pl.String)
    ignored = int(df.select((~typ.is_in(_SEGMENT_TYPES) & ~_broken(df)).sum()).item())
    events, _ = segment_lines(df, "events", shown)
    events = _drop_empty(events, _fields_of(df, "properties"))
    df = _merged_traits(df)
    ts_fields = [pl.col(f).cast(pl.String) for f in SEGMENT_TS_FIELDS if f in df.columns]
    stamp = pl.coalesce(ts_fields) if ts_fields else pl.lit(None, dtype=pl.String)
    identify = df.filter(typ == "identify")
    users, _ = segment_lines(identify, "users", shown)
    users = _drop_empty(users, _fields_of(df, "traits"))
    users = users.with_columns(_at(stamp, identify).alias(AT))
    return events, users.drop([RAW] if RAW in users.columns else []), ignored


def _fields_of(df: pl.DataFrame, struct: str) -> list[str]:
    dtype = df.schema.get(struct)
    return [f.name for f in dtype.fields] if isinstance(dtype, pl.Struct) else []


def _drop_empty(df: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """Drop the columns among ``names`` that hold no value (fields of other line types)."""
    names = [n for n in names if n in df.columns and n not in EVENT_KEYS]
    if not names or not df.height:
        return df
    present = df.select([pl.col(n).is_not_null().any() for n in names]).row(0, named=True)
    return df.drop([n for n in names if not present[n]])


def _merged_traits(df: pl.DataFrame) -> pl.DataFrame:
    """``traits`` with the fields of ``context.traits`` it lacks (RudderStack's identify)."""
    inner = _field(df, "context", "traits") if "context" in df.columns else None
    if inner is None:
        return df
    ctx = df.select(inner.alias("__ctx"))
    if not isinstance(ctx.schema["__ctx"], pl.Struct):
        return df
    ctx_fields = [f.name for f in ctx.schema["__ctx"].fields]
    own = df.schema.get("traits")
    own_fields = [f.name for f in own.fields] if isinstance(own, pl.Struct) else []
    exprs = []
    for name in dict.fromkeys([*own_fields, *ctx_fields]):  # ok-loop: one per trait name
        parts = []
        if name in own_fields:
            parts.append(pl.col("traits").struct.field(name))
        if name in ctx_fields:
            parts.append(inner.struct.field(name))
        exprs.append((pl.coalesce(parts) if len(parts) > 1 else parts[0]).alias(name))
    return df.with_columns(pl.struct(exprs).alias("traits"))


# ---------------------------------------------------------------------- Mixpanel
_MIXPANEL_CONSUMED = ("time", "distinct_id", "$insert_id")


def _mixpanel(df: pl.DataFrame, shown: str) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Raw event export lines and Engage (people) profiles."""
    is_event = pl.col("event").is_not_null() if "event" in df.columns else pl.lit(False)
    has_profile = (
        pl.col("$distinct_id").is_not_null() if "$distinct_id" in df.columns else pl.lit(False)
    )
    ev = df.filter(is_event | _broken(df))
    events = _spread(
        ev.select(
            _field(ev, "properties", "distinct_id").cast(pl.String).alias("user_id"),
            _col(ev, "event").alias("event"),
            _field(ev, "properties", "time").alias("ts"),
            _field(ev, "properties", "$insert_id").cast(pl.String).alias("event_id"),
            *(["properties"] if "properties" in ev.columns else []),
            *_keep_meta(ev),
        ),
        "properties",
        drop=_MIXPANEL_CONSUMED,
    )
    people = df.filter(has_profile & ~is_event & ~_broken(df))
    users = _spread(
        people.select(
            _col(people, "$distinct_id").alias("user_id"),
            *(["$properties"] if "$properties" in people.columns else []),
            pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias(AT),
            *META,
        ),
        "$properties",
    )
    ignored = int(df.select((~is_event & ~has_profile & ~_broken(df)).sum()).item())
    return events, users, ignored


# ---------------------------------------------------------------------- Amplitude
def _amplitude(df: pl.DataFrame, shown: str) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Export API lines: every event, and its user_properties as the user's attributes."""
    user = pl.coalesce(_col(df, "user_id"), _col(df, "device_id")).alias("user_id")
    is_event = pl.col("event_type").is_not_null() if "event_type" in df.columns else pl.lit(False)
    ev = df.filter(is_event | _broken(df))
    extra = [pl.col(c) for c in AMPLITUDE_EVENT_FIELDS if c in ev.columns]
    events = _spread(
        ev.select(
            user,
            _col(ev, "event_type").alias("event"),
            _col(ev, "event_time").alias("ts"),
            pl.coalesce(_col(ev, "uuid"), _col(ev, "$insert_id"), _col(ev, "insert_id")).alias(
                "event_id"
            ),
            *extra,
            *(["event_properties"] if "event_properties" in ev.columns else []),
            *_keep_meta(ev),
        ),
        "event_properties",
    )
    us = df.filter(is_event & ~_broken(df))
    tops = [pl.col(c).alias(f"__top_{c}") for c in AMPLITUDE_USER_FIELDS if c in us.columns]
    users = _spread(
        us.select(
            user,
            *(["user_properties"] if "user_properties" in us.columns else []),
            *tops,
            _at(_col(us, "event_time"), us).alias(AT),
            *META,
        ),
        "user_properties",
    )
    # top-level device/location fields where user_properties has no value of that name
    fill = []
    for c in AMPLITUDE_USER_FIELDS:  # ok-loop: a few field names
        if f"__top_{c}" not in users.columns:
            continue
        own = pl.col(c) if c in users.columns else pl.lit(None)
        fill.append(pl.coalesce(own, pl.col(f"__top_{c}")).alias(c))
    users = users.with_columns(fill).drop([c for c in users.columns if c.startswith("__top_")])
    ignored = int(df.select((~is_event & ~_broken(df)).sum()).item())
    return events, users, ignored


# ---------------------------------------------------------------------- PostHog
def _posthog(df: pl.DataFrame, shown: str) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Events (batch / file-download export) with person_properties; persons exports."""
    try:
        df = _decoded(_decoded(df, "properties"), "person_properties")
    except IngestError as exc:
        raise IngestError(f"{shown}: {exc}") from None
    if "distinct_id" not in df.columns and not df.select(_broken(df).any()).item():
        raise IngestError(f"{shown}: no 'distinct_id' field: this is not a PostHog export")
    is_event = pl.col("event").is_not_null() if "event" in df.columns else pl.lit(False)
    has_id = _col(df, "distinct_id").is_not_null()
    ev = df.filter(is_event | _broken(df))
    events = _spread(
        ev.select(
            _col(ev, "distinct_id").alias("user_id"),
            _col(ev, "event").alias("event"),
            (pl.col("timestamp") if "timestamp" in ev.columns else pl.lit(None)).alias("ts"),
            _col(ev, "uuid").alias("event_id"),
            *([_col(ev, "person_id").alias("person_id")] if "person_id" in ev.columns else []),
            *(["properties"] if "properties" in ev.columns else []),
            *_keep_meta(ev),
        ),
        "properties",
    )
    with_person = df.filter(is_event & ~_broken(df))
    users = _spread(
        with_person.select(
            _col(with_person, "distinct_id").alias("user_id"),
            *(["person_properties"] if "person_properties" in with_person.columns else []),
            _at(
                pl.col("timestamp") if "timestamp" in with_person.columns else pl.lit(None),
                with_person,
            ).alias(AT),
            *META,
        ),
        "person_properties",
    )
    persons = df.filter(~is_event & has_id & ~_broken(df))
    if persons.height:  # persons model: one row per distinct_id with the person's properties
        users = pl.concat(
            [
                users,
                _spread(
                    persons.select(
                        _col(persons, "distinct_id").alias("user_id"),
                        *(["properties"] if "properties" in persons.columns else []),
                        pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias(AT),
                        *META,
                    ),
                    "properties",
                ),
            ],
            how="diagonal_relaxed",
        )
    ignored = int(df.select((~is_event & ~has_id & ~_broken(df)).sum()).item())
    return events, users, ignored


_CONVERTERS = {
    "segment": _segment,
    "rudderstack": _segment,
    "mixpanel": _mixpanel,
    "amplitude": _amplitude,
    "posthog": _posthog,
}

__all__ = ["TOOLS", "Export", "read_export"]
