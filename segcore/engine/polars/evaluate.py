"""The Polars evaluator: members of a rule or saved segment at an instant T.

A rule is evaluated in three steps, all as lazy Polars plans:

1. every behavioural aggregate of the rule (``did``, ``event_count``...) is one
   masked aggregation inside a single ``group_by("user_id")`` over the events that
   can matter (one pass over the events for all of them);
2. sequences (``did_then``/``did_then_not``) are ``join_asof`` plans and
   ``in_segment`` terms are the member sets of the referenced segments;
3. the users of the universe get their attributes and these columns joined and the
   rule's boolean expression (Kleene logic) keeps the rows where it is TRUE.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from segcore.engine.plan import (
    event_columns,
    event_windows,
    needs_universe,
    prefilter_bounds,
    resolve_segment,
    term_columns,
    term_event,
    tree_columns,
    users_first,
    window_bounds,
)
from segcore.engine.polars.expressions import TS, Ctx, constant_instant, to_expr
from segcore.engine.rules import schema_of, to_tree
from segcore.errors import CatalogError, NotFoundError, RuleError, StoreError
from segcore.lang.dates import resolve_as_of
from segcore.lang.tree import (
    And,
    Behavior,
    Call,
    Col,
    Compare,
    InSegment,
    Node,
    Or,
    Schema,
    Sequence,
    conj,
)
from segcore.lang.types import type_of
from segcore.store.cache import USER_CODE, USER_KEY
from segcore.store.events import EventStore

__all__ = ["count", "event_filter", "members", "plan_members", "schema_of", "segment_plan",
           "segments_of", "to_tree", "universe", "user_profile"]


def event_filter(store: EventStore, text: str) -> pl.Expr:
    """A ``where`` filter over event columns as a Polars expression (NULL = no match)."""
    from segcore.lang.parser import parse_event_filter  # sqlglot: only when text is parsed

    schema = schema_of(store, check_names=False)
    node = parse_event_filter(text, schema)
    return to_expr(node, Ctx(resolve_as_of(None), schema, scope="event")).fill_null(False)


# --------------------------------------------------------------------------- windows
def event_mask(node: Behavior | Sequence, T: dt.datetime, schema: Schema,
               then: bool = False, windowed: bool = True) -> pl.Expr:
    """Boolean expression selecting a term's events (name, window, where; ``ts < T``).

    With ``then`` (sequences only): the B events, ``then_where`` and no window
    (the window and ``where`` select the A events only). ``windowed=False`` keeps
    only ``ts < T`` of the window.
    """
    name = term_event(node, then)
    windowed = windowed and not then
    parts: list[pl.Expr] = []
    if name != "*":
        parts.append(pl.col("event") == name)
    if windowed:
        lo, hi = window_bounds(node, T, schema)
        if lo is not None:
            parts.append(pl.col("ts") >= pl.lit(lo, dtype=TS))
        parts.append(pl.col("ts") < pl.lit(hi, dtype=TS))
    else:
        parts.append(pl.col("ts") < pl.lit(T, dtype=TS))
    where = where_mask(node, T, schema, then)
    if where is not None:
        parts.append(where)
    return pl.all_horizontal(parts) if len(parts) > 1 else parts[0]


def where_mask(node: Behavior | Sequence, T: dt.datetime, schema: Schema,
               then: bool = False) -> pl.Expr | None:
    """The term's ``where`` (``then``: ``then_where``) filter on events, or None."""
    w = node.then_where if then else node.where
    if w is None:
        return None
    return to_expr(w, Ctx(T, schema, scope="event")).fill_null(False)


def _masked_value(node: Behavior, mask: pl.Expr, T: dt.datetime) -> pl.Expr:
    """Per event: the value the aggregate reads, NULL where the event does not match."""
    f = node.func
    if f in ("did", "event_count"):
        return mask
    if f in ("first_seen", "last_seen"):
        return pl.when(mask).then(pl.col("ts"))
    if f == "event_periods":
        # period k is [T-(k+1)P, T-kP): k = ceil((T - ts)/P) - 1 = (T - ts - 1us) // P
        age = ((pl.lit(T, dtype=TS) - pl.col("ts")).dt.total_microseconds() - 1) // node.period
        return pl.when(mask).then(age)
    return pl.when(mask).then(pl.col(node.prop))


def _aggregate(node: Behavior, col: pl.Expr) -> pl.Expr:
    """The per-user aggregate over the masked per-event values of :func:`_masked_value`."""
    f = node.func
    if f == "did":
        return col.any()
    if f == "event_count":
        return col.sum()
    if f in ("first_seen", "event_min"):
        return col.min()
    if f in ("last_seen", "event_max"):
        return col.max()
    if f == "event_sum":
        return col.sum()
    if f == "event_avg":
        return col.mean()
    if f in ("event_distinct", "event_periods"):
        return col.drop_nulls().n_unique()
    raise RuleError(f"unknown function {f}")


def behaviour_frame(store: EventStore, nodes: list[Behavior], T: dt.datetime,
                    schema: Schema, names: list[str]) -> pl.LazyFrame:
    """One group_by over the events: ``user_id`` plus one column per aggregate."""
    masks = [event_mask(n, T, schema) for n in nodes]
    values = [_masked_value(n, m, T).alias(c) for n, m, c in zip(nodes, masks, names, strict=True)]
    aggs = [_aggregate(n, pl.col(c)).alias(c) for n, c in zip(nodes, names, strict=True)]
    # events that no term matches (e.g. non-pricing page views) never reach the group_by;
    # each event name is read once, over the widest window of its terms
    names_, since = prefilter_bounds(nodes, T, schema)
    # grouped by the cheapest user key (USER_KEY: the cache's 32-bit codes, else the ids)
    events = store.events_frame([*event_columns(nodes, with_user=False), USER_KEY],
                                events=event_windows(nodes, T, schema) if names_ else names_,
                                since=since, until=T)
    return (events.filter(pl.any_horizontal(masks))
            .select(USER_KEY, *values).group_by(USER_KEY).agg(aggs)
            .select(pl.col(USER_KEY).cast(pl.String).alias("user_id"), *names))


def sequence_frame(store: EventStore, node: Sequence, T: dt.datetime, schema: Schema,
                   name: str) -> pl.LazyFrame:
    """``user_id`` and a TRUE column for users for whom the sequence holds at T."""
    # USER_CODE, not USER_KEY: the two reads may come one from Parquet, one from the cache
    cols = [*event_columns([node], with_user=False), USER_CODE]
    lo, hi = window_bounds(node, T, schema)
    def names(e: str) -> list[str] | None:
        return None if e == "*" else [e]

    a = (store.events_frame(cols, events=names(node.first), since=lo, until=hi)
         .filter(event_mask(node, T, schema)).select(USER_CODE, pl.col("ts").alias("a")))
    b = (store.events_frame(cols, events=names(node.then), until=T)
         .filter(event_mask(node, T, schema, then=True)).select(USER_CODE, pl.col("ts").alias("b")))
    joined = a.sort("a").join_asof(
        b.sort("b"), left_on="a", right_on="b", by=USER_CODE, strategy="forward",
        allow_exact_matches=False, check_sortedness=False,
    )
    gap = pl.duration(microseconds=node.gap)
    followed = pl.col("b").is_not_null() & (pl.col("b") <= pl.col("a") + gap)
    if node.func == "did_then":
        cond = followed
    else:
        cond = (pl.col("a") + gap < pl.lit(T, dtype=TS)) & ~followed
    return (joined.filter(cond).select(USER_CODE).unique()
            .select(pl.col(USER_CODE).cast(pl.String).alias("user_id"), pl.lit(True).alias(name)))


# --------------------------------------------------------------------------- plans
def universe(store: EventStore, T: dt.datetime) -> pl.LazyFrame:
    """Every user of the users table plus every user with an event before T."""
    users = store.scan_users().select("user_id")
    # distinct keys first (the cache's codes), strings only for them
    ev = store.events_frame([USER_KEY], until=T).select(
        pl.col(USER_KEY).unique().cast(pl.String).alias("user_id"))
    return pl.concat([users, ev]).unique()


def narrow_windows(tree: Node, T: dt.datetime, schema: Schema) -> Node:
    """Cheaper equivalents of terms in positive position (reached from the root through
    AND/OR only, where NULL and FALSE both mean "not a member").

    ``last_seen(E) >= X`` (also ``X <= last_seen(E)``; E without a window, X a
    timestamp not reading the user, not NULL at T) holds exactly when some E event has
    ``X <= ts < T``: it becomes ``did(E, since => X)``, which reads the events from X
    on instead of every E event ever ("seen in the last 3 days").
    """
    if isinstance(tree, And | Or):
        return type(tree)(tuple(narrow_windows(a, T, schema) for a in tree.args))
    if not isinstance(tree, Compare) or tree.op not in (">=", "<="):
        return tree
    term, bound = (tree.left, tree.right) if tree.op == ">=" else (tree.right, tree.left)
    if not (
        isinstance(term, Behavior)
        and term.func == "last_seen"
        and term.within is None
        and term.since is None
        and term.until is None
        and type_of(bound, schema) == "timestamp"
        and not any(
            isinstance(n, Col | Behavior | Sequence | InSegment)
            or (isinstance(n, Call) and n.name not in ("now", "today"))
            for n in bound.walk()
        )
    ):
        return tree
    try:
        if constant_instant(bound, T, schema) is None:
            return tree
    except (RuleError, pl.exceptions.PolarsError):
        return tree
    return Behavior("did", term.event, where=term.where, since=bound)


def plan_members(store: EventStore, tree: Node, T: dt.datetime, *,
                 schema: Schema | None = None, stack: tuple[str, ...] = ()) -> pl.LazyFrame:
    """Lazy plan of the members (one ``user_id`` column) of ``tree`` at T."""
    schema = schema or schema_of(store, check_names=False)
    tree = narrow_windows(tree, T, schema)
    terms = term_columns(tree)
    frames: list[pl.LazyFrame] = []
    if terms.aggregates:
        names = [terms.columns[n] for n in terms.aggregates]
        frames.append(behaviour_frame(store, list(terms.aggregates), T, schema, names))
    for s in terms.sequences:
        frames.append(sequence_frame(store, s, T, schema, terms.columns[s]))
    for ref in terms.segments:
        seg = segment_plan(store, ref, T, schema=schema, stack=stack)
        frames.append(seg.with_columns(pl.lit(True).alias(terms.columns[InSegment(ref)])))

    attrs = sorted(tree_columns(tree) - {"user_id"})  # user_id is the key itself
    if needs_universe(tree, schema, T, terms):
        # users with no attributes and no matching event can be members: the whole universe
        base = universe(store, T)
        if attrs:
            base = base.join(store.scan_users().select("user_id", *attrs), on="user_id",
                             how="left")
        for f in frames:
            base = base.join(f, on="user_id", how="left")
    elif static := users_first(tree, schema, T):
        # every member is a user of the users table who passes the static conjuncts: those
        # users alone, with the per-term frames left-joined to them
        base = (store.scan_users().filter(to_expr(conj(*static), Ctx(T, schema)).fill_null(False))
                .select("user_id", *attrs))
        for f in frames:
            base = base.join(f, on="user_id", how="left")
    else:
        # only users with attributes (if the rule reads any) or with a matching event can be
        # members: outer-join the users' attributes and the per-term frames
        parts = ([store.scan_users().select("user_id", *attrs)] if attrs else []) + frames
        if not parts:
            return pl.LazyFrame(schema={"user_id": pl.String})
        base = parts[0]
        for f in parts[1:]:
            base = base.join(f, on="user_id", how="full", coalesce=True)
    if terms.defaults:
        base = base.with_columns(
            [pl.col(c).fill_null(pl.lit(v)) for c, v in terms.defaults.items() if v is not None]
        )
    cond = to_expr(tree, Ctx(T, schema, columns=terms.columns))
    return base.filter(cond.fill_null(False)).select("user_id")


def segment_plan(store: EventStore, name: str, T: dt.datetime, *,
                 schema: Schema | None = None, stack: tuple[str, ...] = ()) -> pl.LazyFrame:
    """Lazy plan of a saved segment's members at T (static or dynamic)."""
    seg = resolve_segment(store, name, stack)
    if seg.tree is None:  # static: the stored ids in the universe at T
        ids = pl.LazyFrame({"user_id": store.catalog.members(seg.name)},
                           schema={"user_id": pl.String})
        return ids.join(universe(store, T), on="user_id", how="semi")
    return plan_members(store, seg.tree, T, schema=schema, stack=seg.stack)


def _resolve(store: EventStore, rule: Any, segment: str | None, T: dt.datetime) -> pl.LazyFrame:
    if (rule is None) == (segment is None):
        raise RuleError("give either a rule or a segment name")
    schema = schema_of(store, check_names=False)
    if segment is not None:
        return segment_plan(store, segment, T, schema=schema)
    return plan_members(store, to_tree(store, rule), T, schema=schema)


def _collect(lf: pl.LazyFrame) -> pl.DataFrame:
    try:
        return lf.collect()
    except pl.exceptions.ComputeError as exc:
        raise StoreError(f"cannot evaluate over the store: {exc}") from None


# --------------------------------------------------------------------------- public API
def members(store: EventStore, rule: Any = None, as_of: Any = None, *, segment: str | None = None,
            attributes: bool = False) -> pl.DataFrame:
    """Members at ``as_of`` (sorted ``user_id``; with ``attributes``, the user columns too)."""
    T = resolve_as_of(as_of)
    with store.pinned():  # one consistent set of files for the whole plan
        lf = _resolve(store, rule, segment, T)
        if attributes:
            lf = lf.join(store.scan_users(), on="user_id", how="left")
    return _collect(lf.sort("user_id"))


def count(store: EventStore, rule: Any = None, as_of: Any = None, *,
          segment: str | None = None) -> int:
    """Number of members at ``as_of``."""
    T = resolve_as_of(as_of)
    with store.pinned():  # one consistent set of files for the whole plan
        lf = _resolve(store, rule, segment, T)
    return int(_collect(lf.select(pl.len())).item())


def segments_of(store: EventStore, user_id: str, as_of: Any = None) -> list[str]:
    """Names of the saved segments ``user_id`` belongs to at ``as_of``."""
    if not store.catalog_path.exists():
        return []
    T = resolve_as_of(as_of)
    schema = schema_of(store, check_names=False)
    out = []
    for seg in store.catalog.list():  # ok-loop: one plan per saved segment
        try:
            lf = segment_plan(store, seg.name, T, schema=schema)
            hit = _collect(lf.filter(pl.col("user_id") == user_id).select(pl.len())).item()
        except (RuleError, CatalogError):
            continue
        if hit:
            out.append(seg.name)
    return out


def user_profile(store: EventStore, user_id: str, as_of: Any = None,
                 last_events: int = 20) -> dict[str, Any]:
    """A user's attributes, latest events before T and current segments."""
    T = resolve_as_of(as_of)
    attrs = store.scan_users().filter(pl.col("user_id") == user_id).collect()
    ev = store.scan_events().filter(
        (pl.col("user_id") == user_id) & (pl.col("ts") < pl.lit(T, dtype=TS)))
    stats = ev.select(pl.len().alias("n"), pl.col("ts").min().alias("first"),
                      pl.col("ts").max().alias("last")).collect().row(0, named=True)
    if attrs.height == 0 and stats["n"] == 0:
        raise NotFoundError(f"unknown user {user_id!r}")
    recent = ev.sort("ts", descending=True).head(last_events).collect()
    recent = recent.select([c for c in recent.columns if recent[c].null_count() < recent.height])
    return {
        "user_id": user_id,
        "as_of": T.isoformat().replace("+00:00", "Z"),
        "attributes": attrs.row(0, named=True) if attrs.height else {},
        "events": int(stats["n"]),
        "first_event": stats["first"],
        "last_event": stats["last"],
        "latest_events": recent.to_dicts(),
        "segments": segments_of(store, user_id, as_of=T),
    }
