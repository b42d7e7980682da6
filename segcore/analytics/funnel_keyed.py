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
step-2 event in the same or the next bucket. The pruning pass reads each step's
frame in slices of a million rows (no copy of a whole frame, temporaries that stay
in cache); the kept keys are then sorted alone (numpy's vectorised sort), whatever
the order they came in (the event cache's time order, Parquet's), and frames already
in key order are not sorted.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from segcore.store.cache import USER_CODE

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


def _keyed(parts: list[tuple[np.ndarray, np.ndarray]], lo_us: int, span: int) -> pl.DataFrame:
    """``k`` and ``ts`` (us) of events (user ``code``, ``ts`` slices), sorted by ``k``."""
    keys = []
    for code, ts in parts:  # ok-loop: one per slice
        k = code.astype(np.uint64)
        k *= np.uint64(span)
        k += (ts - lo_us).view(np.uint64)  # ts >= lo
        keys.append(k)
    k = np.concatenate(keys) if keys else np.empty(0, np.uint64)
    if not _ascending(k):
        # one unstable sort of k alone (numpy's vectorised quicksort): events of equal k
        # are equal, and ts comes back from k
        k = np.sort(k)
    ts = (k % np.uint64(span)).view(np.int64)
    ts += lo_us
    return pl.DataFrame({"k": k, "ts": ts})


def _ascending(x: np.ndarray) -> bool:
    return len(x) < 2 or bool(np.all(x[1:] >= x[:-1]))


_TABLE_MAX = 1 << 26  # cells of a (user, time bucket) presence table
_SLICE = 1 << 20  # rows of a step's events handled at once by the pruning pass


def _buckets(size: int, span: int, window_us: int) -> tuple[int, int]:
    """``(width, count)`` of the time buckets of the presence tables: at least the window
    wide, so that two events of a chain lie in the same or adjacent buckets."""
    width = max(window_us, 1, -(-span * size // _TABLE_MAX))
    return width, -(-span // width)


class _Grid:
    """The (time bucket, user) cells of the presence tables: bucket-major (events in time
    order touch one bucket's users at a time), with an empty bucket before and after, so
    the neighbouring buckets of a cell are cell -/+ ``size``."""

    def __init__(self, size: int, span: int, lo_us: int, window_us: int):
        self.size = size
        self.width, count = _buckets(size, span, window_us)
        self.before = lo_us - self.width  # bucket 0 is the empty one before the range
        self.cells = size * (count + 2)

    def cell(self, code: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """``((ts - lo) // width + 1) * size + code``, in place on one temporary."""
        cell = ts - self.before
        cell //= self.width
        cell *= self.size
        cell += code
        return cell

    def table(self, parts: list[tuple[np.ndarray, np.ndarray]], reach: int) -> np.ndarray:
        """Per cell, whether an event of ``parts`` (``(code, ts)`` slices) is in it or in
        cell + ``reach``: one lookup per event in :meth:`near` then tests both."""
        present = np.zeros(self.cells, dtype=bool)
        for code, ts in parts:  # ok-loop: one per slice
            cell = self.cell(code, ts)
            present[cell] = True
            cell -= reach
            present[cell] = True
        return present

    def near(
        self, parts: list[tuple[np.ndarray, np.ndarray]], present: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """The events of ``parts`` whose cell is ``present``."""
        out = []
        for code, ts in parts:  # ok-loop: one per slice
            m = np.take(present, self.cell(code, ts))
            out.append((code[m], ts[m]))
        return out


def _slices(frame: pl.DataFrame) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(code, ts)`` numpy arrays of ``frame`` (no nulls) in slices of at most ``_SLICE``
    rows: the pruning pass works on each while it is in cache, and the frame's chunks
    (many small ones when the streaming engine read Parquet) are read without a copy."""
    code, ts = frame[USER_CODE].to_physical(), frame["ts"]
    codes, times = code.get_chunks(), ts.get_chunks()
    if [len(c) for c in codes] != [len(t) for t in times]:
        codes, times = [code.rechunk()], [ts.rechunk()]
    return [
        (c.slice(a, _SLICE).to_numpy(), t.slice(a, _SLICE).to_numpy())
        for c, t in zip(codes, times, strict=True)  # ok-loop: one per chunk
        for a in range(0, len(c), _SLICE)  # ok-loop: bounded slices
    ]


def keyed_steps(
    frames: list[pl.DataFrame], lo_us: int, span: int, window_us: int, *, all_starts: bool = False
) -> list[pl.DataFrame]:
    """Per step, ``k`` and ``ts`` of the events (``USER_CODE``, ``ts`` in us) a chain can
    use, sorted by ``k``.

    Time is cut into buckets at least the window wide (:func:`_buckets`); a step-i event
    (i > 1) is kept when the same user has a kept step-(i-1) event in its bucket or the
    one before, a step-1 event when the user has a step-2 event in its bucket or the one
    after (``all_starts``: every step-1 event is kept). No chain uses the others. Step 1
    (usually the largest) is pruned first, against all step-2 events: a step-2 event in
    the bucket of a step-1 event or the next one is kept by the step-1 test, so this keeps
    the same step-1 events as pruning step 2 first, and step 2 is then tested against
    the kept step-1 events only (again the same result, by the same argument), so no
    presence table of all step-1 events is built.
    """
    size = 1 + max(
        (int(f[USER_CODE].to_physical().max()) for f in frames if f.height), default=0
    )
    grid = _Grid(size, span, lo_us, window_us)
    parts = [_slices(f) for f in frames]
    if len(frames) > 1:
        if not all_starts:  # a step-2 event in the same bucket or the next
            parts[0] = grid.near(parts[0], grid.table(parts[1], size))
        for i in range(1, len(frames)):  # ok-loop: one per step
            # a kept step-(i-1) event in the same bucket or the one before
            parts[i] = grid.near(parts[i], grid.table(parts[i - 1], -size))
    return [_keyed(p, lo_us, span) for p in parts]


def user_ids(frame: pl.DataFrame) -> pl.DataFrame:
    """``code`` (the physical user code, ascending) and ``user_id`` of each user of
    ``frame`` (``USER_CODE`` without nulls)."""
    codes = frame[USER_CODE]
    seen = np.zeros(int(codes.to_physical().max()) + 1 if frame.height else 0, dtype=bool)
    for code, _ in _slices(frame):  # ok-loop: one per slice
        seen[code] = True
    present = pl.Series("code", np.flatnonzero(seen).astype(np.uint32))
    # physical codes back to the user ids of the frame's Categorical
    return pl.DataFrame([present, present.cat.to(codes.dtype).cast(pl.String).alias("user_id")])


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
