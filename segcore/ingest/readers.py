"""Read one input file into a DataFrame with its source position per row.

Every reader returns the file's columns, with their values exactly as written (CSV:
every value as text, an empty cell as NULL; spaces are kept), plus three bookkeeping
columns whose names start with a NUL character, so that no column of a file (even one
called ``__line``) can collide with them:

- :data:`FILE`  the path as given,
- :data:`LINE`  1-based position: the physical line for CSV (the header is line 1)
  and NDJSON, the row number for Parquet,
- :data:`ERROR` why the row could not be read (a broken NDJSON line), else NULL;
  such rows also carry :data:`RAW`, the line's text.

Whole-file problems (empty file, binary data, wrong encoding, corrupt Parquet)
raise :class:`~segcore.errors.IngestError` naming the file and, where known, the line.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
from collections import Counter
from pathlib import Path

import polars as pl

from segcore.errors import IngestError

FILE, LINE, ERROR = "\x00file", "\x00line", "\x00error"
RAW = "\x00raw"  # the text of a broken NDJSON line (kept for the rejects file)
META = (FILE, LINE, ERROR)

FORMATS = ("csv", "parquet", "ndjson", "segment")
MAX_JSON_DEPTH = 100  # polars' JSON reader crashes the process on very deep nesting
EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "ndjson",
}


def detect_format(path: Path, format: str | None) -> str:
    """The format to read ``path`` with: ``format`` if given, else from the extension."""
    if format is not None:
        if format not in FORMATS:
            raise IngestError(f"unknown format {format!r}: use one of {', '.join(FORMATS)}")
        return format
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise IngestError(
            f"{path}: cannot tell the format from the extension {path.suffix!r}; "
            "pass --format csv|parquet|ndjson|segment"
        )
    return fmt


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _read_text(path: Path, shown: str, encoding: str = "utf-8") -> bytes:
    """The file as non-empty UTF-8 bytes (a BOM is dropped; other encodings transcoded)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise IngestError(f"{shown}: file not found (or removed while importing)") from None
    except IsADirectoryError:
        raise IngestError(f"{shown}: is a directory, not a file") from None
    except OSError as exc:
        raise IngestError(f"{shown}: cannot read: {exc.strerror or exc}") from None
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise IngestError(f"unknown encoding {encoding!r}") from None
    if codec != "utf-8":
        try:
            data = data.decode(codec).encode("utf-8")
        except UnicodeDecodeError as exc:
            raise IngestError(
                f"{shown}: line {_line_of(data, exc.start)}: not {encoding} text "
                f"(byte 0x{data[exc.start]:02x})"
            ) from None
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise IngestError(
            f"{shown}: line 1: UTF-16 text; re-save the file as UTF-8 or pass --encoding utf-16"
        )
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data.strip():
        raise IngestError(f"{shown}: file is empty")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise IngestError(
            f"{shown}: line {_line_of(data, nul)}: binary data (NUL byte), not a text file"
        )
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IngestError(
            f"{shown}: line {_line_of(data, exc.start)}: not UTF-8 text "
            f"(byte 0x{data[exc.start]:02x}); re-save the file as UTF-8 or pass "
            "--encoding (e.g. latin-1)"
        ) from None
    return data


def _with_meta(df: pl.DataFrame, shown: str, lines: pl.Series | None = None) -> pl.DataFrame:
    line = lines if lines is not None else pl.int_range(1, pl.len() + 1, dtype=pl.Int64)
    return df.with_columns(
        pl.lit(shown, dtype=pl.String).alias(FILE),
        (line if isinstance(line, pl.Expr) else pl.lit(line)).alias(LINE),
        pl.lit(None, dtype=pl.String).alias(ERROR),
    )


# ---------------------------------------------------------------------- CSV
def read_csv(path: Path, shown: str, encoding: str = "utf-8") -> pl.DataFrame:
    """Every column as a string; :data:`LINE` counts the header as line 1."""
    data = _read_text(path, shown, encoding)
    sep = _separator(data, path)
    try:
        df = pl.read_csv(
            io.BytesIO(data),
            infer_schema=False,
            separator=sep,
        )
    except pl.exceptions.PolarsError as exc:
        raise IngestError(f"{shown}: {_csv_problem(data, sep, exc)}") from None
    if df.width == 0 or not any(c.strip() for c in df.columns):
        raise IngestError(f"{shown}: line 1: no header row")
    names = [c.strip() for c in _csv_header(data, sep)]
    dupes = sorted(c for c, n in Counter(names).items() if n > 1)
    if dupes:
        raise IngestError(f"{shown}: line 1: duplicate column {dupes[0]!r}")
    if df.height == 0:
        raise IngestError(f"{shown}: file has a header but no rows")
    line = pl.int_range(2, pl.len() + 2, dtype=pl.Int64)
    if data.count(b"\n") > df.height + 1:  # quoted values span lines: count them
        inner = pl.sum_horizontal(pl.all().str.count_matches("\n", literal=True).fill_null(0))
        line = line + inner.cum_sum().shift(1, fill_value=0).cast(pl.Int64)
    df = _with_meta(df.rename(lambda c: c.strip()), shown, line)
    # An empty cell is a missing value; every other value is kept exactly, spaces too.
    data_cols = [c for c in df.columns if c not in META]
    return df.with_columns(pl.col(data_cols).replace("", None)).filter(
        pl.any_horizontal(pl.col(data_cols).is_not_null())
    )


def _separator(data: bytes, path: Path) -> str:
    """Tab for ``.tsv``; else the most frequent of ``, ; | TAB`` in the header line."""
    if path.suffix.lower() == ".tsv":
        return "\t"
    header = data.split(b"\n", 1)[0]
    counts = {sep: header.count(sep.encode()) for sep in (",", ";", "\t", "|")}
    best = max(counts, key=lambda k: counts[k])
    return best if counts[best] > counts[","] else ","


def _csv_header(data: bytes, sep: str) -> list[str]:
    head = data[: 1 << 16].decode("utf-8", errors="ignore")
    return next(csv.reader(io.StringIO(head), delimiter=sep), [])


def _csv_problem(data: bytes, sep: str, exc: Exception) -> str:
    """Locate a malformed CSV row (error path only: polars does not say where)."""
    reader = csv.reader(io.StringIO(data.decode("utf-8")), delimiter=sep)
    width = None
    for row in reader:  # ok-loop: error path only, finds the first malformed row
        if width is None:
            width = len(row)
        elif len(row) > width:
            return f"line {reader.line_num}: {len(row)} fields where the header has {width}"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"not a readable CSV file ({first})"


# ---------------------------------------------------------------------- Parquet
def read_parquet(path: Path, shown: str, encoding: str = "utf-8") -> pl.DataFrame:
    """A Parquet file; :data:`LINE` is the 1-based row number.

    The file is opened once, so that it cannot vanish or be replaced half-way.
    """
    try:
        fh = open(path, "rb")  # closed below
    except FileNotFoundError:
        raise IngestError(f"{shown}: file not found (or removed while importing)") from None
    except IsADirectoryError:
        raise IngestError(f"{shown}: is a directory, not a file") from None
    except OSError as exc:
        raise IngestError(f"{shown}: cannot read: {exc.strerror or exc}") from None
    try:
        if os.fstat(fh.fileno()).st_size == 0:
            raise IngestError(f"{shown}: file is empty")
        df = pl.read_parquet(fh)
    except (pl.exceptions.PolarsError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise IngestError(
            f"{shown}: not a valid Parquet file (truncated or corrupt: {first})"
        ) from None
    finally:
        fh.close()
    if df.height == 0:
        raise IngestError(f"{shown}: file has no rows")
    return _with_meta(df, shown)


# ---------------------------------------------------------------------- NDJSON
def read_ndjson(path: Path, shown: str, encoding: str = "utf-8") -> pl.DataFrame:
    """One JSON object per line (blank lines ignored); broken lines get :data:`ERROR`.

    A file holding one JSON array of objects is read too (:data:`LINE` is then the
    1-based position in the array).
    """
    return _read_json(path, shown, encoding)[0]


def _read_json(path: Path, shown: str, encoding: str) -> tuple[pl.DataFrame, str]:
    """:func:`read_ndjson` and the word for a position: ``line``, or ``record`` (array)."""
    data = _read_text(path, shown, encoding)
    if data.lstrip()[:1] == b"[":
        return _read_json_array(data, shown), "record"
    return _read_json_lines(data, shown), "line"


def _read_json_lines(data: bytes, shown: str) -> pl.DataFrame:
    lines = pl.Series("raw", data.decode("utf-8").splitlines(), dtype=pl.String)
    frame = (
        pl.DataFrame({"raw": lines})
        .with_row_index(LINE, offset=1)
        .with_columns(pl.col(LINE).cast(pl.Int64))
        .filter(pl.col("raw").str.strip_chars() != "")
    )
    broken = _too_deep(frame)
    good = frame.join(broken, on=LINE, how="anti")
    try:
        df = _parse_json_lines(good["raw"]) if good.height else pl.DataFrame()
    except _JsonError:
        broken = pl.concat([broken, _broken_lines(good)]).sort(LINE)
        good = frame.join(broken, on=LINE, how="anti")
        try:
            df = _parse_json_lines(good["raw"]) if good.height else pl.DataFrame()
        except _JsonError as exc:
            raise IngestError(f"{shown}: cannot read as NDJSON ({exc})") from None
    if not good.height and broken.height:  # no readable line: name the first problem
        first = broken.sort(LINE).row(0, named=True)
        raise IngestError(f"{shown}: line {first[LINE]}: {first[ERROR]}")
    df = df.with_columns(
        pl.lit(shown, dtype=pl.String).alias(FILE),
        pl.Series(LINE, good[LINE], dtype=pl.Int64),
        pl.lit(None, dtype=pl.String).alias(ERROR),
    )
    if broken.height:
        bad = broken.join(frame.rename({"raw": RAW}), on=LINE, how="left").with_columns(
            pl.lit(shown, dtype=pl.String).alias(FILE)
        )
        df = pl.concat([df, bad], how="diagonal_relaxed").sort(LINE)
    return df


def _read_json_array(data: bytes, shown: str) -> pl.DataFrame:
    whole = pl.DataFrame({LINE: [1], "raw": [data.decode("utf-8")]})
    if _too_deep(whole).height:
        raise IngestError(f"{shown}: JSON nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        df = pl.read_json(io.BytesIO(data), infer_schema_length=None)
    except (pl.exceptions.PolarsError, ValueError) as exc:
        try:
            json.loads(data)
        except json.JSONDecodeError as jexc:
            raise IngestError(f"{shown}: line {jexc.lineno}: broken JSON ({jexc.msg})") from None
        raise IngestError(f"{shown}: not a JSON array of objects ({exc})") from None
    if df.height == 0:
        raise IngestError(f"{shown}: file has no records")
    return _with_meta(df, shown)


class _JsonError(Exception):
    pass


def _too_deep(frame: pl.DataFrame) -> pl.DataFrame:
    """:data:`LINE`, :data:`ERROR` of the lines nested deeper than :data:`MAX_JSON_DEPTH`.

    A vectorised upper bound (brackets inside strings count too) picks the candidates;
    only those are measured exactly.
    """
    sign = {"[": 1, "{": 1, "]": -1, "}": -1}
    bound = pl.col("raw").str.extract_all(r"[\[\]{}]").list.eval(
        pl.element().replace_strict(sign, return_dtype=pl.Int32).cum_sum().max()
    )
    openers = pl.col("raw").str.count_matches(r"[\[{]")  # cheap: most lines stop here
    suspects = frame.filter(openers > MAX_JSON_DEPTH)
    suspects = suspects.filter(bound.list.first().fill_null(0) > MAX_JSON_DEPTH)
    lines = [
        line
        for line, raw in zip(suspects[LINE], suspects["raw"], strict=True)  # ok-loop: rare
        if _json_depth(raw) > MAX_JSON_DEPTH
    ]
    reason = f"JSON nested more than {MAX_JSON_DEPTH} levels deep"
    return pl.DataFrame(
        {LINE: lines, ERROR: [reason] * len(lines)}, schema={LINE: pl.Int64, ERROR: pl.String}
    )


def _json_depth(text: str) -> int:
    """The nesting depth of JSON text, brackets inside strings not counted (error path)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:  # ok-loop: only lines whose upper bound is already too deep
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _parse_json_lines(raw: pl.Series) -> pl.DataFrame:
    buf = io.BytesIO(("\n".join(raw.to_list()) + "\n").encode("utf-8"))
    try:
        return pl.read_ndjson(buf, infer_schema_length=None)
    except (pl.exceptions.PolarsError, ValueError) as exc:
        raise _JsonError(str(exc)) from None


def _broken_lines(frame: pl.DataFrame) -> pl.DataFrame:
    """Line numbers and problems of the lines that are not JSON objects (error path)."""
    lines: list[int] = []
    errors: list[str] = []
    for line, raw in zip(frame[LINE], frame["raw"], strict=True):  # ok-loop: error path only
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            lines.append(line)
            errors.append(f"broken JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(value, dict):
            lines.append(line)
            errors.append(f"not a JSON object (found {type(value).__name__})")
    return pl.DataFrame({LINE: lines, ERROR: errors}, schema={LINE: pl.Int64, ERROR: pl.String})


READERS = {"csv": read_csv, "parquet": read_parquet, "ndjson": read_ndjson, "segment": read_ndjson}


def read_file(path: Path, fmt: str, encoding: str = "utf-8") -> tuple[pl.DataFrame, str]:
    """Read ``path`` in format ``fmt``: the rows (see the module docstring) and the
    word for a position in it (``line``, ``row`` for Parquet, ``record`` in a JSON array).

    Each file is read once: one that vanishes half-way is "not found", never a traceback.
    """
    path = Path(path)
    if fmt == "parquet":
        return read_parquet(path, str(path), encoding), "row"
    if fmt in ("ndjson", "segment"):
        return _read_json(path, str(path), encoding)
    return READERS[fmt](path, str(path), encoding), "line"
