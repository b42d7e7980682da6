"""The latest-start and earliest-completion passes of ordered funnels on user-ordered keys.

:mod:`segcore.analytics.funnel` finds, per step event, the nearest event of the
neighbouring step of the same user (``join_asof`` by user). Joining by user hashes
every row of both sides; over long ranges that is most of a funnel's time. Here each
step's events get one 64-bit key ``k = user code * span + (ts - lo)`` (``span`` = the
length of the read range in us), which orders them by user, then time, and is
unique per (user, instant). Frames sorted by ``k`` are then joined with a plain
``join_asof`` on ``k`` (a merge of two sorted columns, no hashing); a match is kept
when it has the same user (``k // span``). ``allow_exact_matches`` (non-strict) keeps
events of the same user and instant, exactly as the by-user join does.

Before any sort, each step keeps only the events that some chain can use: those with
an event of the previous step of the same user in the same or the previous time
bucket (buckets at least the window wide; a lookup in a table indexed by user code
and bucket), and for step 1 (which only serves as the starts of step 2) those with a
step-2 event in the same or the next bucket. Frames come from the event cache in time order (or from
Parquet, often already in (user, time) order); a stable radix sort on the user code
(numpy, one or two 16-bit passes) turns time order into key order, and frames
already in key order are not sorted.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from segcore.store.cache import USER_CODE, distinct_user_rows

_U64 = 1 << 64


def key_span(frames: list[pl.DataFrame], lo_us: int, hi_us: int) -> int | None:
    """``span`` of the keys for events with ``lo_us <= ts < hi_us``, or None when the
    keys would not fit in 64 bits or a user code is missing (the caller joins by user)."""
    span = max(hi_us - lo_us, 1)
    if span >> 62:
        return None
    top = 0
    for f in frames:  # ok-loop: one per step
        codes = f[USER_CODE]
        if codes.null_count():
            return None
        if f.height:
            top = max(top, int(codes.to_physical().max()))
    return span if (top + 1) * span < _U64 else None


def _user_order(codes: np.ndarray) -> np.ndarray:
    """Row order sorting ``codes`` (uint32) stably: LSD radix, one or two 16-bit passes."""
    order = np.argsort((codes & 0xFFFF).astype(np.uint16), kind="stable")
    if len(codes) and int(codes.max()) >> 16:
        high = (codes[order] >> 16).astype(np.uint16)
        order = order[np.argsort(high, kind="stable")]
    return order


def _keyed(code: np.ndarray, ts: np.ndarray, lo_us: int, span: int) -> pl.DataFrame:
    """``k`` and ``ts`` (us) of events (user ``code``, ``ts``), sorted by ``k``."""
    k = code.astype(np.uint64) * np.uint64(span) + (ts - lo_us).astype(np.uint64)
    if _ascending(k):
        return pl.DataFrame({"k": k, "ts": ts})
    # each user's events in time order (time-sorted cache blocks, Parquet in (user, time)
    # order): a stable sort by user gives k order; else a full sort
    order = _user_order(code)
    if not _ascending(k[order]):
        order = np.argsort(k, kind="stable")
    return pl.DataFrame({"k": k[order], "ts": ts[order]})


def _ascending(x: np.ndarray) -> bool:
    return len(x) < 2 or bool(np.all(x[1:] >= x[:-1]))


_TABLE_MAX = 1 << 26  # cells of a (user, time bucket) presence table


def _buckets(size: int, span: int, window_us: int) -> tuple[int, int]:
    """``(width, count)`` of the time buckets of the presence tables: at least the window
    wide, so that two events of a chain lie in the same or adjacent buckets."""
    width = max(window_us, 1, -(-span * size // _TABLE_MAX))
    return width, -(-span // width)


def keyed_steps(
    frames: list[pl.DataFrame], lo_us: int, span: int, window_us: int, *, all_starts: bool = False
) -> list[pl.DataFrame]:
    """Per step, ``k`` and ``ts`` of the events (``USER_CODE``, ``ts`` in us) a chain can
    use, sorted by ``k``.

    Time is cut into buckets at least the window wide (:func:`_buckets`); a step-i event
    (i > 1) is kept when the same user has a kept step-(i-1) event in its bucket or the
    one before, a step-1 event when the user has a kept step-2 event in its bucket or
    the one after (``all_starts``: every step-1 event is kept). No chain uses the others.
    """
    codes = [f[USER_CODE].to_physical().to_numpy() for f in frames]
    times = [f["ts"].to_numpy() for f in frames]
    size = 1 + max((int(c.max()) for c in codes if len(c)), default=0)
    width, count = _buckets(size, span, window_us)

    def cells(i: int) -> np.ndarray:
        # bucket-major (events in time order touch one bucket's users at a time), with an
        # empty bucket before and after: the neighbouring buckets are cell -/+ size
        return ((times[i] - lo_us) // width + 1) * size + codes[i]

    def table(cell: np.ndarray) -> np.ndarray:
        present = np.zeros(size * (count + 2), dtype=bool)
        present[cell] = True
        return present

    keep: list[np.ndarray | None] = [None] * len(frames)
    present = table(cells(0))
    for i in range(1, len(frames)):  # ok-loop: one per step
        cell = cells(i)
        keep[i] = present[cell] | present[cell - size]
        present = table(cell[keep[i]])
        if i == 1 and not all_starts:
            cell0 = cells(0)
            keep[0] = present[cell0] | present[cell0 + size]
    return [
        _keyed(c, t, lo_us, span) if m is None else _keyed(c[m], t[m], lo_us, span)
        for c, t, m in zip(codes, times, keep, strict=True)
    ]


def user_ids(frame: pl.DataFrame) -> pl.DataFrame:
    """``code`` (the physical user code) and ``user_id`` of each user of ``frame``."""
    codes = frame[USER_CODE]
    rows = pl.Series(distinct_user_rows(codes))
    return pl.DataFrame(
        {"code": codes.to_physical().gather(rows), "user_id": codes.gather(rows).cast(pl.String)}
    )


def _code(span: int) -> pl.Expr:
    return (pl.col("k") // pl.lit(span, pl.UInt64)).cast(pl.UInt32).alias("code")


def _nearest(
    left: pl.DataFrame,
    right: pl.DataFrame,
    col: str,
    span: int,
    strategy: str,
    strict: bool,
    *,
    keep: bool = False,
) -> pl.DataFrame:
    """``left`` rows with ``col`` of the same user's nearest ``right`` row (``backward``:
    the last at or before, ``forward``: the first at or after; ``strict``: not at the
    same instant); rows without one are dropped (``keep``: kept, ``col`` null). Both
    frames are sorted by ``k``; rows of equal ``k`` carry equal ``col`` values."""
    same = pl.col("_k") // pl.lit(span, pl.UInt64) == pl.col("k") // pl.lit(span, pl.UInt64)
    joined = left.join_asof(
        right.select(pl.col("k"), pl.col("k").alias("_k"), col),
        on="k",
        strategy=strategy,
        allow_exact_matches=not strict,
        check_sortedness=False,
    )
    if keep:
        return joined.with_columns(pl.when(same).then(pl.col(col)).alias(col)).drop("_k")
    return joined.filter(same).drop("_k")


def latest_start(
    frames: list[pl.DataFrame], span: int, window_us: int, strict: bool
) -> list[pl.DataFrame]:
    """Per step after the first, ``code, seconds`` (shortest time to convert) of the users
    reaching it, by the latest-start pass of ``segcore.analytics.funnel.
    latest_start_users`` on the frames of :func:`keyed_steps`."""
    cur = frames[0].with_columns(pl.col("ts").alias("L"))
    out = []
    for e in frames[1:]:
        cur = _nearest(e, cur, "L", span, "backward", strict)
        cur = cur.filter(pl.col("ts") - pl.col("L") <= window_us)
        out.append(
            cur.group_by(_code(span)).agg(
                ((pl.col("ts") - pl.col("L")).min() / 1e6).alias("seconds")
            )
        )
    return out


def earliest_completions(
    frames: list[pl.DataFrame], span: int, window_us: int, strict: bool
) -> pl.DataFrame:
    """Every start: ``code, t0, completed`` (as
    ``segcore.analytics.funnel.earliest_completions``, on the frames of
    :func:`keyed_steps` with ``all_starts``)."""
    if len(frames) == 1:
        nxt = frames[0].with_columns(pl.col("ts").alias("E"))
    else:
        nxt = frames[-1].select("k", pl.col("ts").alias("E"))
        for i in range(len(frames) - 2, -1, -1):
            nxt = _nearest(frames[i], nxt, "E", span, "forward", strict, keep=i == 0)
            if i:
                nxt = nxt.select("k", "E")
    return nxt.select(
        _code(span),
        pl.col("ts").alias("t0"),
        (pl.col("E") - pl.col("ts") <= window_us).fill_null(False).alias("completed"),
    )
