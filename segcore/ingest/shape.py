"""Turn one file's raw columns into the events/users shape (before validation).

- nested ``properties`` (events) / ``traits`` (users) objects are flattened into columns;
- Segment-spec lines (``--format segment``) become events (``track``; ``page`` and
  ``screen`` as the events ``page_viewed`` / ``screen_viewed``) or users (``identify``);
  lines of any other type (``group``, ``alias``...) are ignored and counted;
- ``mapping`` renames source columns to target columns; ``event`` sets a constant name;
- CSV string columns other than the ids get a type inferred from all their values;
- ids follow the one id rule of :mod:`segcore.store.ids`.
"""

from __future__ import annotations

import polars as pl

from segcore.errors import IngestError
from segcore.ingest.readers import ERROR, FILE, LINE, META, RAW
from segcore.ingest.timestamps import parse_timestamps
from segcore.store.ids import id_text

NESTED = {"events": "properties", "users": "traits"}
ID_COLUMNS = ("user_id", "event", "event_id")
SEGMENT_EVENT_TYPES = {"track": None, "page": "page_viewed", "screen": "screen_viewed"}
SEGMENT_TS_FIELDS = ("timestamp", "originalTimestamp", "receivedAt", "sentAt")

_INT = r"^\s*[+-]?(0|[1-9]\d*)\s*$"
_FLOAT = r"^\s*[+-]?((0|[1-9]\d*)(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$"
_BOOL = r"(?i)^\s*(true|false)\s*$"
_DATE = r"^\s*\d{4}-\d{2}-\d{2}\s*$"
_DATETIME = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}"
_PATTERNS = (
    ("int", _INT),
    ("float", _FLOAT),
    ("bool", _BOOL),
    ("date", _DATE),
    ("datetime", _DATETIME),
)
_TEMPORAL = 3  # index of the first temporal pattern


def flatten(df: pl.DataFrame, kind: str) -> pl.DataFrame:
    """Flatten the nested ``properties``/``traits`` object; top-level columns win a clash."""
    nested = NESTED[kind]
    if nested not in df.columns or not isinstance(df.schema[nested], pl.Struct):
        return df
    fields = [f.name for f in df.schema[nested].fields if f.name not in df.columns]
    inner = [pl.col(nested).struct.field(f).alias(f) for f in fields]
    return df.with_columns(inner).drop(nested)


def segment_lines(df: pl.DataFrame, kind: str, shown: str) -> tuple[pl.DataFrame, int]:
    """Segment-spec lines to the events or users shape; also the number of ignored lines."""
    if "type" not in df.columns:
        raise IngestError(f"{shown}: no 'type' field: these are not Segment-spec lines")
    cols = set(df.columns)

    def field(name: str) -> pl.Expr:
        return pl.col(name).cast(pl.String) if name in cols else pl.lit(None, dtype=pl.String)

    typ = pl.col("type").cast(pl.String)
    wanted = list(SEGMENT_EVENT_TYPES) if kind == "events" else ["identify"]
    keep = typ.is_in(wanted) | pl.col(ERROR).is_not_null()
    ignored = int(df.select((~keep).sum()).item())
    df = df.filter(keep)
    base = [pl.coalesce(field("userId"), field("anonymousId")).alias("user_id")]
    if kind == "events":
        name = pl.when(typ == "track").then(field("event"))
        for t, ev in SEGMENT_EVENT_TYPES.items():
            if ev is not None:
                name = name.when(typ == t).then(pl.lit(ev))
        ts_fields = [pl.col(f) for f in SEGMENT_TS_FIELDS if f in cols]
        base += [
            name.alias("event"),
            (
                pl.coalesce([f.cast(pl.String) for f in ts_fields])
                if ts_fields
                else pl.lit(None, dtype=pl.String)
            ).alias("ts"),
            field("messageId").alias("event_id"),
        ]
    nested = NESTED[kind]
    extra = [nested] if nested in cols else []
    out = df.select(*base, *extra, *META, *([RAW] if RAW in cols else []))
    return flatten(out, kind), ignored


def apply_mapping(
    df: pl.DataFrame, mapping: dict[str, str], event: str | None, shown: str
) -> pl.DataFrame:
    """Rename ``source -> target`` per ``mapping``; set the constant ``event`` name."""
    for target, source in mapping.items():  # ok-loop: a few mapped columns
        if source not in df.columns:
            have = ", ".join(c for c in df.columns if c not in (*META, RAW))
            raise IngestError(
                f"{shown}: column {source!r} (mapped to {target}) not found; columns are: {have}"
            )
    copies = [pl.col(s).alias(t) for t, s in mapping.items()]
    gone = [s for s in set(mapping.values()) if s not in mapping]
    df = df.with_columns(copies).drop(gone)
    if event is not None:
        df = df.with_columns(pl.lit(event, dtype=pl.String).alias("event"))
    return df


def require(
    df: pl.DataFrame, kind: str, shown: str, provided: set[str] | frozenset[str] = frozenset()
) -> None:
    """Refuse a file that lacks a required column (``provided``: derived later)."""
    needed = ["user_id", "event", "ts"] if kind == "events" else ["user_id"]
    for name in needed:  # ok-loop: three column names
        if name not in df.columns and name not in provided:
            have = ", ".join(c for c in df.columns if c not in (*META, RAW))
            hint = " or --event NAME" if name == "event" else ""
            raise IngestError(
                f"{shown}: missing required column {name!r} (columns: {have}); "
                f"map one with --map {name}=COLUMN{hint} or derive it with --derive"
            )


def infer_csv_types(
    df: pl.DataFrame, skip: set[str] | frozenset[str], temporal_only: bool = False
) -> pl.DataFrame:
    """Give CSV string columns a type that every non-NULL value fits (else String).

    Tried in order: integer (64-bit; a column with a larger integer stays text, never a
    rounded float), float, boolean (``true``/``false``), date (``YYYY-MM-DD``), ISO
    timestamp (to UTC); spaces around such a value are not part of it. Integers with
    leading zeros (``007``) stay strings; so does every id column. ``temporal_only``
    (for JSON, whose other types are typed already) tries only the date and timestamp
    forms. Text columns are kept exactly as read.
    """
    names = [
        c
        for c, dtype in df.schema.items()
        if c not in skip and c not in (*META, RAW) and dtype == pl.String
    ]
    if not names or df.height == 0:
        return df
    # one long column of (name, value): a fixed number of expressions, whatever the width
    v = pl.col("v")
    tags = [tag for tag, _ in _PATTERNS[_TEMPORAL if temporal_only else 0 :]]
    checks = [
        (v.str.contains(pattern) | v.is_null()).all().alias(tag)
        for tag, pattern in _PATTERNS[_TEMPORAL if temporal_only else 0 :]
    ]
    if not temporal_only:  # 64-bit or not: an integer too large for Int64 fails the cast
        int_nulls = v.str.strip_chars().cast(pl.Int64, strict=False).null_count()
        checks.append((int_nulls == v.null_count()).alias("fits"))
    checks.append(v.is_not_null().any().alias("any"))
    long = df.select(names).unpivot(variable_name="c", value_name="v")
    found = long.group_by("c").agg(checks)
    rows = {r["c"]: r for r in found.iter_rows(named=True)}  # ok-loop: one row per column
    flags = {f"{c}\x00{tag}": rows[c][tag] for c in names for tag in (*tags, "any")}
    fits = {c: rows[c].get("fits", False) for c in names}
    casts = []
    for c in names:  # ok-loop: one cast per column
        if not flags[f"{c}\x00any"]:
            continue
        text = pl.col(c).str.strip_chars()
        if flags.get(f"{c}\x00int"):
            if fits[c]:
                casts.append(text.cast(pl.Int64, strict=False).alias(c))
        elif flags.get(f"{c}\x00float"):
            casts.append(text.cast(pl.Float64, strict=False).alias(c))
        elif flags.get(f"{c}\x00bool"):
            casts.append(text.str.to_lowercase().eq("true").alias(c))
        elif flags[f"{c}\x00date"]:
            casts.append(text.str.to_date("%Y-%m-%d", strict=False).alias(c))
        elif flags[f"{c}\x00datetime"]:
            parsed = parse_timestamps(df[c])
            if parsed.null_count() == df[c].null_count():
                casts.append(pl.lit(parsed).alias(c))
    return df.with_columns(casts) if casts else df


def scalar_columns(df: pl.DataFrame, kind: str, shown: str) -> pl.DataFrame:
    """Nested objects become JSON text; lists are kept for users as lists of strings."""
    fixes = []
    for name, dtype in df.schema.items():  # ok-loop: one check per column
        if name in META:
            continue
        if isinstance(dtype, pl.Struct):
            fixes.append(pl.col(name).struct.json_encode().alias(name))
        elif isinstance(dtype, pl.List | pl.Array):
            if kind == "events":
                raise IngestError(
                    f"{shown}: column {name!r} holds lists; event properties must be scalars"
                )
            inner = dtype.inner
            if isinstance(inner, pl.Struct | pl.List | pl.Array):
                raise IngestError(
                    f"{shown}: column {name!r} holds nested lists; user attributes may be "
                    "scalars or lists of strings"
                )
            fixes.append(pl.col(name).cast(pl.List(pl.String)).alias(name))
        elif dtype == pl.Object or isinstance(dtype, pl.Decimal):
            fixes.append(pl.col(name).cast(pl.Float64, strict=False).alias(name))
        elif dtype == pl.Categorical or isinstance(dtype, pl.Enum):
            fixes.append(pl.col(name).cast(pl.String).alias(name))
    return df.with_columns(fixes) if fixes else df


def normalise_ids(df: pl.DataFrame) -> pl.DataFrame:
    """``user_id`` and ``event_id`` under the id rule (:mod:`segcore.store.ids`: ``17850.0``
    from any format is ``17850``); ``event`` names as text without surrounding spaces.
    Blanks are NULL.
    """
    exprs = []
    for c in ID_COLUMNS:  # ok-loop: three columns
        if c not in df.columns:
            continue
        if c == "event":
            name = pl.col(c).cast(pl.String).str.strip_chars()
            exprs.append(pl.when(name != "").then(name).alias(c))
        else:
            exprs.append(id_text(pl.col(c), df.schema[c]).alias(c))
    return df.with_columns(exprs)


__all__ = [
    "FILE",
    "LINE",
    "apply_mapping",
    "flatten",
    "infer_csv_types",
    "normalise_ids",
    "require",
    "scalar_columns",
    "segment_lines",
]
