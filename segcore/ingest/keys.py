"""Event ids from key columns, re-import checks and id matching reports.

- ``--key InvoiceNo,StockCode``: each event's ``event_id`` is the JSON object of its key
  values as text under the id rule (:mod:`segcore.store.ids`), in the order given, e.g.
  ``{"InvoiceNo":"536365","StockCode":"85123A"}``. It is deterministic, so importing the
  same rows again (from any format) gives the same ids, and they are skipped.
- Rows identical to stored events (every column equal, NULL equal to NULL, columns
  missing on one side counted as NULL; ``event_id`` not compared) are counted on every
  import, so a repeated import never goes unnoticed.
- How many user ids of imported events match no user, and how many imported users have
  no events.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from segcore.errors import IngestError
from segcore.store.events import EVENT_ID, EventStore
from segcore.store.ids import id_text


def parse_key(text: str | Sequence[str] | None) -> list[str]:
    """``"InvoiceNo,StockCode"`` (or a list of names) -> the column names."""
    if text is None:
        return []
    parts = text.split(",") if isinstance(text, str) else [p for t in text for p in t.split(",")]
    names = [p.strip() for p in parts]
    if not names or any(not n for n in names):
        raise IngestError(f"bad --key {text!r}: write column names separated by commas")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise IngestError(f"bad --key {text!r}: column {dupes[0]!r} named twice")
    return names


def key_event_ids(df: pl.DataFrame, key: list[str], mapping: dict[str, str]) -> pl.DataFrame:
    """``df`` with ``event_id`` derived from the ``key`` columns (see the module docstring).

    A key column may be named by its source name when ``--map`` renamed it.
    """
    renamed = {source: target for target, source in mapping.items()}
    cols = [c if c in df.columns else renamed.get(c, c) for c in key]
    missing = [k for k, c in zip(key, cols, strict=True) if c not in df.columns]
    if missing:
        raise IngestError(
            f"--key column {missing[0]!r} not found; columns are: "
            + ", ".join(c for c in df.columns if not c.startswith("\x00"))
        )
    if EVENT_ID in df.columns and df.select(pl.col(EVENT_ID).is_not_null().any()).item():
        raise IngestError(
            "the files have event_id values and --key would replace them; use one of the two"
        )
    parts = [id_text(pl.col(c), df.schema[c]).alias(k) for k, c in zip(key, cols, strict=True)]
    return df.with_columns(pl.struct(parts).struct.json_encode().alias(EVENT_ID))


def identical_to_stored(store: EventStore, df: pl.DataFrame) -> int:
    """How many rows of ``df`` (in the stored column types) equal a stored event."""
    if not df.height or not store.event_files():
        return 0
    stored_schema = store.events_schema()
    cols = [c for c in df.columns if c != EVENT_ID]
    shared = [c for c in cols if c in stored_schema]
    new = [c for c in cols if c not in stored_schema]  # must be NULL to match
    have = set(cols)
    absent = [c for c in stored_schema if c not in have and c != EVENT_ID]
    candidates = df.lazy()
    if new:
        candidates = candidates.filter(pl.all_horizontal(pl.col(new).is_null()))
    bounds = df.select(pl.col("ts").min().alias("lo"), pl.col("ts").max().alias("hi")).row(0)
    stored = store.scan_events().filter(pl.col("ts").is_between(*bounds))
    if absent:
        stored = stored.filter(pl.all_horizontal(pl.col(absent).is_null()))
    schema = df.schema
    stored = stored.select([pl.col(c).cast(schema[c]) for c in shared])
    # a row hash finds the candidates cheaply (wide files); an exact join confirms them
    row = pl.struct(shared).hash(seed=0).alias("\x00hash")
    mine = candidates.select(shared).with_columns(row).collect()
    theirs = stored.with_columns(row).join(mine.lazy().select("\x00hash"), on="\x00hash", how="semi")
    theirs = theirs.collect()
    if theirs.is_empty():
        return 0
    mine = mine.join(theirs.select("\x00hash"), on="\x00hash", how="semi")
    matched = mine.join(theirs.unique(), on=[*shared, "\x00hash"], how="semi", nulls_equal=True)
    return matched.height


def ids_without_match(store: EventStore, kind: str, ids: pl.Series) -> int | None:
    """Of the distinct ``ids``: for events, how many match no stored user; for users,
    how many have no stored event. None when the store has no users (events) at all."""
    ids = ids.drop_nulls().unique()
    files = store.user_files() if kind == "events" else store.event_files()
    if not files:
        return None
    other = store.scan_users() if kind == "events" else store.scan_events()
    known = other.select(pl.col("user_id").cast(pl.String)).unique()
    left = ids.rename("user_id").cast(pl.String).to_frame().lazy()
    return int(left.join(known, on="user_id", how="anti").select(pl.len()).collect().item())


__all__ = ["identical_to_stored", "ids_without_match", "key_event_ids", "parse_key"]
