"""Funnels (docs/analytics.md, Funnels) as Polars plans: chained forward ``join_asof``.

Semantics
---------
Steps S1..Sk (an event name and an optional ``where`` filter), a window W and a
range of days ``from..to`` (instants ``[from, to)``, ``to`` = end of the last day).
A user's *level* is the largest j such that there are j distinct events e1..ej,
ei matching Si, with ``ts(e1) <= ... <= ts(ej)`` (``strict``: ``<``), ``ts(e1)`` in
``[from, to)`` and ``ts(ej) - ts(e1) <= W``. Only events with ``from <= ts < to + W``
are read. Step i counts the users of level >= i. *Distinct* means different stored
rows (two identical rows are two events; one row never serves two steps); nothing
orders events of the same instant, so any of them may serve any step in any order
(``strict`` allows at most one step per instant).

Algorithm. Ordered funnels of distinct step events without exclusions (the common
case) take one latest-start pass (:func:`latest_start_users`): per step, one
backward ``join_asof``, a merge on a (user, time) key after pruning and a sort
(:mod:`segcore.analytics.funnel_keyed`), or by user with ``hold``. Every other
funnel builds chains (:func:`chains`): every step-1 event in ``[from, to)`` starts a
chain; each next step takes the earliest allowed event (greedy-earliest is optimal
for a fixed start), found with a forward ``join_asof`` on a global event order; a
chain stops when the window is exceeded. A user reaches step i when some chain does.
Rows are grouped per user (a 64-bit hash, collisions detected and handled) and
ordered by time, so one forward ``join_asof`` per step finds every chain's next event.

Equal instants. With mutually exclusive steps (all event names differ) no event can
serve two steps, so the next step may be any event at the same instant or later; the
result equals ClickHouse's ``windowFunnel(W)``. When steps share an event name
(*tie mode*, :func:`_tie_mode`), a chain at instant t that entered it at step p can
also serve steps p..q at t while those steps can take distinct events of t (a
bipartite matching, decided per instant by Hall counts, :func:`_tie_sets`); the
first step it cannot serve moves to the first matching event at a later instant.
Serving as many steps as possible at each instant is optimal. ClickHouse's
``windowFunnel`` differs here: one row may satisfy two conditions (``c@1, a@1`` with
steps ``a, c, a`` is level 3 there, 2 here). ``strict`` takes the next event at
a later instant; this equals ``windowFunnel(W, 'strict_increase')`` except where
ClickHouse loses a chain: it keeps only the newest chain per step, so with
``a@1, a@2, b@2, c@3`` it reports level 1 while ``a@1 < b@2 < c@3`` is a strict chain
(level 3 here, as the definition says).

Options
-------
- ``exclusions``: ``[{"event": E, "where": ..., "between": [i, j]}]`` (0-based step
  indexes, default first and last step). A chain is disqualified from step j on
  when an exclusion event lies strictly between its step-i and step-j events. For
  i = 0 the entry's earliest chain is checked; for i > 0 the chain is re-anchored on
  the first step-i event (after its step i-1; in tie mode the unanchored chain, whose
  step i may share step i-1's instant, is kept when clean) whose earliest sub-chain to
  step j is clean. An exclusion event at the instant of step i or j is not between
  them. Exact when the exclusion spans share no step (otherwise each span is
  re-anchored on its own).
- ``order="any"``: a user's level is the largest j such that j distinct events,
  one matching each of S1..Sj, all fall in some interval ``[t, t + W]`` whose earliest
  of them (``ts = t``) is in ``[from, to)``; equal instants need no order. Exact for
  any filters (Hall counts per set of overlapping steps, :func:`_any_order_chains`).
- ``hold``: a property that every event of a chain shares (NULL never matches).
- Time to convert: per user and step, the shortest qualifying chain from its
  first event to that step's event (any order: to the last of steps 1..i).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from segcore.analytics import funnel_keyed as keyed_mod
from segcore.errors import UsageError
from segcore.lang.dates import current_zone, end_of_day, parse_date
from segcore.lang.durations import parse_duration
from segcore.lang.periods import local_date, period_first
from segcore.store.cache import USER_CODE, distinct_user_rows

US = 1_000_000
_HIST_BINS: tuple[tuple[str, float, float], ...] = (
    ("< 1m", 0, 60),
    ("1m-5m", 60, 300),
    ("5m-15m", 300, 900),
    ("15m-1h", 900, 3600),
    ("1h-6h", 3600, 21600),
    ("6h-1d", 21600, 86400),
    ("1d-3d", 86400, 259200),
    ("3d-7d", 259200, 604800),
    ("7d-30d", 604800, 2592000),
    (">= 30d", 2592000, float("inf")),
)


@dataclass(frozen=True)
class FunnelStep:
    """One step: an event name and an optional ``where`` filter (rule text or Expr)."""

    event: str
    where: Any = None


@dataclass(frozen=True)
class Exclusion:
    """An exclusion event between steps ``between = (i, j)`` (0-based) of a chain."""

    event: str
    where: Any = None
    between: tuple[int, int] | None = None


@dataclass(frozen=True)
class FunnelSpec:
    """A fully resolved funnel definition."""

    steps: tuple[FunnelStep, ...]
    window: dt.timedelta
    start: dt.datetime
    end: dt.datetime
    strict: bool = False
    order: str = "ordered"
    exclusions: tuple[Exclusion, ...] = ()
    hold: str | None = None
    strict_order: bool = False
    dedup: bool = False

    @property
    def interrupted(self) -> bool:
        """True in the strict-order or step-deduplication mode (:func:`interrupted_chains`)."""
        return self.strict_order or self.dedup

    @property
    def window_us(self) -> int:
        return int(self.window / dt.timedelta(microseconds=1))


# ---------------------------------------------------------------------- parsing
def _blank_none(where: Any) -> Any:
    return None if isinstance(where, str) and not where.strip() else where


def step_fields(value: Any, where: str) -> tuple[str, Any]:
    """``(event, where filter)`` of a step given as an event name or ``{"event", "where"}``.

    The one reading of a step's shape, for funnels and for saved funnel queries.
    """
    if isinstance(value, str):
        return value, None
    if isinstance(value, Mapping) and isinstance(value.get("event"), str):
        unknown = set(value) - {"event", "where"}
        if unknown:
            raise UsageError(f"{where}: unknown key(s) {sorted(unknown)}; use event and where")
        return value["event"], value.get("where")
    raise UsageError(
        f"{where}: expected an event name or {{'event': ..., 'where': ...}}, got {value!r}"
    )


def _step(value: Any, where: str) -> FunnelStep:
    if isinstance(value, FunnelStep):
        return value
    event, condition = step_fields(value, where)
    return FunnelStep(event, _blank_none(condition))


def _exclusion(value: Any, k: int, n: int) -> Exclusion:
    where = f"exclusion {n + 1}"
    if isinstance(value, Exclusion):
        ex = value
    elif isinstance(value, str):
        ex = Exclusion(value)
    elif isinstance(value, dict) and isinstance(value.get("event"), str):
        unknown = set(value) - {"event", "where", "between"}
        if unknown:
            raise UsageError(
                f"{where}: unknown key(s) {sorted(unknown)}; use event, where, between"
            )
        between = value.get("between")
        ex = Exclusion(
            value["event"],
            _blank_none(value.get("where")),
            tuple(between) if between is not None else None,
        )
    else:
        raise UsageError(f"{where}: expected an event name or {{'event': ..., 'between': [i, j]}}")
    between = ex.between if ex.between is not None else (0, k - 1)
    if (
        len(between) != 2
        or not all(isinstance(b, int) for b in between)
        or not 0 <= between[0] < between[1] <= k - 1
    ):
        raise UsageError(
            f"{where}: between must be two step indexes 0 <= i < j <= {k - 1}, got {list(between)}"
        )
    return Exclusion(ex.event, ex.where, (int(between[0]), int(between[1])))


def _range(store, start, end) -> tuple[dt.datetime, dt.datetime]:
    if start is None or end is None:
        stats = (
            store.scan_events()
            .select(pl.col("ts").min().alias("a"), pl.col("ts").max().alias("b"))
            .collect()
        )
        first, last = stats["a"][0], stats["b"][0]
        if first is None:
            raise UsageError("the store has no events: give start and end dates")
        zone = current_zone()
        start = zone.local_date(first) if start is None else start
        end = zone.local_date(last) if end is None else end
    a, b = parse_date(start, "start date"), parse_date(end, "end date")
    if b < a:
        raise UsageError(f"the range ends ({b}) before it starts ({a})")
    return end_of_day(a - dt.timedelta(days=1)), end_of_day(b)


def make_spec(
    store,
    steps: Sequence[Any],
    window: Any = "1d",
    start=None,
    end=None,
    strict: bool = False,
    *,
    order: str = "ordered",
    exclusions: Iterable[Any] | None = None,
    hold: str | None = None,
    any_order: bool | None = None,
    strict_order: bool = False,
    dedup: bool = False,
) -> FunnelSpec:
    """Validate the arguments of a funnel and resolve dates and durations."""
    if isinstance(steps, str | FunnelStep | dict):
        steps = [steps]
    parsed = tuple(_step(s, f"step {i + 1}") for i, s in enumerate(steps or []))
    if not parsed:
        raise UsageError("a funnel needs at least one step")
    w = parse_duration(window)
    if w < dt.timedelta(0):
        raise UsageError(f"the window {window!r} is negative")
    if any_order:
        order = "any"
    if order not in ("ordered", "any"):
        raise UsageError(f"bad order {order!r}: use ordered or any")
    ex = tuple(_exclusion(x, len(parsed), n) for n, x in enumerate(exclusions or []))
    if ex and len(parsed) < 2:
        raise UsageError("exclusions need a funnel of at least two steps")
    if order == "any" and (strict or ex):
        raise UsageError("the any-order mode takes neither strict nor exclusions")
    if (strict_order or dedup) and (order == "any" or ex or hold is not None):
        raise UsageError(
            "strict order and step deduplication take ordered steps, no exclusions, no hold"
        )
    schema = store.events_schema()
    if hold is not None and hold not in schema:
        raise UsageError(f"unknown event property {hold!r} to hold constant")
    if hold in ("user_id", "event", "ts"):
        raise UsageError(f"cannot hold {hold!r} constant: choose an event property")
    names = set(store.event_names())
    for what, name in [("step", s.event) for s in parsed] + [("exclusion", x.event) for x in ex]:
        if name not in names:
            raise UsageError(f"unknown event {name!r} in a funnel {what}")
    a, b = _range(store, start, end)
    return FunnelSpec(
        parsed, w, a, b, bool(strict), order, ex, hold, bool(strict_order), bool(dedup)
    )


def _where_expr(store, where: Any, label: str) -> pl.Expr:
    if where is None:
        return pl.lit(True)
    if isinstance(where, pl.Expr):
        return where.fill_null(False)
    try:
        from segcore.engine.polars.evaluate import event_filter
    except ImportError:  # the evaluator is not installed in this checkout
        raise UsageError(f"{label}: where filters need segcore.engine.polars.evaluate") from None
    return event_filter(store, str(where)).fill_null(False)


# ---------------------------------------------------------------------- core
def _epoch_us(x: dt.datetime) -> int:
    return (x - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(microseconds=1)


def _hash(columns: list[str], seed: int) -> pl.Expr:
    """A 64-bit hash of one or more columns (collisions are detected by the caller)."""
    return pl.struct(columns).hash(seed) if len(columns) > 1 else pl.col(columns[0]).hash(seed)


def _exclusive(spec: FunnelSpec) -> bool:
    """True when no event can match two steps (all step event names differ)."""
    return len({s.event for s in spec.steps}) == len(spec.steps)


def _prepared(
    store, spec: FunnelSpec, users: pl.DataFrame | None
) -> tuple[pl.DataFrame, pl.Series, list[list[int]]]:
    """Relevant events sorted by ``(chain group, ts)``, the user ids and the step sets
    of :func:`_tie_sets` (one per step when steps are exclusive).

    The frame holds: orig (row in the user-id series), u (user key), g (chain group:
    user, or user and held value), ts (Int64 us), s (lowest step matched; k for
    exclusion-only rows), m0.. (only when steps overlap), x0.., rid (row number),
    nxt (the rid from which the next step may be searched: the first of a later
    instant when ``strict`` or in tie mode, else the first of the same instant), for
    any order tie (first rid of the same instant in the group) and, in tie mode
    (:func:`_tie_mode`), h0.. (per :func:`_tie_sets` set, the events of the row's
    instant in its group that match one of the set's steps).

    ``u`` and ``g`` are 64-bit hashes; a second independent 64-bit hash detects a
    collision (adjacent rows with the same key but different values), and then dense
    ranks are used instead, so results stay exact.
    """
    k = len(spec.steps)
    lo_us = _epoch_us(spec.start)
    hi = spec.end + spec.window
    if (_epoch_us(hi) - lo_us) >> 62:
        raise UsageError("the funnel range and window are too long")
    exclusive = _exclusive(spec)
    step_m = [
        (pl.col("event") == s.event) & _where_expr(store, s.where, f"step {i + 1}")
        for i, s in enumerate(spec.steps)
    ]
    if spec.hold is not None:
        step_m = [m & pl.col(spec.hold).is_not_null() for m in step_m]
    ex_m = [
        (pl.col("event") == x.event) & _where_expr(store, x.where, f"exclusion {n + 1}")
        for n, x in enumerate(spec.exclusions)
    ]
    names = sorted({s.event for s in spec.steps} | {x.event for x in spec.exclusions})
    cols = {"user_id", "event", "ts", *([spec.hold] if spec.hold else [])}
    for m in step_m + ex_m:
        cols |= set(m.meta.root_names())
    lf = store.events_frame(sorted(cols), events=names, since=spec.start, until=hi)
    if users is not None:
        lf = lf.join(users.lazy().select("user_id"), on="user_id", how="semi")
    lowest = pl.lit(k, dtype=pl.Int16)
    for i in reversed(range(k)):
        lowest = pl.when(step_m[i]).then(pl.lit(i, dtype=pl.Int16)).otherwise(lowest)
    group = ["user_id"] + ([spec.hold] if spec.hold else [])
    raw = (
        lf.select(
            *group,
            pl.col("ts").dt.epoch("us").alias("ts"),
            lowest.alias("s"),
            *([] if exclusive else [m.alias(f"m{i}") for i, m in enumerate(step_m)]),
            *[m.alias(f"x{n}") for n, m in enumerate(ex_m)],
            *([_hash(["user_id"], 7).alias("u")] if spec.hold else []),
            _hash(group, 11).alias("g"),
            _hash(group, 13).alias("_h"),
        )
        .filter(pl.any_horizontal(pl.col("s") < k, *[f"x{n}" for n in range(len(ex_m))]))
        .with_row_index("orig")
        .collect()
    )
    user_ids = raw["user_id"]
    df = raw.drop(group)
    if spec.hold and raw["u"].n_unique() != user_ids.n_unique():
        df = df.with_columns(user_ids.rank("dense").cast(pl.UInt64).alias("u"))
    # one multi-key sort: by group, then time
    ties = _tie_mode(spec)
    df = df.sort([pl.col("g"), pl.col("ts")], maintain_order=True)
    same_g = pl.col("g") == pl.col("g").shift(1)
    collision = df.select((same_g & (pl.col("_h") != pl.col("_h").shift(1))).any()).item()
    if collision:
        ranks = raw.select(
            pl.col("user_id").rank("dense").cast(pl.UInt64).alias("u"),
            pl.struct(group).rank("dense").cast(pl.UInt64).alias("g")
            if spec.hold
            else pl.col("user_id").rank("dense").cast(pl.UInt64).alias("g"),
        )
        df = raw.drop(group).with_columns(ranks)
        df = df.sort([pl.col("g"), pl.col("ts")], maintain_order=True)
    df = df.drop("_h")
    if not spec.hold:
        df = df.with_columns(pl.col("g").alias("u"))
    rid = pl.int_range(pl.len(), dtype=pl.Int64)
    run_start = (pl.col("g") != pl.col("g").shift(1)) | (pl.col("ts") != pl.col("ts").shift(1))
    starts = pl.when(run_start.fill_null(True)).then(rid)
    if spec.strict or ties:  # the first event at a later instant
        nxt = starts.shift(-1).fill_null(strategy="backward").fill_null(pl.len().cast(pl.Int64))
    else:  # any event at the same instant or later (it cannot be a used one)
        nxt = starts.fill_null(strategy="forward")
    df = df.with_columns(rid.alias("rid"), nxt.alias("nxt"))
    sets = [[i] for i in range(k)]
    if not exclusive:
        sets = _tie_sets(spec, df.select(f"m{i}" for i in range(k)).unique().iter_rows())
    if ties:  # per instant of a group, how many events match each set of step filters
        hits = [pl.any_horizontal(*[f"m{i}" for i in steps]).cast(pl.Int32) for steps in sets]
        first = starts.fill_null(strategy="forward")
        # an instant's rows are rids first .. nxt - 1: a difference of cumulative counts
        df = (
            df.with_columns(
                first.alias("_f"), *[h.cum_sum().alias(f"h{n}") for n, h in enumerate(hits)]
            )
            .with_columns(
                (
                    pl.col(f"h{n}").gather(pl.col("nxt") - 1)
                    - pl.col(f"h{n}").gather("_f")
                    + h.gather("_f")
                ).alias(f"h{n}")
                for n, h in enumerate(hits)
            )
            .drop("_f")
        )
    if spec.order == "any":
        df = df.with_columns(starts.fill_null(strategy="forward").alias("tie"))
    return df, user_ids, sets


def _matches(ev: pl.DataFrame, i: int) -> pl.Expr:
    return pl.col(f"m{i}") if f"m{i}" in ev.columns else pl.col("s") == i


@dataclass
class Chains:
    """Per step, the qualifying chains ``u, r0, t0, t_end`` (us) and the user ids by rid."""

    frames: list[pl.DataFrame]
    user_ids: pl.Series


def _tie_mode(spec: FunnelSpec) -> bool:
    """Ordered, not strict, and an event may match several steps: equal-timestamp
    events are then assigned to steps by matching (see :func:`_tie_sets`)."""
    return spec.order == "ordered" and not spec.strict and not _exclusive(spec)


MAX_TIE_SETS = 4096


def _tie_sets(spec: FunnelSpec, observed: Iterable[Sequence[bool]]) -> list[list[int]]:
    """Sets of steps whose neighbourhoods bound a matching of steps to events (Hall).

    Steps with the same event name and filter match the same events. For a set ``F``
    of filters of one event name, take the steps using a filter of ``F``: steps
    ``p..q`` can take distinct events of a group (one instant, or a window) iff, for
    every such set, the events matching one of its steps are at least its steps in
    ``p..q``. ``F`` need only range over sets connected by events matching two of
    their filters (``observed``: the distinct per-event step matches), since counts
    of unconnected parts add up; disjoint filters give one set per filter.
    """
    filters: dict[str, list[Any]] = {}
    node_of = []
    for s in spec.steps:
        # an expression's text may be abbreviated: compare serialized expressions
        key = s.where.meta.serialize() if isinstance(s.where, pl.Expr) else s.where
        keys = filters.setdefault(s.event, [])
        if key not in keys:
            keys.append(key)
        node_of.append((s.event, keys.index(key)))
    near: dict[tuple[str, int], set[tuple[str, int]]] = {n: set() for n in node_of}
    for row in observed:
        hit = {node_of[i] for i, m in enumerate(row) if m}
        for n in hit:
            near[n] |= hit - {n}
    found: set[frozenset] = set()
    todo = [frozenset([n]) for n in near]
    while todo:  # connected sets, grown one neighbour at a time
        f = todo.pop()
        if f in found:
            continue
        found.add(f)
        if len(found) > MAX_TIE_SETS:
            event = next(iter(f))[0]
            raise UsageError(
                f"the funnel steps on event {event!r} have too many overlapping filters "
                f"(more than {MAX_TIE_SETS} combinations to check)"
            )
        todo.extend(f | {m} for n in f for m in near[n] - f)
    return sorted([i for i, n in enumerate(node_of) if n in f] for f in found)


def _reach_at_instant(sets: list[list[int]], k: int, p: int) -> pl.Expr:
    """On an event row, the last step ``q`` such that steps ``p..q`` can take distinct
    events of the row's instant (``h{n}`` counts per set of :func:`_tie_sets`; the row
    matches step ``p``)."""
    bounds = []
    for n, steps in enumerate(sets):
        later = [s for s in steps if s >= p]
        if not later:
            continue
        # with c matching events, the (c+1)-th of these steps cannot be served
        e = pl.lit(k - 1, dtype=pl.Int32)
        for c in reversed(range(len(later))):
            e = (
                pl.when(pl.col(f"h{n}") == c)
                .then(pl.lit(later[c] - 1, dtype=pl.Int32))
                .otherwise(e)
            )
        bounds.append(e)
    return pl.min_horizontal(bounds)


def _step_join(
    cur: pl.DataFrame,
    ev: pl.DataFrame,
    spec: FunnelSpec,
    sets: list[list[int]],
    i: int,
    key: str,
    prev: str,
) -> pl.DataFrame:
    """Each chain's earliest step-``i`` event: adds ``t{i}``, ``_nxt`` (and ``_E``).

    The event is searched from rid ``key`` on. In tie mode (:func:`_tie_mode`) a chain
    also carries ``E``, the last step it can serve at its current instant ``prev``
    (with events other than those its earlier steps at that instant took); step
    ``i <= E`` stays at that instant, otherwise the chain moves to the first step-``i``
    event at a later instant (``key`` is then that instant's end) and ``_E`` is
    recomputed there. Without tie mode ``_E`` is absent.
    """
    ties = "E" in cur.columns
    right = ev.filter(_matches(ev, i)).select(
        pl.col("g").alias("_g"),
        pl.col("rid").alias("_r"),
        pl.col("ts").alias(f"t{i}"),
        pl.col("nxt").alias("_nxt"),
        *([_reach_at_instant(sets, len(spec.steps), i).alias("_E")] if ties else []),
    )
    # rows are ordered by (group, ts): the first row at or after `key` is the
    # earliest allowed event when it belongs to the same group
    out = cur.join_asof(
        right, left_on=key, right_on="_r", strategy="forward", check_sortedness=False
    )
    if not ties:
        return out.filter(pl.col("_g") == pl.col("g")).drop("_g", "_r")
    stay = pl.col("E") >= i
    return (
        out.filter(stay | (pl.col("_g") == pl.col("g")))
        .with_columns(
            pl.when(stay).then(pl.col(prev)).otherwise(pl.col(f"t{i}")).alias(f"t{i}"),
            pl.when(stay).then(pl.col(key)).otherwise(pl.col("_nxt")).alias("_nxt"),
            pl.when(stay).then(pl.col("E")).otherwise(pl.col("_E")).alias("_E"),
        )
        .drop("_g", "_r")
        .sort("_nxt")
    )


def _no_exclusion(cur: pl.DataFrame, ev: pl.DataFrame, n: int, ta: str, tb: str) -> pl.DataFrame:
    """Keep the rows with no exclusion-``n`` event strictly between ``ta`` and ``tb``."""
    xs = ev.filter(pl.col(f"x{n}")).select("u", pl.col("ts").alias("_x")).sort("_x")
    return (
        cur.sort(ta)
        .join_asof(
            xs,
            left_on=ta,
            right_on="_x",
            by="u",
            strategy="forward",
            allow_exact_matches=False,
            check_sortedness=False,
        )
        .filter(pl.col("_x").is_null() | (pl.col("_x") >= pl.col(tb)))
        .drop("_x")
    )


def _clean_spans(
    ev: pl.DataFrame, spec: FunnelSpec, sets: list[list[int]], n: int, a: int, b: int
) -> pl.DataFrame:
    """For every step-``a`` event: its greedy sub-chain to step ``b`` when no
    exclusion-``n`` event lies strictly inside it (``_g, _r, t{b}, _nxt[, _E]``, by rid)."""
    ties = _tie_mode(spec)
    c = ev.filter(_matches(ev, a)).select(
        "g",
        "u",
        pl.col("rid").alias("_ra"),
        pl.col("ts").alias(f"t{a}"),
        "nxt",
        *([_reach_at_instant(sets, len(spec.steps), a).alias("E")] if ties else []),
    )
    for j in range(a + 1, b + 1):
        c = _step_join(c, ev, spec, sets, j, "nxt", f"t{j - 1}").drop("nxt").rename({"_nxt": "nxt"})
        if ties:
            c = c.drop("E").rename({"_E": "E"})
        if j - 1 > a:
            c = c.drop(f"t{j - 1}")
    c = _no_exclusion(c, ev, n, f"t{a}", f"t{b}")
    return c.select(
        pl.col("g").alias("_g"),
        pl.col("_ra").alias("_r"),
        f"t{b}",
        pl.col("nxt").alias("_nxt"),
        *([pl.col("E").alias("_E")] if ties else []),
    ).sort("_r")


def _ordered_chains(
    ev: pl.DataFrame, spec: FunnelSpec, sets: list[list[int]]
) -> list[pl.DataFrame]:
    to_us = _epoch_us(spec.end)
    k = len(spec.steps)
    ties = _tie_mode(spec)
    excl_at: dict[int, list[tuple[int, int]]] = {}
    for n, x in enumerate(spec.exclusions):
        excl_at.setdefault(x.between[1], []).append((n, x.between[0]))
    # exclusions from step 0 check the chain; later ones re-anchor it (see _clean_spans)
    needed_n = {a - 1 for lst in excl_at.values() for _, a in lst if a > 0}
    # in tie mode, step a may share step a-1's instant: the unanchored chain is tried first
    needed_t = {a for lst in excl_at.values() for _, a in lst if a > 0} if ties else set()
    cur = ev.filter(_matches(ev, 0) & (pl.col("ts") < to_us)).select(
        "g",
        "u",
        pl.col("orig").alias("r0"),
        pl.col("ts").alias("t0"),
        "nxt",
        *([pl.col("nxt").alias("n0")] if 0 in needed_n else []),
        *([_reach_at_instant(sets, len(spec.steps), 0).alias("E")] if ties else []),
    )
    out = [cur.select("u", "r0", "t0", pl.col("t0").alias("t_end"))]
    for i in range(1, k):
        within = pl.col(f"t{i}") - pl.col("t0") <= spec.window_us
        cur = _step_join(cur, ev, spec, sets, i, "nxt", f"t{i - 1}").filter(within)
        resorted = False
        for n, a in sorted(excl_at.get(i, []), key=lambda e: -e[1]):
            if a > 0:  # the first clean span from step a that starts after step a-1
                spans = _clean_spans(ev, spec, sets, n, a, i)
                moved = (
                    cur.drop(f"t{i}", "_nxt", *(["_E"] if ties else []))
                    .sort(f"n{a - 1}")
                    .join_asof(
                        spans,
                        left_on=f"n{a - 1}",
                        right_on="_r",
                        strategy="forward",
                        check_sortedness=False,
                    )
                    .filter((pl.col("_g") == pl.col("g")) & within)
                    .drop("_g", "_r")
                )
                if ties:  # keep the unanchored chain where it is clean
                    clean = _no_exclusion(cur, ev, n, f"t{a}", f"t{i}")
                    dirty = cur.join(clean.select("r0", "t0"), on=["r0", "t0"], how="anti")
                    moved = moved.join(dirty.select("r0", "t0"), on=["r0", "t0"], how="semi")
                    cur = pl.concat([clean, moved.select(clean.columns)])
                else:
                    cur = moved
            else:
                cur = _no_exclusion(cur, ev, n, "t0", f"t{i}")
            resorted = True
        keep_n = [f"n{j}" for j in range(i) if j in needed_n]
        keep_t = [f"t{j}" for j in range(1, i) if j in needed_t]
        cur = cur.select(
            "g",
            "u",
            "r0",
            "t0",
            *keep_t,
            f"t{i}",
            *keep_n,
            pl.col("_nxt").alias("nxt"),
            *([pl.col("_nxt").alias(f"n{i}")] if i in needed_n else []),
            *([pl.col("_E").alias("E")] if ties else []),
        )
        if resorted:
            cur = cur.sort("nxt")
        out.append(cur.select("u", "r0", "t0", pl.col(f"t{i}").alias("t_end")))
    return out


def _any_order_chains(
    ev: pl.DataFrame, spec: FunnelSpec, sets: list[list[int]]
) -> list[pl.DataFrame]:
    """Any order: from every instant ``t0`` of a step event in range, the least ``T``
    such that steps ``1..i`` take distinct events of ``[t0, T]``.

    By Hall's theorem (events of different names never compete, and steps with the
    same filter have the same events), steps ``1..i`` fit in ``[t0, T]`` iff for each
    set ``F`` of :func:`_tie_sets`, the events at or after ``t0`` matching a step of
    ``F`` include ``c`` = its steps among ``1..i`` up to ``T``: ``T`` is the largest
    time of such a ``c``-th event. A fitting set that avoids ``t0`` can swap in an event
    at ``t0`` matching one of steps ``1..i``, so ``t0`` is the earliest event when the
    start row matches one of them.
    """
    k = len(spec.steps)
    starts = ev.filter((pl.col("s") < k) & (pl.col("ts") < _epoch_us(spec.end))).select(
        "g", "u", pl.col("orig").alias("r0"), pl.col("ts").alias("t0"), "tie", "s"
    )
    for n, steps in enumerate(sets):
        right = (
            ev.filter(pl.any_horizontal(*[_matches(ev, i) for i in steps]))
            .select(pl.col("g").alias("_g"), pl.col("rid").alias("_r"), pl.col("ts").alias("_t"))
            .with_row_index("_p")
        )
        # the first such event at or after t0 (its position, for the c-th one)
        starts = starts.join_asof(
            right.select("_r", "_p", "_g", "_t"),
            left_on="tie",
            right_on="_r",
            strategy="forward",
            check_sortedness=False,
        ).with_columns(pl.when(pl.col("_g") == pl.col("g")).then(pl.col("_t")).alias(f"f{n}_1"))
        starts = starts.drop("_r", "_g", "_t")
        for c in range(2, len(steps) + 1):
            starts = (
                starts.with_columns((pl.col("_p") + (c - 1)).alias("_q"))
                .join(
                    right.drop("_r"),
                    left_on="_q",
                    right_on="_p",
                    how="left",
                    maintain_order="left",
                )
                .with_columns(
                    pl.when(pl.col("_g") == pl.col("g")).then(pl.col("_t")).alias(f"f{n}_{c}")
                )
                .drop("_q", "_g", "_t")
            )
        starts = starts.drop("_p")
    out = []
    for i in range(k):
        needed = [
            f"f{n}_{sum(1 for j in steps if j <= i)}"
            for n, steps in enumerate(sets)
            if steps[0] <= i
        ]
        end = pl.max_horizontal(needed)
        ok = (
            pl.all_horizontal([pl.col(c).is_not_null() for c in needed])
            & (end - pl.col("t0") <= spec.window_us)
            & (pl.col("s") <= i)
        )
        out.append(starts.filter(ok).select("u", "r0", "t0", end.alias("t_end")))
    return out


# ---------------------------------------------------------------------- strict order, dedup
MAX_STEPS_PER_EVENT = 10


def _hall_subsets(spec: FunnelSpec) -> list[tuple[int, ...]]:
    """Per event name, every set of its steps (Hall's condition for distinct rows)."""
    by_name: dict[str, list[int]] = {}
    for i, s in enumerate(spec.steps):
        by_name.setdefault(s.event, []).append(i)
    out: list[tuple[int, ...]] = []
    for name, steps in by_name.items():
        if len(steps) > MAX_STEPS_PER_EVENT:
            raise UsageError(
                f"strict order and deduplication take at most {MAX_STEPS_PER_EVENT} steps "
                f"on one event ({name!r} has {len(steps)})"
            )
        for mask in range(1, 1 << len(steps)):
            out.append(tuple(s for b, s in enumerate(steps) if mask >> b & 1))
    return out


def _instants(
    store, spec: FunnelSpec, users: pl.DataFrame | None
) -> tuple[pl.DataFrame, pl.Series]:
    """Per user and instant (sorted, row ``n``): ``u, ts`` and Hall counts ``c<set>``
    (rows matching one of the set's steps), and ``nx<i>``: the instant where step
    i + 1 (0-based) must be taken after a step-i event at this instant when it is not
    taken at the same instant (strict order: the next instant with any event of the
    user; dedup: the next one with an event matching one of steps 1..i+1)."""
    k = len(spec.steps)
    hi = spec.end + spec.window
    step_m = [
        (pl.col("event") == s.event) & _where_expr(store, s.where, f"step {i + 1}")
        for i, s in enumerate(spec.steps)
    ]
    cols = {"user_id", "event", "ts"}
    for m in step_m:
        cols |= set(m.meta.root_names())
    names = None if spec.strict_order else sorted({s.event for s in spec.steps})
    lf = store.events_frame(sorted(cols), events=names, since=spec.start, until=hi)
    if users is not None:
        lf = lf.join(users.lazy().select("user_id"), on="user_id", how="semi")
    subsets = _hall_subsets(spec)
    rows = lf.select(
        pl.col("user_id").cast(pl.String),
        pl.col("ts").dt.epoch("us").alias("ts"),
        *[m.alias(f"m{i}") for i, m in enumerate(step_m)],
    ).collect()
    user_ids = rows["user_id"].unique().sort()
    inst = (
        rows.group_by(pl.col("user_id").cast(pl.Enum(user_ids)).to_physical().alias("u"), "ts")
        .agg(
            pl.any_horizontal(*[f"m{i}" for i in x]).sum().cast(pl.Int32).alias(_cname(x))
            for x in subsets
        )
        .sort("u", "ts")
        .with_row_index("n")
        .with_columns(pl.col("n").cast(pl.Int64))
    )
    same_user_next = pl.col("u").shift(-1) == pl.col("u")
    nexts = []
    for i in range(k - 1):
        if spec.strict_order:
            nx = pl.when(same_user_next).then(pl.col("n") + 1)
        else:  # the first later instant with an event matching one of steps 1..i+1
            block = pl.any_horizontal(pl.col(_cname((s,))) > 0 for s in range(1, i + 2))
            nx = (
                pl.when(block)
                .then(pl.col("n"))
                .shift(-1)
                .over("u")
                .fill_null(strategy="backward")
                .over("u")
            )
        nexts.append(nx.alias(f"nx{i}"))
    return inst.with_columns(nexts), user_ids


def _cname(steps: tuple[int, ...]) -> str:
    return "c" + "_".join(map(str, steps))


def _fits(spec: FunnelSpec, subsets: list[tuple[int, ...]], p: int, q: int) -> pl.Expr:
    """Steps p..q (0-based) can take distinct rows of one instant, given that p..q-1 can."""
    need = [x for x in subsets if q in x and all(p <= s <= q for s in x)]
    return pl.all_horizontal(pl.col(_cname(x)) >= len(x) for x in need)


def interrupted_chains(store, spec: FunnelSpec, users: pl.DataFrame | None = None) -> Chains:
    """Chains of the strict-order and step-deduplication modes (docs/analytics.md).

    A chain visits the user's instants in time order; each instant hosts a run of
    consecutive steps taking distinct rows (Hall counts per set of steps on one event).
    After step i at instant n, step i + 1 is at n again or at ``nx<i>`` of n
    (:func:`_instants`): any later instant would leave an interrupting event between.
    Staying is not always best (the next instant may open a longer path), so every
    reachable state ``(start, instant, first step of the run there)`` is kept: one join
    per step, no row loops.
    """
    k = len(spec.steps)
    inst, user_ids = _instants(store, spec, users)
    subsets = _hall_subsets(spec)
    lo, hi = _epoch_us(spec.start), _epoch_us(spec.end)
    state = inst.filter(
        (pl.col(_cname((0,))) > 0) & (pl.col("ts") >= lo) & (pl.col("ts") < hi)
    ).select("u", pl.col("ts").alias("t0"), "n", pl.lit(0, pl.Int32).alias("p"), "ts")
    frames = [state]
    for q in range(1, k):
        here = state.join(inst, on="n", how="left", suffix="_i")
        parts = []
        if not spec.strict:  # the run at this instant takes step q too
            fits = pl.lit(False)
            for p in range(q):
                fits = pl.when(pl.col("p") == p).then(_fits(spec, subsets, p, q)).otherwise(fits)
            parts.append(here.filter(fits).select("u", "t0", "n", "p", "ts"))
        moved = (
            here.select("u", "t0", pl.col(f"nx{q - 1}").alias("n"))
            .drop_nulls("n")
            .join(inst.select("n", "ts", _cname((q,))), on="n", how="inner")
            .filter((pl.col(_cname((q,))) > 0) & (pl.col("ts") - pl.col("t0") <= spec.window_us))
            .select("u", "t0", "n", pl.lit(q, pl.Int32).alias("p"), "ts")
        )
        parts.append(moved)
        state = pl.concat(parts).unique(["u", "t0", "n", "p"])
        frames.append(state)
    out = [
        f.select(pl.col("u"), pl.col("u").alias("r0"), "t0", pl.col("ts").alias("t_end"))
        for f in frames
    ]
    return Chains(out, user_ids)


def chains(store, spec: FunnelSpec, users: pl.DataFrame | None = None) -> Chains:
    """Per step, the qualifying chains of :func:`funnel` (see the module docstring)."""
    if spec.interrupted:
        return interrupted_chains(store, spec, users)
    ev, user_ids, sets = _prepared(store, spec, users)
    build = _any_order_chains if spec.order == "any" else _ordered_chains
    frames = build(ev, spec, sets)
    return Chains(frames, user_ids)


def _latest_start_eligible(spec: FunnelSpec) -> bool:
    """The latest-start pass applies to ordered funnels of distinct events, no exclusions."""
    return (
        spec.order == "ordered"
        and not spec.exclusions
        and _exclusive(spec)
        and not spec.interrupted
    )


def _step_plans(
    store, spec: FunnelSpec, users: pl.DataFrame | None
) -> tuple[list[pl.LazyFrame], list[str], bool]:
    """Per step, a plan of its events (``by`` keys and ``ts`` in us), ``by``, and whether
    every plan reads the in-memory event cache (not Parquet).

    ``by`` is the user code column (plus the held property); step-1 events are those in
    ``[from, to)`` (of ``users`` only, if given), later steps' in ``[from, to + W)``.
    """
    hi = spec.end + spec.window
    by = [USER_CODE] + ([spec.hold] if spec.hold else [])
    plans = []
    in_memory = True
    for i, step in enumerate(spec.steps):
        cond = _where_expr(store, step.where, f"step {i + 1}")
        if spec.hold is not None:
            cond = cond & pl.col(spec.hold).is_not_null()
        cols = {USER_CODE, "event", "ts", *by, *cond.meta.root_names()}
        if i == 0 and users is not None:
            cols.add("user_id")
        lf = store.events_frame(
            sorted(cols), events=[step.event], since=spec.start, until=spec.end if i == 0 else hi
        )
        in_memory = in_memory and store.in_memory(lf)
        lf = lf.filter(cond)
        if i == 0 and users is not None:
            lf = lf.join(users.lazy().select("user_id"), on="user_id", how="semi")
        plans.append(lf.select(*by, pl.col("ts").dt.epoch("us")))
    return plans, by, in_memory


def _keyed_frames(
    store, spec: FunnelSpec, users: pl.DataFrame | None, *, all_starts: bool = False
) -> tuple[list[pl.DataFrame], int | None, list[str], pl.DataFrame]:
    """Per step, its events and ``span``: keyed and sorted by ``k``
    (:func:`segcore.analytics.funnel_keyed.keyed_steps`) when no property is held and
    the keys fit, else in time order with ``span`` None; ``by``; the step-1 events as
    read (``by`` and ``ts``)."""
    plans, by, in_memory = _step_plans(store, spec, users)
    # slices of the cache: the in-memory engine returns them whole (one chunk each, read
    # by numpy without a copy), where the streaming engine would cut them in morsels
    frames = pl.collect_all(plans, engine="in-memory" if in_memory else "auto")
    lo, hi = _epoch_us(spec.start), _epoch_us(spec.end + spec.window)
    span = keyed_mod.key_span(frames, lo, hi) if spec.hold is None else None
    if span is None:
        return [f if f["ts"].is_sorted() else f.sort("ts") for f in frames], None, by, frames[0]
    keyed = keyed_mod.keyed_steps(frames, lo, span, spec.window_us, all_starts=all_starts)
    return keyed, span, by, frames[0]


def _carry(
    left: pl.DataFrame, right: pl.DataFrame, by: list[str], col: str, strategy: str, strict: bool
) -> pl.DataFrame:
    """Each ``left`` event gets ``col`` of the same user's nearest ``right`` event: the
    last at or before it (``backward``) or the first at or after it (``forward``);
    ``strict`` excludes the same instant. Both frames are in time order."""
    return left.join_asof(
        right.select(*by, "ts", col),
        on="ts",
        by=by,
        strategy=strategy,
        allow_exact_matches=not strict,
        check_sortedness=False,
    )


def earliest_completions(
    store, spec: FunnelSpec, users: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Every start (step-1 event in range): ``__user, t0, completed`` (ordered, distinct events).

    Backwards from the last step, ``E(e)`` is the earliest time a chain from step-i
    event e completes: ``E = ts`` at the last step, else the ``E`` of the user's first
    step-(i+1) event at or after ``ts(e)`` (``strict``: after); ``E`` never decreases
    in time order, so the first such event has the least. One forward ``join_asof``
    per step; the start completes when ``E - t0 <= W`` (greedy-earliest chains).
    """
    frames, span, by, first = _keyed_frames(store, spec, users, all_starts=True)
    if span is not None:
        starts = keyed_mod.earliest_completions(frames, span, spec.window_us, spec.strict)
        return starts.rename({"code": USER_CODE})
    nxt = frames[-1].with_columns(pl.col("ts").alias("E"))
    for i in range(len(frames) - 2, -1, -1):
        nxt = _carry(frames[i], nxt, by, "E", "forward", spec.strict)
        if i:  # an event from which nothing completes cannot help an earlier step
            nxt = nxt.filter(pl.col("E").is_not_null())
    return nxt.select(
        USER_CODE,
        pl.col("ts").alias("t0"),
        (pl.col("E") - pl.col("ts") <= spec.window_us).fill_null(False).alias("completed"),
    )


def latest_start_users(
    store, spec: FunnelSpec, users: pl.DataFrame | None = None
) -> list[pl.DataFrame]:
    """Per step, ``user_id, seconds`` by a latest-start pass (ordered, distinct events).

    For every step-i event e, ``L(e)`` is the latest step-1 time from which a chain
    reaches e: ``L = ts`` for step-1 events, and ``L(e)`` = the largest ``L`` of the
    user's step-(i-1) events at or before ``ts(e)`` (``strict``: before). ``L`` never
    decreases along a user's events in time order, so that largest value is the one of
    the *last* such event: one backward ``join_asof`` per step, on (user, time) keys
    (:mod:`segcore.analytics.funnel_keyed`), or by user on frames in time order when a
    property is held or the keys do not fit. e reaches step i when
    ``ts(e) - L(e) <= W``; the user's time to convert is the least ``ts(e) - L(e)``,
    the shortest qualifying chain. With distinct step events no event can serve two
    steps, so this equals the chain definition (and ClickHouse ``windowFunnel``).
    """
    frames, span, by, first = _keyed_frames(store, spec, users)
    if span is not None:
        ids = keyed_mod.user_ids(first)
        entered = ids.select("user_id", pl.lit(0.0).alias("seconds"))
        return [entered] + [
            f.join(ids, on="code").select("user_id", "seconds")
            for f in keyed_mod.latest_start(frames, span, spec.window_us, spec.strict)
        ]
    cur = frames[0].with_columns(pl.col("ts").alias("L"))
    # every step-1 event is a chain of length 0
    starters = cur[USER_CODE].gather(distinct_user_rows(cur[USER_CODE]))
    zero = pl.zeros(len(starters), pl.Float64, eager=True).alias("seconds")
    out = [pl.DataFrame([starters.cast(pl.String).alias("user_id"), zero])]
    for e in frames[1:]:
        cur = _carry(e, cur, by, "L", "backward", spec.strict).filter(
            pl.col("ts") - pl.col("L") <= spec.window_us
        )
        out.append(
            cur.group_by(USER_CODE)
            .agg(((pl.col("ts") - pl.col("L")).min() / US).alias("seconds"))
            .select(pl.col(USER_CODE).cast(pl.String).alias("user_id"), "seconds")
        )
    return out


def reached(
    store, spec: FunnelSpec, users: pl.DataFrame | None = None, *, method: str = "auto"
) -> list[pl.DataFrame]:
    """Per step, one row per user reaching it: ``user_id, seconds`` (shortest time).

    ``method``: ``"latest_start"`` (:func:`latest_start_users`; ordered funnels of
    distinct events without exclusions), ``"chains"`` (:func:`chains`, every option) or
    ``"auto"`` (the first when it applies).
    """
    if _pick_method(spec, method) == "latest_start":
        return latest_start_users(store, spec, users)
    return step_users(chains(store, spec, users))


def _pick_method(spec: FunnelSpec, method: str) -> str:
    if method not in ("auto", "latest_start", "chains"):
        raise UsageError(f"bad funnel method {method!r}: use auto, latest_start or chains")
    if method == "latest_start" and not _latest_start_eligible(spec):
        raise UsageError("the latest-start method needs ordered distinct steps, no exclusions")
    return "latest_start" if method != "chains" and _latest_start_eligible(spec) else "chains"


def step_users(ch: Chains) -> list[pl.DataFrame]:
    """Per step, one row per user reaching it: ``user_id, seconds`` (shortest time)."""
    out = []
    for c in ch.frames:
        per_user = c.group_by("u").agg(
            ((pl.col("t_end") - pl.col("t0")).min() / US).alias("seconds"),
            pl.col("r0").first(),
        )
        out.append(per_user.select(ch.user_ids.gather(per_user["r0"]).alias("user_id"), "seconds"))
    return out


# ---------------------------------------------------------------------- backends
class PolarsFunnel:
    """The in-process backend of the reports below: who reaches each step, the starts
    per period, segment members. SQL engines have their own
    (``segcore.engine.sql.funnel.SqlFunnel``) with the same three methods."""

    def __init__(self, store):
        self.store = store

    def members(self, name: str, at: dt.datetime) -> pl.DataFrame:
        """Members (``user_id``) of saved segment ``name`` at ``at``."""
        return _members(self.store, name, at)

    def reached(
        self, spec: FunnelSpec, segment: str | None, method: str = "auto"
    ) -> list[pl.DataFrame]:
        """Per step, ``user_id, seconds`` (:func:`reached`), members of ``segment`` only."""
        users = self.members(segment, spec.end) if segment else None
        return reached(self.store, spec, users, method=method)

    def starts(
        self, spec: FunnelSpec, segment: str | None, method: str = "auto"
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Every start (``u``: a user key, ``t0`` in us) and the completed ones."""
        users = self.members(segment, spec.end) if segment else None
        if _pick_method(spec, method) == "latest_start":
            starts = earliest_completions(self.store, spec, users).rename({USER_CODE: "u"})
            return starts, starts.filter("completed")
        frames = chains(self.store, spec, users).frames
        return frames[0], frames[-1]

    def dropoffs(
        self, spec: FunnelSpec, segment: str | None, after_step: int
    ) -> pl.DataFrame | None:
        """The users of level exactly ``after_step`` when the backend has its own way of
        finding them, else None (they come from :meth:`reached`)."""
        return None


def uses_latest_start(spec: FunnelSpec) -> bool:
    """True when the latest-start pass applies (ordered distinct steps, no exclusions)."""
    return _latest_start_eligible(spec)


# ---------------------------------------------------------------------- reports
def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 6) if b else None


def _histogram(seconds: pl.Series, window_s: float) -> list[dict[str, Any]]:
    bins = [b for b in _HIST_BINS if b[1] <= window_s]
    counts = (
        pl.DataFrame({"s": seconds})
        .select(
            [
                ((pl.col("s") >= lo) & (pl.col("s") < hi)).sum().alias(label)
                for label, lo, hi in bins
            ]
        )
        .row(0)
    )
    return [
        {
            "label": label,
            "from_seconds": lo,
            "to_seconds": None if hi == float("inf") else hi,
            "users": int(n),
        }
        for (label, lo, hi), n in zip(bins, counts, strict=True)
    ]


def _report_steps(spec: FunnelSpec, per_step: list[pl.DataFrame]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    first = per_step[0].height
    prev = None
    for step, users in zip(spec.steps, per_step, strict=True):
        n = users.height
        stats = users.select(
            pl.col("seconds").median().alias("median"),
            pl.col("seconds").quantile(0.25, "linear").alias("p25"),
            pl.col("seconds").quantile(0.75, "linear").alias("p75"),
        ).row(0, named=True)
        out.append(
            {
                "event": step.event,
                "where": step.where
                if isinstance(step.where, str) or step.where is None
                else str(step.where),
                "users": n,
                "conversion_from_first": _ratio(n, first),
                "conversion_from_previous": _ratio(n, prev if prev is not None else n),
                "dropped_from_previous": (prev - n) if prev is not None else 0,
                "median_seconds_from_first": stats["median"],
                "p25_seconds_from_first": stats["p25"],
                "p75_seconds_from_first": stats["p75"],
                "time_distribution": _histogram(users["seconds"], spec.window.total_seconds()),
            }
        )
        prev = n
    return out


def _members(store, name: str, at: dt.datetime) -> pl.DataFrame:
    from segcore.engine.polars.evaluate import members

    return members(store, None, as_of=at, segment=name).select("user_id").unique()


def _iso(x: dt.datetime) -> str:
    return x.isoformat().replace("+00:00", "Z")


def funnel(
    store,
    steps: Sequence[Any],
    window: Any = "1d",
    start=None,
    end=None,
    strict: bool = False,
    segments: Sequence[str] | None = None,
    *,
    segment: str | None = None,
    order: str = "ordered",
    exclusions: Iterable[Any] | None = None,
    hold: str | None = None,
    any_order: bool | None = None,
    strict_order: bool = False,
    dedup: bool = False,
    backend: PolarsFunnel | None = None,
) -> dict[str, Any]:
    """Funnel report (docs/analytics.md, Funnels), like the CLI's JSON.

    Parameters
    ----------
    store
        The store (:class:`segcore.store.events.EventStore`).
    steps
        Event names, ``{"event": E, "where": "<filter>"}`` dicts or :class:`FunnelStep`.
    window
        Conversion window (``"1d"``, ``"30m"``, a timedelta).
    start, end
        First and last day (both included); default the store's first and last day.
    strict
        Timestamps must strictly increase along a chain.
    segments
        Names of saved segments: the result is ``{"segments": {NAME: {"steps": ...}}}``
        with members taken at the end of ``end``.
    segment
        One saved segment used as a filter.
    order, any_order
        ``"ordered"`` (default) or ``"any"``.
    exclusions
        ``[{"event": E, "where": ..., "between": [i, j]}]``.
    hold
        An event property every event of a chain shares.
    backend
        Who computes the users per step (default :class:`PolarsFunnel`).
    strict_order, dedup
        No other event of the user (``strict_order``), or no event matching one of
        steps 2..i+1 (``dedup``), strictly between steps i and i+1 of a chain.

    Returns
    -------
    dict
        ``{"steps": [{"event", "where", "users", "conversion_from_first",
        "conversion_from_previous", "median_seconds_from_first", ...}], "window",
        "from", "to", "strict", "order", "users_entered"}``.
    """
    spec = make_spec(
        store,
        steps,
        window,
        start,
        end,
        strict,
        order=order,
        exclusions=exclusions,
        hold=hold,
        any_order=any_order,
        strict_order=strict_order,
        dedup=dedup,
    )
    be = backend or PolarsFunnel(store)
    per_step = be.reached(spec, segment)
    head = {
        "window": str(window)
        if not isinstance(window, dt.timedelta)
        else f"{int(window.total_seconds())}s",
        "window_seconds": spec.window.total_seconds(),
        "from": _iso(spec.start),
        "to": _iso(spec.end),
        "strict": spec.strict,
        "order": spec.order,
    }
    if spec.interrupted:
        head["strict_order"], head["dedup"] = spec.strict_order, spec.dedup
    if segment:
        head["segment"] = segment
    if segments:
        out: dict[str, Any] = {}
        for name in segments:
            mem = be.members(name, spec.end)
            sub = [u.join(mem, on="user_id", how="semi") for u in per_step]
            out[name] = {
                "members": mem.height,
                "steps": _report_steps(spec, sub),
                "users_entered": sub[0].height,
            }
        return {"segments": out, **head}
    return {"steps": _report_steps(spec, per_step), "users_entered": per_step[0].height, **head}


def _periods(spec: FunnelSpec, every: str) -> pl.DataFrame:
    zone = current_zone()
    first = zone.local_date(spec.start)
    last = zone.local_date(spec.end - dt.timedelta(microseconds=1))
    if every == "week":
        first, last = zone.week_first(first), zone.week_first(last)
        interval = "1w"
    elif every == "day":
        interval = "1d"
    else:
        raise UsageError(f"bad step {every!r}: use day or week")
    return pl.DataFrame({"period": pl.date_range(first, last, interval, eager=True)})


def _period_expr(col: str, every: str) -> pl.Expr:
    instant = pl.from_epoch(pl.col(col), time_unit="us").dt.replace_time_zone("UTC")
    return period_first(local_date(instant), every)


def funnel_over_time(
    store,
    steps: Sequence[Any],
    window: Any = "1d",
    start=None,
    end=None,
    every: str = "day",
    strict: bool = False,
    **options,
) -> pl.DataFrame:
    """Conversion per period of entry: ``period, entered, completed, conversion``.

    ``entered`` counts the users with a step-1 event (in ``[from, to)``) in the
    period; ``completed`` the users with a complete chain starting in it. Periods are
    days of the report zone; weekly periods are named by their first day (Monday unless
    configured).
    """
    segment = options.pop("segment", None)
    method = options.pop("method", "auto")
    be = options.pop("backend", None) or PolarsFunnel(store)
    spec = make_spec(store, steps, window, start, end, strict, **options)
    periods = _periods(spec, every)
    entered, completed = be.starts(spec, segment, method)

    def per_period(frame: pl.DataFrame, name: str) -> pl.DataFrame:
        return frame.group_by(_period_expr("t0", every).alias("period")).agg(
            pl.col("u").n_unique().cast(pl.Int64).alias(name)
        )

    return (
        periods.join(per_period(entered, "entered"), on="period", how="left")
        .join(per_period(completed, "completed"), on="period", how="left")
        .with_columns(pl.col("entered", "completed").fill_null(0))
        .with_columns(
            pl.when(pl.col("entered") > 0)
            .then(pl.col("completed") / pl.col("entered"))
            .otherwise(None)
            .alias("conversion")
        )
        .sort("period")
    )


def funnel_dropoffs(
    store,
    steps: Sequence[Any],
    window: Any = "1d",
    start=None,
    end=None,
    strict: bool = False,
    *,
    after_step: int,
    **options,
) -> pl.DataFrame:
    """Users whose level is exactly ``after_step`` (1-based): reached it, not the next."""
    segment = options.pop("segment", None)
    be = options.pop("backend", None) or PolarsFunnel(store)
    spec = make_spec(store, steps, window, start, end, strict, **options)
    k = len(spec.steps)
    if not isinstance(after_step, int) or not 1 <= after_step < k:
        raise UsageError(f"after_step must be a step number from 1 to {k - 1}, got {after_step!r}")
    found = be.dropoffs(spec, segment, after_step)  # e.g. ClickHouse's windowFunnel
    if found is not None:
        return found.select("user_id").sort("user_id")
    per_step = be.reached(spec, segment)
    return (
        per_step[after_step - 1]
        .select("user_id")
        .join(per_step[after_step].select("user_id"), on="user_id", how="anti")
        .sort("user_id")
    )


def save_dropoffs(
    store,
    name: str,
    steps: Sequence[Any],
    window: Any = "1d",
    start=None,
    end=None,
    strict: bool = False,
    *,
    after_step: int,
    description: str = "",
    **options,
) -> dict[str, Any]:
    """Save :func:`funnel_dropoffs` as a new static segment ``name`` (an existing name is
    a :class:`~segcore.errors.CatalogError`); returns ``{name, version, members, after_step}``.
    """
    ids = funnel_dropoffs(
        store, steps, window, start, end, strict, after_step=after_step, **options
    )["user_id"].to_list()
    if not description:
        names = " > ".join(
            FunnelStep(s).event if isinstance(s, str) else _step(s, "step").event for s in steps
        )
        description = f"dropped off after step {after_step} of {names}"
    seg = store.catalog.create(name, kind="static", members=ids, description=description)
    return {
        "name": getattr(seg, "name", name),
        "version": getattr(seg, "version", 1),
        "members": len(ids),
        "after_step": after_step,
    }
