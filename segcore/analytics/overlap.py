"""Overlap of two to five segments at one instant: every intersection region and
pairwise Jaccard similarity.

Each item is the name of a saved segment or, when no saved segment has that name,
rule text. Regions are exclusive: the users in exactly the listed segments (and
in none of the others), one per membership pattern that occurs; their counts sum
to the size of the union.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import polars as pl

from segcore.engine.polars.evaluate import members as eval_members
from segcore.errors import UsageError
from segcore.lang.dates import resolve_as_of
from segcore.store.events import EventStore

MIN_SEGMENTS, MAX_SEGMENTS = 2, 5


def is_saved(store: EventStore, name: str) -> bool:
    if not store.catalog_path.exists():
        return False
    return any(s.name.lower() == name.lower() for s in store.catalog.list())


def overlap_items(segments: list[str]) -> list[str]:
    """The 2-5 distinct items of an overlap as text (UsageError otherwise)."""
    items = list(segments or [])
    if not MIN_SEGMENTS <= len(items) <= MAX_SEGMENTS:
        raise UsageError(
            f"overlap needs {MIN_SEGMENTS} to {MAX_SEGMENTS} segments, got {len(items)}"
        )
    if len({str(i) for i in items}) != len(items):
        raise UsageError("overlap: the same segment is given twice")
    return [str(i) for i in items]


def overlap(store: EventStore, segments: list[str], as_of: Any = None) -> dict[str, Any]:
    """Sizes, exclusive intersection regions and pairwise Jaccard of 2-5 segments.

    Returns ``{"as_of", "segments": [...], "sizes": {name: n}, "union": n,
    "regions": [{"segments": [...], "count": n}, ...] (largest first),
    "pairs": [{"a", "b", "intersection", "union", "jaccard"}, ...]}``.
    """
    names = overlap_items(segments)
    T = resolve_as_of(as_of)
    flags: pl.DataFrame | None = None
    for name in names:  # ok-loop: one evaluation per segment (at most five)
        if is_saved(store, name):
            ids = eval_members(store, as_of=T, segment=name)
        else:
            ids = eval_members(store, name, T)
        ids = ids.select("user_id").with_columns(pl.lit(True).alias(name))
        flags = ids if flags is None else flags.join(ids, on="user_id", how="full", coalesce=True)
    assert flags is not None
    flags = flags.with_columns([pl.col(n).fill_null(False) for n in names])
    return overlap_report(T, names, flags.group_by(names).agg(pl.len().alias("count")))


def overlap_report(T, names: list[str], regions: pl.DataFrame) -> dict[str, Any]:
    """The report from ``regions``: one boolean column per segment and ``count``, the
    users in exactly those segments (any engine)."""
    regions = regions.filter(pl.col("count") > 0)
    sizes = {n: int(regions.filter(pl.col(n))["count"].sum()) for n in names}
    union = int(regions["count"].sum()) if regions.height else 0
    pattern = pl.concat_list(
        [pl.when(pl.col(n)).then(pl.lit(n)).otherwise(None) for n in names]
    ).list.drop_nulls()
    table = regions.select(pattern.alias("segments"), "count")
    table = table.with_columns(
        pl.col("segments").list.len().alias("k"), pl.col("segments").list.join("\x1f").alias("key")
    ).sort(["count", "k", "key"], descending=[True, False, False])
    pairs = []
    for a, b in combinations(names, 2):  # ok-loop: at most ten pairs
        inter = int(regions.filter(pl.col(a) & pl.col(b))["count"].sum())
        uni = int(regions.filter(pl.col(a) | pl.col(b))["count"].sum())
        pairs.append(
            {
                "a": a,
                "b": b,
                "intersection": inter,
                "union": uni,
                "jaccard": inter / uni if uni else 0.0,
            }
        )
    return {
        "as_of": T.isoformat().replace("+00:00", "Z"),
        "segments": names,
        "sizes": sizes,
        "union": union,
        "regions": [
            {"segments": list(s), "count": int(c)}
            for s, c in zip(table["segments"].to_list(), table["count"].to_list(), strict=True)
        ],
        "pairs": pairs,
    }
