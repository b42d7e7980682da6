"""Segment size over time with entries and exits (docs/analytics.md, Size over time), in one pass.

A trend has points ``T_1..T_n`` (ends of days or of weeks in the report zone,
:func:`segcore.lang.dates.current_zone`) plus ``T_0``, the end of the day or week
before the first point (for the first point's entries and exits). In UTC the instants
are equally spaced; in a zone with clock changes a day lasts 23 to 25 hours. "Per
point" quantities are small integer indexes ``j = 0..n``.

Algorithm (exact, no per-point re-evaluation):

1. For every behavioural term the window bounds ``lo_j``/``hi_j`` are computed for
   all points at once (``within``, ``since``/``until`` of ``now()``/``today()``).
   They never decrease with ``j``, so an event at ``ts`` counts exactly for the
   points ``a <= j < b`` with ``a`` = first point with ``hi_j > ts`` and ``b`` =
   first point with ``lo_j > ts`` (two ``searchsorted`` over all events).
2. Additive terms (``did``, ``event_count``, ``event_sum``, ``event_avg``) are
   ``+v`` at ``a`` and ``-v`` at ``b``, summed per (point, user) and accumulated
   over points (for events in time-ordered runs, the usual case, without computing
   ``a`` and ``b``: prefix counts at the distinct window bounds, one bincount per
   bound, see :func:`_run_sums`); ``event_distinct`` merges the ``[a, b)`` intervals of each value
   first; ``min``/``max``/``first_seen``/``last_seen`` are a running min/max (no
   lower bound) or the ``[a, b)`` ranges exploded per (user, a, b) group;
   ``event_periods`` explodes per (user, a, b, period slot) group. Sequences get
   one forward ``join_asof`` (next B after each A), which turns each A event into a
   range of points where it counts.
3. The rule is evaluated once on a (point x user) frame: ``now()``/``today()``
   become per-point columns, attribute-only subtrees are evaluated once per user.
   Only users who can be members take rows (``plan_members``' null-row test): with
   required terms (:func:`_required_terms`) the users of the smallest one's events,
   less those whom the attribute-only conjuncts at the root turn away
   (:func:`_allowed`; the grid then evaluates the rule without them). Read from
   Parquet (a first read, no event cache), the smallest required term is read first
   and the other scans keep only its users' rows (:func:`_load_events`).
4. Members, entries and exits per point come from the (user x point) boolean
   matrix and its shift by one point.

Term matrices are P x U (points the slow axis): time-ordered events then scatter
into one point's row at a time and running sums add whole rows. Users are numbered
from the event cache's Categorical user codes (``segcore.store.cache.USER_CODE``).

Where a term cannot be handled exactly that way (an event filter that reads
``now()``, a window bound that is not monotone, ``event_min`` of a string) the
grid falls back to one evaluation per point (:func:`trend_naive`'s method).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from segcore.engine.plan import (
    conjuncts,
    default_value,
    event_columns,
    null_row_member,
    polars_dtype,
    resolve_segment,
    static_conjuncts,
    term_event,
    time_dependent,
    tree_columns,
)
from segcore.engine.polars.evaluate import plan_members, where_mask
from segcore.engine.polars.expressions import TS, Ctx, as_timestamp, local_day, to_expr
from segcore.engine.rules import schema_of, to_tree
from segcore.errors import RuleError, UsageError
from segcore.lang.dates import UTC, current_zone, day_points, end_of_day, parse_date
from segcore.lang.tree import (
    And,
    Behavior,
    Call,
    Col,
    Compare,
    InSegment,
    Lit,
    Node,
    Schema,
    Sequence,
    behaviours,
    conj,
    segment_refs,
)
from segcore.lang.types import type_of
from segcore.store.cache import USER_CODE, distinct_user_rows
from segcore.store.events import EventStore

DAY_US = 86_400_000_000
NEG = np.iinfo(np.int64).min
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
NOW, TODAY = "__now", "__today"
STEPS = {"day": DAY_US, "week": 7 * DAY_US}
CHUNK_CELLS = 8_000_000  # (user, point) cells evaluated at once: bounds the memory
DENSE_CELLS = 60_000_000  # larger grids build count matrices block by block instead
MAX_POINTS = 3_700  # about ten years of days
THREADS = max(1, min(4, os.cpu_count() or 1))  # bincount threads of a large term
PARALLEL_EVENTS = 1_000_000  # events from which a term's bincounts run on THREADS threads
MAX_RUNS = 4_096  # time-ordered runs of a term's events worked run by run
FLIP = {">=": "<=", "<=": ">=", ">": "<", "<": ">", "=": "=", "!=": "!=", "<>": "<>"}
NUMPY_COMPARE = {">=": np.greater_equal, "<=": np.less_equal, ">": np.greater,
                 "<": np.less, "=": np.equal, "!=": np.not_equal, "<>": np.not_equal}


# --------------------------------------------------------------------------- points
@dataclass(frozen=True)
class Points:
    """The dates of a trend and its instants ``T_0..T_n`` (int64 microseconds)."""

    dates: tuple[dt.date, ...]
    T: np.ndarray
    step: int

    @property
    def P(self) -> int:  # noqa: N802 - the number of instants, T_0 included
        return len(self.T)

    def instant(self, j: int) -> dt.datetime:
        return EPOCH + dt.timedelta(microseconds=int(self.T[j]))


def _us(instant: dt.datetime) -> int:
    return (instant - EPOCH) // dt.timedelta(microseconds=1)


def make_points(start: Any, end: Any, every: str = "day") -> Points:
    """The points of a range (``every`` day, or every ISO week's Sunday)."""
    if every not in STEPS:
        raise UsageError(f"bad step {every!r}: use day or week")
    if start is None or end is None:
        raise UsageError("a trend needs a start and an end date")
    dates = day_points(start, end, every)
    if len(dates) > MAX_POINTS:
        raise UsageError(
            f"the range has {len(dates):,} {every} points; a trend takes at most "
            f"{MAX_POINTS:,}: shorten the range or use weekly points"
        )
    step = STEPS[every]
    if current_zone().is_utc:
        first = _us(end_of_day(dates[0]))
        T = first + step * np.arange(-1, len(dates), dtype=np.int64)
    else:  # local days last 23, 24 or 25 hours: each point is its own local midnight
        before = dates[0] - dt.timedelta(microseconds=step)
        T = np.array([_us(end_of_day(d)) for d in (before, *dates)], dtype=np.int64)
    return Points(tuple(dates), T, step)


# --------------------------------------------------------------------------- rewriting
def _has_clock(node: Node | None) -> bool:
    return node is not None and any(
        isinstance(n, Call) and n.name in ("now", "today") for n in node.walk()
    )


def _replace(node: Node, fn) -> Node:
    changes = {}
    for f in dataclasses.fields(node):  # type: ignore[arg-type]
        v = getattr(node, f.name)
        if isinstance(v, Node):
            changes[f.name] = fn(v)
        elif isinstance(v, tuple) and any(isinstance(x, Node) for x in v):
            changes[f.name] = tuple(fn(x) if isinstance(x, Node) else x for x in v)
    return dataclasses.replace(node, **changes) if changes else node  # type: ignore[type-var]


def clock_columns(node: Node) -> Node:
    """``now()``/``today()`` replaced by the per-point columns ``__now``/``__today``."""
    if isinstance(node, Call) and node.name == "now":
        return Col(NOW)
    if isinstance(node, Call) and node.name == "today":
        return Col(TODAY)
    return _replace(node, clock_columns)


def _clock_schema(schema: Schema, extra: dict[str, str] | None = None) -> Schema:
    users = {**schema.users, NOW: "timestamp", TODAY: "date", **(extra or {})}
    return dataclasses.replace(schema, users=users)


def _split_static(tree: Node, schema: Schema) -> tuple[Node, dict[str, Node]]:
    """Replace the largest subtrees that do not depend on T by placeholder columns."""
    found: dict[str, Node] = {}

    def visit(n: Node) -> Node:
        if isinstance(n, Behavior | Sequence | InSegment):
            return n
        if isinstance(n, Lit):
            return n
        if not time_dependent(n):
            if isinstance(n, Col):
                return n
            name = f"__p{len(found)}"
            found[name] = n
            return Col(name)
        if isinstance(n, Call) and n.name in ("now", "today"):
            return clock_columns(n)
        return _replace(n, visit)

    return visit(tree), found


# --------------------------------------------------------------------------- windows
def _bounds(
    node: Behavior | Sequence, pts: Points, schema: Schema
) -> tuple[np.ndarray, np.ndarray]:
    """``lo_j`` (NEG: unbounded) and ``hi_j`` of a term's window at every point."""
    P = pts.P
    hi = pts.T.copy()
    lo = np.full(P, NEG, dtype=np.int64)
    if node.within is not None:
        lo = pts.T - node.within
    frame = _clock_frame(pts)
    for which in ("since", "until"):
        expr_node = getattr(node, which)
        if expr_node is None:
            continue
        ctx = Ctx(pts.instant(P - 1), _clock_schema(schema))
        rewritten = clock_columns(expr_node)
        expr = as_timestamp(to_expr(rewritten, ctx), ctx.typ(rewritten)).cast(TS)
        vals = frame.with_columns(expr.dt.epoch("us").alias("v"))["v"]
        if which == "since":
            lo = vals.fill_null(NEG).to_numpy().astype(np.int64)
        else:
            hi = np.where(
                vals.is_null().to_numpy(),
                hi,
                np.minimum(hi, vals.fill_null(0).to_numpy().astype(np.int64)),
            )
    return lo, hi


def _clock_frame(pts: Points) -> pl.DataFrame:
    now = pl.Series(NOW, pts.T).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    return pl.DataFrame([now]).with_columns(
        local_day(pl.col(NOW) - pl.duration(microseconds=1)).alias(TODAY)
    )


def _monotone(x: np.ndarray) -> bool:
    return bool(np.all(x[1:] >= x[:-1]))


# --------------------------------------------------------------------------- grid
@dataclass
class Grid:
    """Membership of every candidate user (``ids``) at every point (``M``, U x P)."""

    ids: pl.Series
    M: np.ndarray


@dataclass
class _Work:
    store: EventStore
    pts: Points
    schema: Schema
    # per (term, B side of a sequence): the events the term counts, users as USER_CODE
    frames: dict[tuple[Node, bool], pl.DataFrame] = dataclasses.field(default_factory=dict)
    U: int = 0
    # user code -> candidate number (``uid``, 0..U-1), -1: not a candidate
    lookup: np.ndarray = dataclasses.field(default_factory=lambda: np.empty(0, np.int64))

    def coded(self, key: tuple[Node, bool]) -> pl.DataFrame:
        """The events of ``key`` of candidate users only, with their ``uid`` (Int64) instead
        of the user columns."""
        frame = self.frames[key]
        lookup = pl.lit(pl.Series(self.lookup.astype(np.int32)))  # U < 2^31
        # a term's own property may be user_id: that one stays
        carried = {"user_id", "event", USER_CODE} - {getattr(key[0], "prop", None)}
        # in Polars, which gathers with the u32 codes as they are
        return (
            frame.lazy()
            .with_columns(uid=lookup.gather(pl.col(USER_CODE).to_physical()))
            .filter(pl.col("uid") >= 0)
            .drop(*carried, strict=False)
            .with_columns(pl.col("uid").cast(pl.Int64))  # int64 arithmetic on uids later
            .collect()
        )

    def columns(self) -> np.ndarray:
        """User code -> column of a count matrix: ``uid``, or ``U`` (a spare column that
        callers drop) for a user who is not a candidate."""
        return np.where(self.lookup >= 0, self.lookup, self.U)


def _needs_naive(terms: list[Node], bounds: dict, schema: Schema) -> bool:
    for t in terms:
        if _has_clock(t.where) or _has_clock(getattr(t, "then_where", None)):
            return True
        lo, hi = bounds[t]
        if not (_monotone(lo) and _monotone(hi)):
            return True
        if (
            isinstance(t, Behavior)
            and t.func in ("event_min", "event_max")
            and schema.events.get(t.prop or "") not in ("int", "float", "date", "timestamp")
        ):
            return True
    return False


def _load_events(
    w: _Work, terms: list[Node], bounds: dict, required: list[Node], allowed: _Allowed | None
) -> None:
    """Per term (and B side of a sequence) the events it counts, collected at once.

    Each is the event cache's slice of one event name from the earliest window start
    (zero-copy, in time order), filtered by the term's ``where``. Read from Parquet
    (no cache yet: a first read) the smallest required term's events are read first;
    only their users (who pass the static conjuncts) can be members, so the other
    scans keep only those users' rows (a filter pushed into the scan) and the rest of
    the grid works on them alone.
    """
    last = w.pts.instant(w.pts.P - 1)
    cols = [*event_columns(terms), USER_CODE]
    plans = {}
    in_memory = True
    for t in terms:
        for then in (False, True) if isinstance(t, Sequence) else (False,):
            low = NEG if then or isinstance(t, Sequence) else int(bounds[t][0].min())
            since = None if low == NEG else EPOCH + dt.timedelta(microseconds=low)
            name = term_event(t, then)
            lf = w.store.events_frame(
                cols, events=None if name == "*" else [name], since=since, until=last
            )
            in_memory = in_memory and w.store.in_memory(lf)
            where = where_mask(t, last, w.schema, then)
            plans[(t, then)] = lf if where is None else lf.filter(where)
    w.frames = {}
    if not in_memory:
        users = None
        if required:
            counts = dict(w.store.event_counts().select("event", "count").iter_rows())
            total = sum(counts.values())
            first = min(
                (t for t in required if (t, False) in plans),
                key=lambda t: total if term_event(t) == "*" else counts.get(term_event(t), 0),
            )
            w.frames[(first, False)] = plans.pop((first, False)).collect()
            users = _distinct_users(w.frames[(first, False)])
            if allowed is not None:
                users = allowed.keep(users)
        elif allowed is not None and allowed.known is None:
            users = allowed.ids
        if users is not None:
            keep = pl.col("user_id").is_in(users.implode())
            plans = {k: lf.filter(keep) for k, lf in plans.items()}
    w.frames |= dict(zip(plans, pl.collect_all(list(plans.values())), strict=True))


@dataclass
class _Allowed:
    """Users the rule's static conjuncts (attribute-only, ANDed at the root) let through:
    ``ids`` from the users table, plus (``known`` not None) every user not in it."""

    ids: pl.Series
    known: pl.Series | None

    def keep(self, ids: pl.Series) -> pl.Series:
        mask = ids.is_in(self.ids.implode())
        if self.known is not None:
            mask = mask | ~ids.is_in(self.known.implode())
        return ids.filter(mask)


def _drop_static(tree: Node) -> Node:
    """``tree`` without its static conjuncts (for users known to pass them)."""
    static = static_conjuncts(tree)
    rest = [c for c in conjuncts(tree) if c not in static]
    return conj(*rest) if rest else Lit(True, "bool")


def _allowed(users: pl.DataFrame, tree: Node, schema: Schema, T: dt.datetime) -> _Allowed | None:
    """The ``users`` (the users table's columns that ``tree`` reads) that pass the static
    conjuncts of ``tree`` (None: it has none).

    A conjunct reading ``user_id`` is left to the grid (a user missing from the users
    table has a user_id but no attributes, which the null row cannot show)."""
    static = static_conjuncts(tree)
    if not static:
        return None
    ctx = Ctx(T, schema)
    exprs = [to_expr(c, ctx).fill_null(False) for c in static]
    users = users.select("user_id", pl.all_horizontal(exprs).alias("__pass"))
    null_pass = null_row_member(conj(*static), schema, T, {}, {})
    ids = users.filter(pl.col("__pass"))["user_id"].cast(pl.String)
    return _Allowed(ids, users["user_id"].cast(pl.String) if null_pass else None)


def _ts_us(frame: pl.DataFrame, col: str = "ts") -> np.ndarray:
    """A timestamp column as int64 microseconds (zero-copy when it is in us already)."""
    ts = frame[col]
    if ts.dtype == pl.Datetime("us", ts.dtype.time_zone):
        return ts.to_physical().to_numpy()
    return ts.dt.epoch("us").to_numpy()


def _sorted_runs(ts: np.ndarray) -> np.ndarray | None:
    """Starts of the time-ordered runs of ``ts`` and its length (``[0, ..., len]``), or
    None when there are too many runs to handle run by run.

    Cache slices are one run; a Parquet read is one run per file (each file is in
    (event, ts) order).
    """
    breaks = np.flatnonzero(ts[1:] < ts[:-1]) + 1
    if len(breaks) > MAX_RUNS:
        return None
    return np.concatenate([[0], breaks, [len(ts)]]).astype(np.int64)


def _run_cuts(ts: np.ndarray, runs: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """R x len(bounds): per run, the position of the first event at or after each bound."""
    return np.stack([
        s + np.searchsorted(ts[s:e], bounds, side="left")
        for s, e in zip(runs[:-1].tolist(), runs[1:].tolist(), strict=True)  # ok-loop: runs
    ])


Run = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]  # user codes, ts (us), value


def _time_runs(frame: pl.DataFrame, value: str | None = None) -> list[Run] | None:
    """A term's events as time-ordered runs of (user codes, ts, value) arrays, without
    copying them (or None: more than ``MAX_RUNS`` runs).

    A chunk of the columns is one run or a few: a cache slice is one chunk in time
    order, a Parquet read one chunk per row group, in time order within each file.
    """
    cols = [frame[USER_CODE].to_physical(), frame["ts"]]
    if cols[1].dtype != pl.Datetime("us", cols[1].dtype.time_zone):
        cols[1] = cols[1].dt.epoch("us")
    cols[1] = cols[1].to_physical()
    if value is not None:
        cols.append(frame[value].cast(pl.Float64))
    chunks = [c.get_chunks() for c in cols]
    if any([len(x) for x in c] != [len(x) for x in chunks[0]] for c in chunks):
        chunks = [[c.rechunk()] for c in cols]  # columns cut differently: one copy
    runs: list[Run] = []
    for parts in zip(*chunks, strict=True):  # ok-loop: chunks of the events
        codes, ts = parts[0].to_numpy(), parts[1].to_numpy()
        v = parts[2].to_numpy() if value is not None else None
        edges = _sorted_runs(ts)
        if edges is None or len(runs) + len(edges) - 1 > MAX_RUNS:
            return None
        runs += [
            (codes[a:b], ts[a:b], None if v is None else v[a:b])
            for a, b in itertools.pairwise(edges.tolist())
            if b > a
        ]
    return runs


def _run_sums(
    runs: list[Run], column: np.ndarray, lo: np.ndarray, hi: np.ndarray, U: int, P: int
) -> np.ndarray:
    """P x U: per point, the count (or sum of the values) of each user's events in its
    window; ``column``: the count matrix column of each user code.

    Events in time-ordered ``runs`` (:func:`_time_runs`) with ``lo <= hi``. With ``B``
    the distinct window bounds in order, ``S_i`` (per user) counts the events before
    ``B_i``: the events between two bounds are one contiguous piece of each run, so ``S``
    is one bincount per bound and a running sum. A window's count is ``S`` at ``hi`` less
    ``S`` at ``lo``. Windows of whole steps (``within => '7 days'`` at daily points)
    start at earlier points' ends: ``B`` has about P rows, and every event is read once.
    """
    B, at = np.unique(np.concatenate([lo, hi]), return_inverse=True)
    n = sum(len(ts) for _, ts, _ in runs)
    # counts fit in int32 (at most n events): half the memory traffic of int64
    dtype = np.float64 if _weighted(runs) else np.int32 if n < 2**31 else np.int64
    S = np.zeros((len(B), U), dtype=dtype)
    if runs:
        cuts = np.stack([np.searchsorted(ts, B, side="left") for _, ts, _ in runs])
        # bounds in THREADS parts of about equal events (numpy releases the GIL)
        done = np.cumsum((cuts[:, 1:] - cuts[:, :-1]).sum(axis=0))
        parts = THREADS if n >= PARALLEL_EVENTS else 1
        edges = [1, *(np.searchsorted(done, n * np.arange(1, parts) / parts) + 1).tolist(),
                 len(B)]
        jobs = [range(a, b) for a, b in itertools.pairwise(edges) if b > a]
        if len(jobs) == 1:
            _bincounts(S, runs, cuts, column, jobs[0])
        else:
            with ThreadPoolExecutor(len(jobs)) as pool:
                list(pool.map(lambda rows: _bincounts(S, runs, cuts, column, rows), jobs))
    _accumulate(S)
    return _window_rows(S, at[P:], at[:P])


def _weighted(runs: list[Run]) -> bool:
    return bool(runs) and runs[0][2] is not None


def _bincounts(
    S: np.ndarray, runs: list[Run], cuts: np.ndarray, column: np.ndarray, rows: range
) -> None:
    """``S[i]`` for ``i`` in ``rows``: per column, the events (or the sum of their values)
    between bounds ``i - 1`` and ``i`` (``cuts``: per run, where each bound falls)."""
    weighted = _weighted(runs)
    for i in rows:  # ok-loop: one vectorised bincount per bound
        pieces = [
            (runs[r], cuts[r, i - 1], cuts[r, i])
            for r in np.flatnonzero(cuts[:, i] > cuts[:, i - 1]).tolist()
        ]
        if not pieces:
            continue
        idx = _joined([codes[a:b] for (codes, _, _), a, b in pieces])
        w = _joined([v[a:b] for (_, _, v), a, b in pieces]) if weighted else None
        S[i] = np.bincount(np.take(column, idx), weights=w, minlength=S.shape[1])


def _window_rows(S: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """``S[hi] - S[lo]`` (rows of prefix sums), reusing ``S`` where it can: with no lower
    bound (row 0 holds zeros) it is ``S[hi]``; with consecutive rows, ``lo`` before ``hi``,
    the difference is taken in place from the last point back (a row is changed only
    after its last read as a ``lo`` row)."""
    if not lo.any():
        return _rows(S, hi)
    if _consecutive(hi) and _consecutive(lo) and lo[0] < hi[0]:
        out = S[hi[0] : hi[0] + len(hi)]
        for k in range(len(hi) - 1, -1, -1):  # ok-loop: a row per point
            np.subtract(out[k], S[lo[0] + k], out=out[k])
        return out
    return np.subtract(_rows(S, hi), _rows(S, lo))


def _consecutive(index: np.ndarray) -> bool:
    return bool(len(index)) and bool(np.all(np.diff(index) == 1))


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    """The arrays end to end (the one array itself, uncopied, when there is one)."""
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _accumulate(M: np.ndarray, op: np.ufunc = np.add, reverse: bool = False) -> np.ndarray:
    """``op.accumulate(M, axis=0)`` (from the last row up if ``reverse``), in place, a row
    at a time: numpy's accumulate over the slow axis of a C-order matrix is about ten
    times slower."""
    step = 1 if reverse else -1
    for i in range(len(M) - 2, -1, -1) if reverse else range(1, len(M)):  # ok-loop: rows
        op(M[i + step], M[i], out=M[i])
    return M


def _rows(S: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``S[index]``, as a view when the rows are consecutive (the usual case)."""
    return S[index[0] : index[0] + len(index)] if _consecutive(index) else S[index]


def _dense(matrix: np.ndarray) -> _Part:
    return _Part(_NO_ROWS, "dense", matrix=matrix)


def _point_index(ts: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Per event, the number of (nondecreasing) ``bounds`` at or before its ``ts``.

    Events usually come in time order (cache slices, or one run per Parquet file): then
    the answer is a run per bound, cut at ``len(bounds)`` positions per time-ordered run,
    instead of a binary search per event.
    """
    runs = _sorted_runs(ts) if len(ts) > 1 else None
    if runs is None:
        return np.searchsorted(bounds, ts, side="right")
    cuts = _run_cuts(ts, runs, bounds)
    edges = np.concatenate([runs[:-1, None], cuts, runs[1:, None]], axis=1)  # R x (P + 2)
    counts = np.diff(edges, axis=1).ravel()
    labels = np.tile(np.arange(len(bounds) + 1, dtype=np.int64), len(runs) - 1)
    return np.repeat(labels, counts)


def _ranges(frame: pl.DataFrame, lo: np.ndarray, hi: np.ndarray, P: int) -> pl.DataFrame:
    """Add ``a``/``b``: the points ``a <= j < b`` at which each event counts (and keep
    the events that count at some point)."""
    ts = _ts_us(frame)
    a, b = _point_index(ts, hi), _point_index(ts, lo)
    return frame.with_columns(
        a=pl.Series(a, dtype=pl.Int64), b=pl.Series(b, dtype=pl.Int64)
    ).filter(pl.Series(a < b))


def _deltas(frame: pl.DataFrame, value: pl.Expr | None, P: int) -> _Part:
    """``+v`` at ``a`` and ``-v`` at ``b`` of each range (v = 1: a count)."""
    uid, a, b = (frame[c].to_numpy() for c in ("uid", "a", "b"))
    v = None if value is None else frame.select(value.cast(pl.Float64)).to_series().to_numpy()
    keep = b < P
    return _Part((uid, a, v), "add", minus=(uid[keep], b[keep], None if v is None else v[keep]))


Rows = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]


@dataclass
class _Part:
    """A term's contribution and how it becomes a (points x users) matrix.

    ``how``: "add" (``rows`` add v at (uid, j) and ``minus`` rows subtract it, then a
    running sum over points; v None: 1, an exact integer count), "set"/"cummin"/"cummax"
    (values at (uid, j), then nothing or a running min/max), "dense" (``matrix``, P x U).
    """

    rows: Rows
    how: str
    fill: float = 0.0
    matrix: np.ndarray | None = None
    minus: Rows | None = None


_NO_ROWS: Rows = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))


def _part(rows: pl.DataFrame, how: str, fill: float = 0.0) -> _Part:
    arrays = (rows["uid"].to_numpy(), rows["j"].to_numpy(), rows["v"].cast(pl.Float64).to_numpy())
    return _Part(arrays, how, fill)


def _behavior_parts(w: _Work, node: Behavior, lo: np.ndarray, hi: np.ndarray) -> dict[str, _Part]:
    P = w.pts.P
    f = node.func
    if f in ("did", "event_count", "event_sum", "event_avg"):
        ev = w.frames[(node, False)]
        if f in ("event_sum", "event_avg"):
            ev = ev.filter(pl.col(node.prop).is_not_null())
        summed = f in ("event_sum", "event_avg")
        runs = _time_runs(ev, node.prop if summed else None)
        dense_ok = w.U * P <= DENSE_CELLS  # else rows kept per block of users (memory)
        if dense_ok and runs is not None and np.all(lo <= hi):  # no per-event work
            # every event, a non-candidate's in a spare last column: looking codes up piece
            # by piece costs less than filtering the events first (no copy of them at all)
            column = w.columns()
            counted = [(codes, ts, None) for codes, ts, _ in runs]
            parts = {"n": _dense(_run_sums(counted, column, lo, hi, w.U + 1, P)[:, : w.U])}
            if summed:
                parts["s"] = _dense(_run_sums(runs, column, lo, hi, w.U + 1, P)[:, : w.U])
            return parts
    ev = w.coded((node, False))
    if f in ("event_sum", "event_avg"):
        ev = ev.filter(pl.col(node.prop).is_not_null())
    ev = _ranges(ev, lo, hi, P)
    if f in ("did", "event_count"):
        return {"n": _deltas(ev, None, P)}
    if f in ("event_sum", "event_avg"):
        return {
            "n": _deltas(ev, None, P),
            "s": _deltas(ev, pl.col(node.prop), P),
        }
    if f == "event_distinct":
        ev = ev.filter(pl.col(node.prop).is_not_null())
        uid, a, b = (ev[c].to_numpy() for c in ("uid", "a", "b"))
        return {"n": _union_deltas(uid, _codes(ev[node.prop]), a, b, P)}
    if f == "event_periods":
        return {"v": _periods(w, node, ev)}
    if f in ("first_seen", "last_seen") and lo.max() != NEG:
        return {"v": _seen(w, ev, f)}
    # min / max / first_seen / last_seen: a running or windowed min/max of a value
    if f in ("first_seen", "last_seen"):
        value = pl.col("ts").dt.epoch("us")
    elif w.schema.events.get(node.prop) == "date":
        value = pl.col(node.prop).cast(pl.Int32)
    elif w.schema.events.get(node.prop) == "timestamp":
        value = pl.col(node.prop).cast(TS).dt.epoch("us")
    else:
        value = pl.col(node.prop)
    ev = ev.with_columns(value.cast(pl.Float64).alias("__v")).filter(pl.col("__v").is_not_null())
    agg = "min" if f in ("first_seen", "event_min") else "max"
    if lo.max() == NEG:  # no lower bound: a running min/max from the first point it counts
        rows = ev.group_by("uid", pl.col("a").alias("j")).agg(
            getattr(pl.col("__v"), agg)().alias("v")
        )
        return {"v": _part(rows, "cum" + agg, np.nan)}
    g = ev.group_by("uid", "a", "b").agg(getattr(pl.col("__v"), agg)().alias("v"))
    uid, a, b = (g[c].to_numpy() for c in ("uid", "a", "b"))
    out = _range_agg(uid, a, b, g["v"].to_numpy(), agg, w.U, w.pts.P)
    return {"v": _dense(out)}


def _range_agg(
    uid: np.ndarray, a: np.ndarray, b: np.ndarray, v: np.ndarray, agg: str, U: int, P: int
) -> np.ndarray:
    """Min/max over a sliding window at every point, with a sparse table.

    The (uid, a, b) groups sorted in time order (a and b never decrease inside a
    user): at point j a user's window is the contiguous run of groups from the first
    with ``b > j`` to the last with ``a <= j``; the min/max of a run is two lookups
    in a table of min/max over runs of 2^k groups (k up to the longest run).
    """
    out = np.full((P, U), np.nan)
    if len(uid) == 0:
        return out
    op = np.fmin if agg == "min" else np.fmax
    key_a = uid * (P + 1) + a
    key_b = uid * (P + 1) + b
    order = np.argsort(key_a * (P + 1) + b, kind="stable")
    key_a, key_b, v, uid = key_a[order], key_b[order], v[order], uid[order]
    users = uid[np.concatenate([[True], uid[1:] != uid[:-1]])]  # (np.unique is slow here)
    qu = np.repeat(users, P)
    qj = np.tile(np.arange(P, dtype=np.int64), len(users))
    needle = qu * (P + 1) + qj
    hi = np.searchsorted(key_a, needle, side="right") - 1
    lo = np.searchsorted(key_b, needle, side="right")
    ok = lo <= hi
    qu, qj, lo, hi = qu[ok], qj[ok], lo[ok], hi[ok]
    if not len(qu):
        return out
    length = hi - lo + 1
    level = np.floor(np.log2(length)).astype(np.int64)
    table = [v]
    while (1 << len(table)) <= length.max():  # ok-loop: log2 of the longest run
        half = 1 << (len(table) - 1)
        prev = table[-1]
        table.append(op(prev[:-half], prev[half:]))
    res = np.empty(len(qu))
    for k, t in enumerate(table):  # ok-loop: one pass per table level
        m = level == k
        res[m] = op(t[lo[m]], t[hi[m] - (1 << k) + 1])
    out[qj, qu] = res
    return out


def _codes(values: pl.Series) -> np.ndarray:
    """Dense integer codes 0..n-1 of a column's values (in value order for numbers)."""
    if values.dtype == pl.String:
        values = values.cast(pl.Categorical).to_physical()
    return (values.rank("dense").cast(pl.Int64) - 1).to_numpy()


def _union_deltas(uid: np.ndarray, key: np.ndarray, a: np.ndarray, b: np.ndarray, P: int) -> _Part:
    """+1/-1 deltas of the union of the ``[a, b)`` ranges of each (uid, key) group.

    Inside a group, ordered by time, ``a`` and ``b`` never decrease; so after sorting
    by (uid, key, a, b) a run of overlapping ranges starts where the group changes or
    ``a`` passes the previous row's ``b``, and ends at the last ``b`` before the next
    run. ``key`` must be non-negative.
    """
    if len(uid) == 0:
        return _Part((uid, a, None), "add")
    key = key - key.min()
    spans = (int(uid.max()) + 1, int(key.max()) + 1, P + 1, P + 1)
    if spans[0] * spans[1] * spans[2] * spans[3] < 2**62:  # one int64 sort key
        packed = np.sort(((uid * spans[1] + key) * spans[2] + a) * spans[3] + b)
        packed = packed[np.concatenate([[True], packed[1:] != packed[:-1]])]
        b = packed % spans[3]
        a = packed // spans[3] % spans[2]
        key = packed // (spans[3] * spans[2]) % spans[1]
        uid = packed // (spans[3] * spans[2] * spans[1])
    else:
        order = np.lexsort((b, a, key, uid))
        uid, key, a, b = uid[order], key[order], a[order], b[order]
    new = np.ones(len(uid), dtype=bool)
    new[1:] = (uid[1:] != uid[:-1]) | (key[1:] != key[:-1]) | (a[1:] > b[:-1])
    last = np.ones(len(uid), dtype=bool)
    last[:-1] = new[1:]
    ends = last & (b < P)
    return _Part((uid[new], a[new], None), "add", minus=(uid[ends], b[ends], None))


def _periods(w: _Work, node: Behavior, ev: pl.DataFrame) -> _Part:
    """``event_periods`` at every point: distinct ``k = floor((T_j - ts) / period)``.

    With ``d`` the gcd of ``period`` and every ``T_j - T_0``, ``s_j = (T_j - T_0)/d``,
    ``m = period/d`` and ``q`` the event's age at ``T_0`` in units of d,
    ``k_j = floor((q + s_j) / m)``. For all the points with the same residue
    ``r = s_j mod m``, ``k_j`` is the fixed block
    ``floor((q + r) / m)`` plus a constant, so per residue the count is the number of
    distinct blocks whose events' ``[a, b)`` ranges cover j: a union of ranges.
    """
    P, U = w.pts.P, w.U
    steps = w.pts.T - w.pts.T[0]  # j * step; uneven across clock changes in a report zone
    d = int(np.gcd.reduce(np.append(steps, node.period)))
    m = node.period // d
    q = (int(w.pts.T[0]) - _ts_us(ev)) // d
    uid, a, b = (ev[c].to_numpy() for c in ("uid", "a", "b"))
    residues = (steps // d) % m
    out = np.zeros((P, U), dtype=np.float64)
    for r in np.unique(residues):  # ok-loop: at most m residues (7 for weeks of days)
        # blocks fall as time goes on: negate them so that a and b grow inside a group
        block = -((q + int(r)) // m)
        counts = _matrix(_union_deltas(uid, block, a, b, P), U, P)
        cols = residues == r
        out[cols] = counts[cols]
    return _dense(out)


def _seen(w: _Work, ev: pl.DataFrame, f: str) -> _Part:
    """``first_seen``/``last_seen`` in a sliding window, from the monotone ranges.

    Per user, ``ts``, ``a`` and ``b`` all grow together. last_seen at j is the latest
    event with ``a <= j`` (a running max) if its ``b > j``; first_seen at j is the
    earliest event with ``b > j`` (a running min from the right) if its ``a <= j``.
    """
    P, U = w.pts.P, w.U
    ts = pl.col("ts").dt.epoch("us").cast(pl.Float64)
    if f == "last_seen":
        g = ev.group_by("uid", "a").agg(ts.max().alias("t"), pl.col("b").max().alias("e"))
        uid, a = g["uid"].to_numpy(), g["a"].to_numpy()
        T = np.full((P, U), np.nan)
        E = np.full((P, U), -1.0)
        T[a, uid] = g["t"].to_numpy()
        E[a, uid] = g["e"].cast(pl.Float64).to_numpy()
        T, E = _accumulate(T, np.fmax), _accumulate(E, np.maximum)
        out = np.where(E > np.arange(P)[:, None], T, np.nan)
    else:
        g = ev.group_by("uid", "b").agg(ts.min().alias("t"), pl.col("a").min().alias("s"))
        uid, b = g["uid"].to_numpy(), g["b"].to_numpy()
        T = np.full((P + 1, U), np.nan)
        S = np.full((P + 1, U), np.inf)
        T[b, uid] = g["t"].to_numpy()
        S[b, uid] = g["s"].cast(pl.Float64).to_numpy()
        T = _accumulate(T, np.fmin, reverse=True)[1:]
        S = _accumulate(S, np.minimum, reverse=True)[1:]
        out = np.where(S <= np.arange(P)[:, None], T, np.nan)
    return _dense(out)


def _sequence_parts(w: _Work, node: Sequence, lo: np.ndarray, hi: np.ndarray) -> dict[str, _Part]:
    P = w.pts.P
    a_ev, b_ev = w.coded((node, False)), w.coded((node, True))
    a_ev = _ranges(a_ev.select("uid", "ts"), lo, hi, P)
    joined = a_ev.sort("ts").join_asof(
        b_ev.select("uid", pl.col("ts").alias("bt")).sort("bt"),
        left_on="ts",
        right_on="bt",
        by="uid",
        strategy="forward",
        allow_exact_matches=False,
        check_sortedness=False,
    )
    gap = pl.duration(microseconds=node.gap)
    followed = pl.col("bt").is_not_null() & (pl.col("bt") <= pl.col("ts") + gap)
    if node.func == "did_then":
        joined = joined.filter(followed)
        ready = _ts_us(joined, "bt")
    else:
        joined = joined.filter(~followed)
        ready = _ts_us(joined) + node.gap  # counts once a + gap < T
    c = np.searchsorted(w.pts.T, ready, side="right")
    joined = joined.with_columns(a=pl.max_horizontal(pl.col("a"), pl.Series(c, dtype=pl.Int64)))
    joined = joined.filter(pl.col("a") < pl.col("b"))
    return {"n": _deltas(joined, None, P)}


def _block_rows(rows: Rows, U: int, u0: int) -> Rows:
    """The rows of users ``u0..u0+U``, renumbered from 0."""
    uid, j, v = rows
    if u0 or (len(uid) and uid.max() >= U):
        keep = (uid >= u0) & (uid < u0 + U)
        uid, j, v = uid[keep] - u0, j[keep], None if v is None else v[keep]
    return uid, j, v


def _matrix(part: _Part, U: int, P: int, u0: int = 0) -> np.ndarray:
    """The P x (users ``u0..u0+U``) values of a part.

    Points are the slow axis: rows arrive in time order, so scattering them touches
    one point's row of U cells at a time, and running sums/min/max over points add
    whole rows (vectorised over users).
    """
    if part.matrix is not None:
        return part.matrix[:, u0 : u0 + U]
    if part.how == "add":

        def scatter(rows: Rows) -> np.ndarray:
            uid, j, v = _block_rows(rows, U, u0)
            return np.bincount(j * U + uid, weights=v, minlength=U * P)

        flat = scatter(part.rows)
        if part.minus is not None:
            flat = flat - scatter(part.minus)
        return _accumulate(flat.reshape(P, U))
    uid, j, v = _block_rows(part.rows, U, u0)
    M = np.full((P, U), part.fill, dtype=np.float64)
    M[j, uid] = v
    if part.how == "cummin":
        return _accumulate(M, np.fmin)
    if part.how == "cummax":
        return _accumulate(M, np.fmax)
    return M


def _term_series(node: Node, mats: dict[str, np.ndarray], schema: Schema) -> pl.Series:
    if isinstance(node, Sequence) or node.func == "did":
        return pl.Series(np.greater(mats["n"], 0).ravel())  # (a view's ravel would copy)
    f = node.func
    if f in ("event_count", "event_distinct"):
        return pl.Series(mats["n"].ravel().astype(np.int64, copy=False))
    if f == "event_periods":
        return pl.Series(np.rint(mats["v"].ravel()).astype(np.int64))
    ptype = type_of(node, schema)
    if f in ("event_sum", "event_avg"):
        n = np.rint(mats["n"].ravel())
        s = mats["s"].ravel()
        if f == "event_sum":
            s = np.where(n > 0, s, 0.0)
            if ptype == "int":
                return pl.Series(np.rint(s).astype(np.int64))
            return pl.Series(s)
        with np.errstate(invalid="ignore", divide="ignore"):
            return pl.Series(np.where(n > 0, s / np.where(n > 0, n, 1), np.nan)).fill_nan(None)
    values = pl.Series(mats["v"].ravel()).fill_nan(None)
    if f in ("first_seen", "last_seen") or ptype == "timestamp":
        return values.cast(pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if ptype == "date":
        return values.cast(pl.Int32).cast(pl.Date)
    if ptype == "int":
        return values.cast(pl.Int64)
    return values


def _eval_frame(
    tree: Node, frame: pl.DataFrame, schema: Schema, columns: dict[Node, str], T: dt.datetime
) -> np.ndarray:
    ctx = Ctx(T, schema, columns=columns)
    # with_columns broadcasts a constant rule (``TRUE``) to every row; select would not
    expr = to_expr(tree, ctx).fill_null(False).alias("__member")
    return frame.with_columns(expr)["__member"].to_numpy()


def grid(
    store: EventStore,
    tree: Node,
    pts: Points,
    *,
    schema: Schema | None = None,
    stack: tuple[str, ...] = (),
) -> Grid:
    """Membership of ``tree`` at every instant of ``pts`` (one pass over the events)."""
    schema = schema or schema_of(store, check_names=False)
    w = _Work(store, pts, schema)
    P = pts.P
    last = pts.instant(P - 1)
    terms = behaviours(tree)
    bounds = {t: _bounds(t, pts, schema) for t in terms}
    if _needs_naive(terms, bounds, schema):
        return naive_grid(store, tree, pts, schema=schema, stack=stack)
    required = _required_terms(tree)
    attrs = sorted(tree_columns(tree) & set(schema.users))
    # the users table read once (a second read in a new process would cache all of it)
    users = store.scan_users().select("user_id", *(a for a in attrs if a != "user_id")).collect()
    allowed = _allowed(users, tree, schema, last)
    if terms:
        _load_events(w, terms, bounds, required, allowed)
    subs = {
        ref: segment_grid(store, ref, pts, schema=schema, stack=stack)
        for ref in sorted(segment_refs(tree))
    }

    columns: dict[Node, str] = {}
    for i, t in enumerate(terms):
        columns[t] = f"__b{i}"
    for i, ref in enumerate(sorted(subs)):
        columns[InSegment(ref)] = f"__g{i}"
    rewritten, static = _split_static(tree, schema)
    extra = {name: type_of(n, schema) for name, n in static.items()}
    gschema = _clock_schema(schema, extra)

    # would a user with no attributes and no events be a member at some point?
    clock = _clock_frame(pts)
    null_attrs = pl.DataFrame(
        {c: pl.Series([None], dtype=polars_dtype(schema.users[c])) for c in attrs} or {"_": [0]}
    )
    null_static = _static_values(static, null_attrs, schema, last)
    kept = sorted(tree_columns(rewritten) & set(attrs))
    null_frame = clock.with_columns(
        [pl.lit(null_static[c][0], dtype=null_static[c].dtype).alias(c) for c in static]
        + [pl.lit(None, dtype=polars_dtype(schema.users[c])).alias(c) for c in kept]
        + [
            pl.lit(default_value(t) if isinstance(t, Behavior) else False).alias(columns[t])
            for t in terms
        ]
        + [pl.lit(False).alias(columns[InSegment(r)]) for r in subs]
    )
    # a rule reading user_id (never NULL) cannot be judged by the null row
    reads_key = "user_id" in attrs
    null_member = reads_key or bool(
        _eval_frame(rewritten, null_frame, gschema, columns, last).any()
    )
    if allowed is not None:  # candidates all pass the static conjuncts: judge the rest
        rewritten, static = _split_static(_drop_static(tree), schema)
        gschema = _clock_schema(schema, {n: type_of(x, schema) for n, x in static.items()})
        kept = sorted(tree_columns(rewritten) & set(attrs))

    # candidate users: with attributes, with events a term reads, in a referenced
    # segment, or (when a user with nothing can be a member) with any event
    # (a rule reading no attribute: users without events behave like the null row)
    first_ts = None
    if null_member:
        first_ts = (
            store.scan_events()
            .filter(pl.col("ts") < pl.lit(last, dtype=TS))
            .group_by("user_id")
            .agg(pl.col("ts").min().alias("first"))
            .collect()
        )
    if required:  # a member needs events of these terms: others never are
        ids = _required_users(w.frames, required)
    else:
        id_parts = [users["user_id"]] if attrs or null_member else []
        id_parts += [_distinct_users(f) for f in w.frames.values()]
        id_parts += [g.ids for g in subs.values()]
        if first_ts is not None:
            id_parts.append(first_ts["user_id"])
        id_parts.append(pl.Series("user_id", [], dtype=pl.String))
        ids = pl.concat([s.cast(pl.String) for s in id_parts])
    if allowed is not None:  # nor is a user whom the static conjuncts turn away
        ids = allowed.keep(ids)
    ids = ids.cast(pl.String).rename("user_id").unique().sort()
    U = len(ids)
    index = pl.DataFrame({"user_id": ids, "uid": np.arange(U, dtype=np.int64)})
    parts: dict[Node, dict[str, _Part]] = {}
    if terms:
        size = 1 + max((f[USER_CODE].to_physical().max() or 0 for f in w.frames.values()),
                       default=0)
        # from here on users are uids: the id strings need not be carried (or filtered)
        w.lookup = _uid_lookup(ids, size)
        w.U = U
        for t in terms:
            lo, hi = bounds[t]
            parts[t] = (
                _sequence_parts(w, t, lo, hi)
                if isinstance(t, Sequence)
                else _behavior_parts(w, t, lo, hi)
            )

    values = attr_frame = None
    if static or kept:
        joined = [a for a in attrs if a != "user_id"]  # user_id is the key itself
        attr_frame = (
            index.join(
                users.select("user_id", *joined), on="user_id", how="left"
            ).sort("uid")
            if joined
            else index
        )
        values = _static_values(static, attr_frame, schema, last)
    aligned = {ref: align(g, index, U, P) for ref, g in subs.items()}
    # count comparisons become boolean columns from the count matrices (no Int64 counts
    # in the frame); a term's own column only if the rule reads it elsewhere
    found = _count_compares(rewritten)
    compares: dict[Node, dict[Compare, tuple]] = {}
    for c, spec in found.items():
        compares.setdefault(spec[0], {})[c] = spec
    names = {c: f"__c{i}" for i, c in enumerate(found)}
    read = _read_outside(rewritten, set(found))
    rewritten = _as_columns(rewritten, names)
    gschema = _clock_schema(gschema, dict.fromkeys(names.values(), "bool"))
    MT = np.zeros((P, U), dtype=bool)  # points x users; the grid is its transpose (a view)
    block = max(1, CHUNK_CELLS // P)
    for u0 in range(0, U, block):  # ok-loop: blocks of users bound the memory
        n = min(U, u0 + block) - u0
        # rows in (point, user) order, like the P x n term matrices
        rep = np.tile(np.arange(u0, u0 + n, dtype=np.int64), P) if static or kept else None
        cols: dict[str, pl.Series] = {"__row": pl.Series(np.zeros(n * P, dtype=np.bool_))}
        for c in sorted(tree_columns(rewritten) & {NOW, TODAY}):  # only when read
            cols[c] = clock[c].gather(np.repeat(np.arange(P), n))
        for c in static:
            cols[c] = values[c].gather(rep)
        for c in kept:
            cols[c] = attr_frame[c].gather(rep)
        for t in terms:
            mats = {k: _matrix(p, n, P, u0) for k, p in parts[t].items()}
            if t in read:
                cols[columns[t]] = _term_series(t, mats, schema)
            for c, (_, op, number) in compares.get(t, {}).items():
                cols[names[c]] = pl.Series(NUMPY_COMPARE[op](mats["n"], number).ravel())
        for ref, a in aligned.items():
            cols[columns[InSegment(ref)]] = pl.Series(a[u0 : u0 + n].T.ravel())
        frame = pl.DataFrame([s.rename(name) for name, s in cols.items()])
        MT[:, u0 : u0 + n] = _eval_frame(rewritten, frame, gschema, columns, last).reshape(P, n)
    if null_member:
        inside = (
            index.join(
                users.select("user_id", known=pl.lit(True)), on="user_id", how="left"
            )
            .join(first_ts, on="user_id", how="left")
            .sort("uid")
        )
        first = inside["first"].dt.epoch("us").fill_null(np.iinfo(np.int64).max).to_numpy()
        known = inside["known"].fill_null(False).to_numpy()
        MT &= known[None, :] | (first[None, :] < pts.T[:, None])
    return Grid(ids, MT.T)


def _required_terms(tree: Node) -> list[Node]:
    """Terms whose events a member must have: conjuncts (reached from the root through
    AND) that are FALSE or NULL for a user without any of the term's events.

    ``did(...)``, a sequence (its first event), a comparison with an aggregate whose
    no-event value is NULL (``last_seen``, ``event_avg``, ...), or with a count-like
    aggregate (value 0) that 0 fails (``event_count(...) >= 3``). Users without such
    events are never members, so the grid leaves them out.
    """
    if isinstance(tree, And):
        return [t for a in tree.args for t in _required_terms(a)]
    if isinstance(tree, Sequence) or (isinstance(tree, Behavior) and tree.func == "did"):
        return [tree]
    if not isinstance(tree, Compare):
        return []
    term, op, other = tree.left, tree.op, tree.right
    if not isinstance(term, Behavior):
        term, op, other = tree.right, FLIP.get(tree.op, ""), tree.left
    if not isinstance(term, Behavior) or term.func == "did":
        return []
    zero = default_value(term)
    if zero is None:  # NULL compared with anything is NULL
        return [term]
    if isinstance(other, Lit) and type(other.value) in (int, float) and type(zero) in (int, float):
        holds = {">=": zero >= other.value, ">": zero > other.value, "=": zero == other.value,
                 "<=": zero <= other.value, "<": zero < other.value}.get(op, True)
        return [] if holds else [term]
    return []


def _count_compares(tree: Node) -> dict[Compare, tuple[Behavior, str, float]]:
    """Comparisons of a count with a number (``event_count(...) >= 3``): computed on the
    count matrix itself, as (term, op, number)."""
    out = {}
    for n in tree.walk():
        if not isinstance(n, Compare) or n.op not in NUMPY_COMPARE:
            continue
        term, op, other = n.left, n.op, n.right
        if not isinstance(term, Behavior):
            term, op, other = n.right, FLIP[n.op], n.left
        if (
            isinstance(term, Behavior)
            and term.func in ("event_count", "event_distinct")
            and isinstance(other, Lit)
            and type(other.value) in (int, float)
        ):
            out[n] = (term, op, other.value)
    return out


def _as_columns(tree: Node, names: dict[Compare, str]) -> Node:
    """``tree`` with the nodes of ``names`` replaced by those columns."""
    if tree in names:
        return Col(names[tree])
    return _replace(tree, lambda n: _as_columns(n, names))


def _read_outside(tree: Node, stop: set[Node]) -> set[Node]:
    """The nodes of ``tree`` not inside (or equal to) a node of ``stop``."""
    if tree in stop:
        return set()
    return {tree}.union(*(_read_outside(c, stop) for c in tree.children()))


def _required_users(frames: dict, required: list[Node]) -> pl.Series:
    """Candidates when some terms are required: the users of the smallest one's events
    (users without the others' events are never members either, but the rule says so
    for them; marking them here would cost a pass over the larger events)."""
    smallest = min((frames[(t, False)] for t in required), key=len)
    return _distinct_users(smallest)


def _distinct_users(events: pl.DataFrame) -> pl.Series:
    """The distinct ``user_id`` of events, found by their user codes (no string hashing)."""
    return events["user_id"].gather(distinct_user_rows(events[USER_CODE]))


def _uid_lookup(ids: pl.Series, size: int = 0) -> np.ndarray:
    """User code (below ``size``) -> row in ``ids`` (-1: not a candidate)."""
    codes = ids.cast(pl.Categorical).to_physical().to_numpy().astype(np.int64)
    lookup = np.full(max(size, int(codes.max(initial=-1)) + 1), -1, dtype=np.int64)
    lookup[codes] = np.arange(len(ids), dtype=np.int64)
    return lookup


def _static_values(
    static: dict[str, Node], frame: pl.DataFrame, schema: Schema, T: dt.datetime
) -> pl.DataFrame:
    ctx = Ctx(T, schema)
    if not static:
        return pl.DataFrame()
    exprs = [to_expr(n, ctx).alias(name) for name, n in static.items()]
    return frame.with_columns(exprs).select(list(static))  # constants broadcast to every row


def align(g: Grid, index: pl.DataFrame, U: int, P: int) -> np.ndarray:
    pos = pl.DataFrame({"user_id": g.ids, "row": np.arange(len(g.ids))}).join(
        index, on="user_id", how="inner"
    )
    out = np.zeros((U, P), dtype=bool)
    out[pos["uid"].to_numpy()] = g.M[pos["row"].to_numpy()]
    return out


def naive_grid(
    store: EventStore,
    tree: Node,
    pts: Points,
    *,
    schema: Schema | None = None,
    stack: tuple[str, ...] = (),
) -> Grid:
    """The grid by one full evaluation per point (reference and fallback)."""
    schema = schema or schema_of(store, check_names=False)
    sets = [
        plan_members(store, tree, pts.instant(j), schema=schema, stack=stack)
        .collect()
        .with_columns(j=pl.lit(j, dtype=pl.Int64))
        for j in range(pts.P)
    ]
    return _grid_from_pairs(pl.concat(sets), pts.P)


def _grid_from_pairs(pairs: pl.DataFrame, P: int) -> Grid:
    ids = pairs["user_id"].unique().sort()
    index = pl.DataFrame({"user_id": ids, "uid": np.arange(len(ids), dtype=np.int64)})
    rows = pairs.join(index, on="user_id")
    M = np.zeros((len(ids), P), dtype=bool)
    M[rows["uid"].to_numpy(), rows["j"].to_numpy()] = True
    return Grid(ids, M)


def segment_grid(
    store: EventStore,
    name: str,
    pts: Points,
    *,
    schema: Schema | None = None,
    stack: tuple[str, ...] = (),
) -> Grid:
    """A saved segment's grid (static: stored ids as they enter the universe)."""
    seg = resolve_segment(store, name, stack)
    if seg.tree is None:
        return _static_grid(store, store.catalog.members(seg.name), pts)
    return grid(store, seg.tree, pts, schema=schema, stack=seg.stack)


def _static_grid(store: EventStore, stored: list[str], pts: Points) -> Grid:
    ids = pl.DataFrame({"user_id": stored}, schema={"user_id": pl.String}).unique().sort("user_id")
    last = pts.instant(pts.P - 1)
    known = store.scan_users().select("user_id").with_columns(known=pl.lit(True))
    first = (
        store.scan_events()
        .filter(pl.col("ts") < pl.lit(last, dtype=TS))
        .join(ids.lazy(), on="user_id", how="semi")
        .group_by("user_id")
        .agg(pl.col("ts").min().alias("first"))
    )
    rows = (
        ids.lazy()
        .join(known, on="user_id", how="left")
        .join(first, on="user_id", how="left")
        .sort("user_id")
        .collect()
    )
    start = np.where(
        rows["known"].fill_null(False).to_numpy(),
        0,
        np.searchsorted(
            pts.T,
            rows["first"].dt.epoch("us").fill_null(np.iinfo(np.int64).max).to_numpy(),
            side="right",
        ),
    )
    M = np.arange(pts.P)[None, :] >= start[:, None]
    return Grid(rows["user_id"], M)


# --------------------------------------------------------------------------- public API
def target_grid(
    store: EventStore, rule: Any, segment: str | None, pts: Points, naive: bool = False
) -> Grid:
    """The grid of a rule or a saved segment (``naive``: one evaluation per point)."""
    if (rule is None) == (segment is None):
        raise RuleError("give either a rule or a segment name")
    schema = schema_of(store, check_names=False)
    if segment is not None:
        if naive:
            seg = resolve_segment(store, segment)
            if seg.tree is None:
                return _static_grid(store, store.catalog.members(seg.name), pts)
            return naive_grid(store, seg.tree, pts, schema=schema, stack=seg.stack)
        return segment_grid(store, segment, pts, schema=schema)
    tree = to_tree(store, rule)
    if naive:
        return naive_grid(store, tree, pts, schema=schema)
    return grid(store, tree, pts, schema=schema)


def _counts(g: Grid, pts: Points) -> pl.DataFrame:
    MT = g.M.T  # points x users (contiguous for the one-pass grid)
    size = np.count_nonzero(MT, axis=1)  # T_0..T_n
    members = size[1:]
    entered = np.count_nonzero(MT[1:] & ~MT[:-1], axis=1)
    exited = entered - np.diff(size)  # members(j) - members(j-1) = entered(j) - exited(j)
    return pl.DataFrame(
        {
            "date": pl.Series(list(pts.dates), dtype=pl.Date),
            "members": pl.Series(members, dtype=pl.Int64),
            "entered": pl.Series(entered, dtype=pl.Int64),
            "exited": pl.Series(exited, dtype=pl.Int64),
        }
    )


def trend(
    store: EventStore,
    rule: Any = None,
    start: Any = None,
    end: Any = None,
    every: str = "day",
    *,
    segment: str | None = None,
) -> pl.DataFrame:
    """Members, entered and exited at every point of ``start..end`` (docs/analytics.md).

    Returns a DataFrame ``date`` (Date), ``members``, ``entered``, ``exited`` (Int64).

    >>> trend(store, "did('charged', within => '30 days')", "2026-06-01", "2026-06-30")  # doctest: +SKIP
    """
    pts = make_points(start, end, every)
    return _counts(target_grid(store, rule, segment, pts), pts)


def trend_naive(
    store: EventStore,
    rule: Any = None,
    start: Any = None,
    end: Any = None,
    every: str = "day",
    segment: str | None = None,
) -> pl.DataFrame:
    """:func:`trend` by one full evaluation per point (reference for tests and benchmarks)."""
    pts = make_points(start, end, every)
    return _counts(target_grid(store, rule, segment, pts, naive=True), pts)


def trend_many(
    store: EventStore, segments: list[str], start: Any, end: Any, every: str = "day"
) -> pl.DataFrame:
    """Trends of several saved segments: ``segment, date, members, entered, exited``."""
    if not segments:
        raise UsageError("give at least one segment")
    frames = [
        trend(store, start=start, end=end, every=every, segment=s).select(
            pl.lit(s).alias("segment"), pl.all()
        )
        for s in segments
    ]
    return pl.concat(frames)


def trend_members(
    store: EventStore,
    rule: Any = None,
    date: Any = None,
    *,
    segment: str | None = None,
    which: str = "entered",
    every: str = "day",
) -> pl.DataFrame:
    """The users who ``entered``/``exited`` at the point of ``date`` (or its ``members``).

    The previous instant is one step (``every``) before the end of ``date``.
    """
    if which not in ("entered", "exited", "members"):
        raise UsageError(f"bad list {which!r}: use entered, exited or members")
    if date is None:
        raise UsageError("give the date of the point")
    d = parse_date(date, "point date")
    pts = make_points(d, d, "day")
    if every == "week":
        week_before = _us(end_of_day(d - dt.timedelta(days=7)))
        pts = Points((d,), np.array([week_before, pts.T[1]]), STEPS["week"])
    g = target_grid(store, rule, segment, pts, naive=True)
    now, prev = g.M[:, 1], g.M[:, 0]
    mask = {"entered": now & ~prev, "exited": prev & ~now, "members": now}[which]
    return pl.DataFrame({"user_id": g.ids.filter(pl.Series(mask))}).sort("user_id")
