"""Per-row validation: required values, timestamps, and casts to the stored column types.

Each row gets :data:`KIND` (a short category for the summary line, e.g. ``no user_id``)
and :data:`REASON` (the detail for the error message and the rejects file), both NULL for
a valid row. The first problem of a row wins. Bookkeeping names start with a NUL
character, so no column of an input file can collide with them.
"""

from __future__ import annotations

import polars as pl

from segcore.errors import IngestError
from segcore.ingest.readers import ERROR, FILE, LINE
from segcore.ingest.timestamps import UTC_US, parse_timestamps

KIND, REASON = "\x00kind", "\x00reason"
TS_RAW = "\x00ts_raw"  # ``ts`` as read, for messages and the rejects file
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")


def _show(value: pl.Expr) -> pl.Expr:
    return pl.lit("'") + value.cast(pl.String).str.slice(0, 60) + pl.lit("'")


def _add(df: pl.DataFrame, cond: pl.Expr, kind: str, reason: pl.Expr) -> pl.DataFrame:
    """Set kind/reason on rows where ``cond`` holds and no earlier problem was found."""
    hit = pl.col(KIND).is_null() & cond.fill_null(False)
    return df.with_columns(
        pl.when(hit).then(pl.lit(kind)).otherwise(pl.col(KIND)).alias(KIND),
        pl.when(hit).then(reason).otherwise(pl.col(REASON)).alias(REASON),
    )


def parse_ts(df: pl.DataFrame) -> pl.DataFrame:
    """``ts`` parsed to UTC (NULL where it cannot be), the value as read in :data:`TS_RAW`.

    Done per file, before files of different formats are put together.
    """
    raw = df["ts"]
    if isinstance(raw.dtype, pl.Duration | pl.Time):  # not instants: shown as text, refused
        raw = raw.dt.to_string()
    return df.with_columns(parse_timestamps(raw).alias("ts"), raw.alias(TS_RAW))


def check_required(df: pl.DataFrame, kind: str) -> pl.DataFrame:
    """Broken lines, missing ids/names, unparseable ``ts`` (which gets parsed here)."""
    df = df.with_columns(
        pl.col(ERROR).alias(REASON),
        pl.when(pl.col(ERROR).is_not_null()).then(pl.lit("were broken lines")).alias(KIND),
    )
    df = _add(df, pl.col("user_id").is_null(), "had no user_id", pl.lit("no user_id"))
    if kind == "events":
        df = _add(df, pl.col("event").is_null(), "had no event name", pl.lit("no event name"))
        if TS_RAW not in df.columns:
            df = parse_ts(df)
        missing = pl.col(TS_RAW).is_null()
        if df.schema[TS_RAW] == pl.String:
            missing = missing | (pl.col(TS_RAW).str.strip_chars() == "")
        df = _add(df, missing, "had no ts", pl.lit("no ts"))
        df = _add(
            df,
            pl.col("ts").is_null(),
            "had an unparseable ts",
            pl.lit("unparseable ts ") + _show(pl.col(TS_RAW)),
        )
    return df


def _compatible(src: pl.DataType, target: pl.DataType) -> bool:
    """Whether values of ``src`` may be cast into a stored ``target`` column at all."""
    if src == target or src == pl.Null or src == pl.String or target == pl.String:
        return True
    if src.is_numeric() and target.is_numeric():
        return True
    if src.is_temporal() and isinstance(target, pl.Datetime):
        return True
    return isinstance(src, pl.List) and isinstance(target, pl.List)


def cast_expr(name: str, src: pl.DataType, target: pl.DataType) -> pl.Expr:
    """Column ``name`` (of type ``src``) as ``target``; NULL where a value does not fit."""
    col = pl.col(name)
    if src == target:
        return col
    if not _compatible(src, target):
        return pl.lit(None, dtype=target)
    if target == pl.String:
        if isinstance(src, pl.List):
            return col.list.join(",")
        return col.cast(pl.String)
    if target == pl.Boolean and src == pl.String:
        low = col.str.strip_chars().str.to_lowercase()
        return pl.when(low.is_in(_TRUE)).then(True).when(low.is_in(_FALSE)).then(False)
    if target == pl.Date and src == pl.String:
        return col.str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
    if target.is_integer() and src.is_float():
        return pl.when(col == col.floor()).then(col.cast(target, strict=False))
    if target.is_integer() and src == pl.String:
        text = col.str.strip_chars()
        num = text.cast(pl.Float64, strict=False)  # only for "6.0": digits are cast exactly
        whole = pl.when(~text.str.contains(r"^[+-]?\d+$") & (num == num.floor()))
        return pl.coalesce(text.cast(target, strict=False), whole.then(num.cast(target, strict=False)))
    if isinstance(target, pl.Datetime) and src == pl.Date:
        return col.cast(pl.Datetime(target.time_unit)).dt.replace_time_zone(target.time_zone)
    if isinstance(target, pl.List):
        if isinstance(src, pl.List):
            return col.cast(target, strict=False)
        return col.cast(pl.String).str.split(",").cast(target, strict=False)
    try:
        return col.cast(target, strict=False)
    except Exception:  # no cast exists: every value fails
        return pl.lit(None, dtype=target)


def _casts(df: pl.DataFrame, exprs: dict[str, pl.Expr],
           dtypes: dict[str, pl.DataType]) -> pl.DataFrame:
    """Evaluate ``name -> cast`` in one pass; a cast Polars cannot run gives NULLs."""
    try:
        return df.select(e.alias(n) for n, e in exprs.items())
    except pl.exceptions.PolarsError:  # rare: find the casts that fail, one by one
        cols = []
        for n, e in exprs.items():  # ok-loop: error path, one select per column
            try:
                cols.append(df.select(e.alias(n)).to_series())
            except pl.exceptions.PolarsError:
                cols.append(pl.Series(n, [None] * df.height, dtype=dtypes[n]))
        return pl.DataFrame(cols)


def cast_to(df: pl.DataFrame, targets: dict[str, pl.DataType]) -> pl.DataFrame:
    """Cast columns to ``targets``; a value that does not fit marks its row invalid.

    Datetime targets of string columns are parsed like ``ts``. All columns are cast in
    one pass (time linear in the number of columns); the first column (in ``targets``
    order) whose value does not fit names the problem of a row.
    """
    schema = df.schema
    exprs: dict[str, pl.Expr] = {}
    dtypes: dict[str, pl.DataType] = {}
    for name, target in targets.items():  # ok-loop: one cast per column
        src = schema.get(name)
        if src is None or src == target:
            continue
        if isinstance(target, pl.Datetime) and src == pl.String:
            exprs[name] = pl.lit(parse_timestamps(df[name]).cast(target))
        else:
            exprs[name] = cast_expr(name, src, target)
        dtypes[name] = target
    if not exprs:
        return df
    new = _casts(df, exprs, dtypes)
    tmp = {name: f"\x00new{i}" for i, name in enumerate(dtypes)}
    work = pl.concat([df.select(list(dtypes)), new.rename(tmp)], how="horizontal")
    bads = {}
    for name in dtypes:  # ok-loop: one check per cast column
        bad = pl.col(name).is_not_null() & pl.col(tmp[name]).is_null()
        if schema[name] == pl.String:
            bad = bad & (pl.col(name).str.strip_chars() != "")
        bads[name] = bad
    if work.select(pl.any_horizontal(list(bads.values())).any()).item():  # rare: name them
        reason = work.select(
            pl.coalesce(
                pl.when(bad).then(
                    pl.lit(f"column {name!r} is {dtypes[name]} in the store but the value ")
                    + _show(pl.col(name))
                    + pl.lit(f" is not {dtypes[name]}")
                )
                for name, bad in bads.items()
            )
        ).to_series()
        df = _add(df, pl.lit(reason).is_not_null(), "had a value of the wrong type", pl.lit(reason))
    return df.with_columns(new)


def first_problem(df: pl.DataFrame, units: dict[str, str]) -> str:
    """The error line for the first invalid row: ``file: line N: problem``."""
    row = df.filter(pl.col(REASON).is_not_null()).row(0, named=True)
    return f"{row[FILE]}: {units.get(row[FILE], 'line')} {row[LINE]}: {row[REASON]}"


def raise_first(df: pl.DataFrame, units: dict[str, str]) -> None:
    """Refuse the import when any row is invalid."""
    if df.select(pl.col(REASON).is_not_null().any()).item():
        raise IngestError(first_problem(df, units))


def summary_line(df: pl.DataFrame, total: int) -> str:
    """``1,204 of 50,000 rows had no user_id; 3 of 50,000 rows had an unparseable ts``."""
    counts = (
        df.filter(pl.col(KIND).is_not_null())
        .group_by(KIND)
        .agg(pl.len().alias("n"))
        .sort(["n", KIND], descending=[True, False])
    )
    return "; ".join(
        f"{n:,} of {total:,} rows {k}"
        for k, n in zip(counts[KIND], counts["n"], strict=True)  # ok-loop: a few categories
    )


def default_type(dtype: pl.DataType) -> pl.DataType:
    """The stored type for a new column (NULL-only columns become strings)."""
    if dtype == pl.Null:
        return pl.String()
    if isinstance(dtype, pl.Datetime):
        return UTC_US
    return dtype
