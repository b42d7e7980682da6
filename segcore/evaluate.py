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
from collections.abc import Iterable
from typing import Any

import polars as pl

from segcore.errors import CatalogError, RuleError, SegcoreError, StoreError
from segcore.parser import parse_event_filter, parse_rule
from segcore.polars_expr import TS, Ctx, constant_instant, to_expr
from segcore.references import MAX_SEGMENT_DEPTH
from segcore.store import USER_CODE, Store
from segcore.timeutil import resolve_as_of
from segcore.tree import (
    AGGREGATES,
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
    behaviours,
    from_dict,
    from_json,
    segment_refs,
)
from segcore.types import type_of

_TYPE_NAMES = {
    pl.String: "string", pl.Categorical: "string", pl.Enum: "string", pl.Boolean: "bool",
    pl.Date: "date", pl.Datetime: "timestamp", pl.Float32: "float", pl.Float64: "float",
    pl.Decimal: "float", pl.Null: "null",
}


def type_name(dtype: pl.DataType) -> str | None:
    """The rule-language type of a Polars dtype (None: not usable in rules)."""
    if dtype.is_integer():
        return "int"
    if isinstance(dtype, pl.List) and dtype.inner in (pl.String, pl.Categorical, pl.Null):
        return "list"
    for cls, name in _TYPE_NAMES.items():
        if dtype == cls or isinstance(dtype, cls):
            return name
    return None


def schema_of(store: Store, *, check_names: bool = True) -> Schema:
    """The schema rules of ``store`` are checked against (cached per store version)."""
    has_catalog = check_names and store.catalog_path.exists()
    key = ("rule_schema", check_names, store.data_version(),
           store.catalog.data_version() if has_catalog else None)
    cache = store.__dict__.setdefault("_schema_cache", {})
    if key in cache:
        return cache[key]
    users = {k: t for k, v in store.users_schema().items() if (t := type_name(v))}
    events = {k: t for k, v in store.events_schema().items() if (t := type_name(v))}
    names = segs = None
    if check_names:
        known = store.event_names()
        names = frozenset(known) if known else None
        if has_catalog:
            segs = frozenset(s.name for s in store.catalog.list())
    cache[key] = Schema(users=users, events=events, event_names=names, segments=segs)
    return cache[key]


def to_tree(store: Store, rule: Any) -> Node:
    """Rule text, a tree, or its JSON (dict or text) -> a condition tree."""
    if isinstance(rule, Node):
        return rule
    if isinstance(rule, dict):
        return _checked_tree(store, lambda: from_dict(rule))
    if isinstance(rule, str):
        stripped = rule.lstrip()
        if stripped.startswith("{") and '"kind"' in stripped:
            return _checked_tree(store, lambda: from_json(rule))
        schema = schema_of(store)
        parsed = store.__dict__.setdefault("_parse_cache", {})
        # trees are immutable: one parse serves every caller of the same schema
        return _memo(parsed, rule, schema, lambda: parse_rule(rule, schema))
    raise RuleError(f"a rule must be text or a condition tree, got {type(rule).__name__}")


def _checked_tree(store: Store, build: Any) -> Node:
    """A tree from JSON (untrusted), checked like typed text: printed, then parsed."""
    from segcore.printer import to_text

    try:
        text = to_text(build())
    except SegcoreError:
        raise
    except (RecursionError, LookupError, TypeError, ValueError, AttributeError) as exc:
        raise RuleError(f"invalid condition tree JSON ({type(exc).__name__}: {exc})") from None
    try:
        return parse_rule(text, schema_of(store))
    except RuleError as err:  # positions would point into the printed text, not the JSON
        raise RuleError(f"{err.message} (in the condition tree JSON)") from None


def event_filter(store: Store, text: str) -> pl.Expr:
    """A ``where`` filter over event columns as a Polars expression (NULL = no match)."""
    schema = schema_of(store, check_names=False)
    node = parse_event_filter(text, schema)
    return to_expr(node, Ctx(resolve_as_of(None), schema, scope="event")).fill_null(False)


# --------------------------------------------------------------------------- windows
def window_bounds(node: Behavior | Sequence, T: dt.datetime,
                  schema: Schema) -> tuple[dt.datetime | None, dt.datetime]:
    """``[lo, hi)`` of the events a behavioural term counts at T (lo None: unbounded)."""
    hi = T
    lo = None
    if node.within is not None:
        lo = T - dt.timedelta(microseconds=node.within)
    if node.since is not None:
        lo = constant_instant(node.since, T, schema)
    if node.until is not None:
        until = constant_instant(node.until, T, schema)
        hi = min(hi, until) if until is not None else hi
    return lo, hi


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


def term_event(node: Behavior | Sequence, then: bool = False) -> str:
    """The event name a term reads (``*``: any); ``then``: a sequence's B event."""
    if then:
        return node.then
    return getattr(node, "event", None) or node.first


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


def default_value(node: Behavior) -> Any:
    """The value of a behavioural aggregate for a user with no matching event."""
    return AGGREGATES[node.func][1]


def prefilter_bounds(nodes: Iterable[Behavior | Sequence], T: dt.datetime,
                     schema: Schema) -> tuple[list[str] | None, dt.datetime | None]:
    """Event names (None: any event) and earliest instant that any of ``nodes`` reads."""
    names: set[str] = set()
    lows: list[dt.datetime | None] = []
    for n in nodes:
        if isinstance(n, Sequence):
            names |= {n.first, n.then}
            lows.append(None)
        else:
            names.add(n.event)
            lows.append(window_bounds(n, T, schema)[0])
    since = min(lows) if lows and all(lo is not None for lo in lows) else None  # type: ignore[type-var]
    return (None if "*" in names else sorted(names)), since


def behaviour_frame(store: Store, nodes: list[Behavior], T: dt.datetime,
                    schema: Schema, names: list[str]) -> pl.LazyFrame:
    """One group_by over the events: ``user_id`` plus one column per aggregate."""
    masks = [event_mask(n, T, schema) for n in nodes]
    values = [_masked_value(n, m, T).alias(c) for n, m, c in zip(nodes, masks, names, strict=True)]
    aggs = [_aggregate(n, pl.col(c)).alias(c) for n, c in zip(nodes, names, strict=True)]
    # events that no term matches (e.g. non-pricing page views) never reach the group_by
    names_, since = prefilter_bounds(nodes, T, schema)
    # grouped by the 32-bit user codes (see USER_CODE), not by hashing id strings
    events = store.events_frame([*event_columns(nodes), USER_CODE], events=names_, since=since,
                                until=T)
    return (events.filter(pl.any_horizontal(masks))
            .select(USER_CODE, *values).group_by(USER_CODE).agg(aggs)
            .select(pl.col(USER_CODE).cast(pl.String).alias("user_id"), *names))


def event_columns(nodes: Iterable[Behavior | Sequence]) -> list[str]:
    """The event columns behavioural terms read (key columns, properties, filters)."""
    from segcore.tree import Col

    cols = ["user_id", "event", "ts"]
    for n in nodes:
        if getattr(n, "prop", None):
            cols.append(n.prop)
        for w in (n.where, getattr(n, "then_where", None)):
            if w is not None:
                cols.extend(c.name for c in w.walk() if isinstance(c, Col))
    return list(dict.fromkeys(cols))


def sequence_frame(store: Store, node: Sequence, T: dt.datetime, schema: Schema,
                   name: str) -> pl.LazyFrame:
    """``user_id`` and a TRUE column for users for whom the sequence holds at T."""
    cols = [*event_columns([node]), USER_CODE]
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
def universe(store: Store, T: dt.datetime) -> pl.LazyFrame:
    """Every user of the users table plus every user with an event before T."""
    users = store.scan_users().select("user_id")
    ev = store.events_frame(["user_id"], until=T)
    return pl.concat([users, ev]).unique()


_NULL_ROW_CACHE: dict[tuple, tuple[Schema, bool]] = {}


def _memo(cache: dict, key: Any, schema: Schema, compute: Any) -> Any:
    """``compute()`` kept in ``cache`` under ``key`` while ``schema`` is the same object
    (a new store version makes a new one); at most 512 entries."""
    hit = cache.get(key)
    if hit is not None and hit[0] is schema:
        return hit[1]
    value = compute()
    if len(cache) >= 512:
        cache.clear()
    cache[key] = (schema, value)
    return value


def _null_row_member(tree: Node, schema: Schema, T: dt.datetime,
                     columns: dict[Node, str], defaults: dict[str, Any]) -> bool:
    """Would a user with no attributes and no matching events be a member? (memoised)"""
    key = (tree, T, tuple(columns.items()), tuple(defaults.items()))
    try:
        hash(key)
    except TypeError:  # an unhashable default: no memo
        return _null_row_eval(tree, schema, T, columns, defaults)
    return _memo(_NULL_ROW_CACHE, key, schema,
                 lambda: _null_row_eval(tree, schema, T, columns, defaults))


def _null_row_eval(tree: Node, schema: Schema, T: dt.datetime,
                   columns: dict[Node, str], defaults: dict[str, Any]) -> bool:
    row: dict[str, pl.Series] = {}
    for name in tree_columns(tree):
        dtype = _dtype_for(schema.users.get(name, "null"))
        row[name] = pl.Series(name, [None], dtype=dtype)
    kinds = {c: n for n, c in columns.items()}
    for name, value in defaults.items():
        # a NULL default (first_seen, event_avg...) keeps its type: NULL + interval is valid
        dtype = _dtype_for(type_of(kinds[name], schema)) if value is None else None
        row[name] = pl.Series(name, [value], dtype=dtype)
    frame = pl.DataFrame(row) if row else pl.DataFrame({"_": [0]})
    out = frame.select(to_expr(tree, Ctx(T, schema, columns=columns)).alias("m")).item()
    return out is True


def _dtype_for(t: str) -> pl.DataType:
    return {"int": pl.Int64(), "float": pl.Float64(), "bool": pl.Boolean(),
            "string": pl.String(), "date": pl.Date(), "timestamp": TS,
            "list": pl.List(pl.String)}.get(t, pl.String())


def tree_columns(tree: Node) -> set[str]:
    """User attribute columns a tree reads (outside event filters)."""
    from segcore.tree import Col

    out: set[str] = set()
    stack = [tree]
    while stack:
        n = stack.pop()
        if isinstance(n, Col):
            out.add(n.name)
        elif not isinstance(n, Behavior | Sequence):
            stack.extend(n.children())
    return out


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


def plan_members(store: Store, tree: Node, T: dt.datetime, *,
                 schema: Schema | None = None, stack: tuple[str, ...] = ()) -> pl.LazyFrame:
    """Lazy plan of the members (one ``user_id`` column) of ``tree`` at T."""
    schema = schema or schema_of(store, check_names=False)
    tree = narrow_windows(tree, T, schema)
    terms = behaviours(tree)
    aggs = [n for n in terms if isinstance(n, Behavior)]
    seqs = [n for n in terms if isinstance(n, Sequence)]
    columns: dict[Node, str] = {}
    defaults: dict[str, Any] = {}
    frames: list[pl.LazyFrame] = []
    if aggs:
        names = [f"__b{i}" for i in range(len(aggs))]
        columns.update(zip(aggs, names, strict=True))
        defaults.update({c: default_value(n) for n, c in zip(aggs, names, strict=True)})
        frames.append(behaviour_frame(store, aggs, T, schema, names))
    for i, s in enumerate(seqs):
        name = f"__s{i}"
        columns[s] = name
        defaults[name] = False
        frames.append(sequence_frame(store, s, T, schema, name))
    for i, ref in enumerate(sorted(segment_refs(tree))):
        name = f"__g{i}"
        columns[InSegment(ref)] = name
        defaults[name] = False
        seg = segment_plan(store, ref, T, schema=schema, stack=stack)
        frames.append(seg.with_columns(pl.lit(True).alias(name)))

    attrs = sorted(tree_columns(tree) - {"user_id"})  # user_id is the key itself
    reads_key = "user_id" in tree_columns(tree)  # never NULL: the null-row test cannot tell
    if reads_key or _null_row_member(tree, schema, T, columns, defaults):
        # users with no attributes and no matching event can be members: the whole universe
        base = universe(store, T)
        if attrs:
            base = base.join(store.scan_users().select("user_id", *attrs), on="user_id",
                             how="left")
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
    if defaults:
        base = base.with_columns(
            [pl.col(c).fill_null(pl.lit(v)) for c, v in defaults.items() if v is not None]
        )
    cond = to_expr(tree, Ctx(T, schema, columns=columns))
    return base.filter(cond.fill_null(False)).select("user_id")


def segment_plan(store: Store, name: str, T: dt.datetime, *, schema: Schema | None = None,
                 stack: tuple[str, ...] = ()) -> pl.LazyFrame:
    """Lazy plan of a saved segment's members at T (static or dynamic)."""
    seg = _get_segment(store, name)
    if seg.name in stack:
        chain = " -> ".join((*stack, seg.name))
        raise RuleError(f"segment cycle: {chain}")
    if len(stack) >= MAX_SEGMENT_DEPTH:
        raise RuleError(f"segments nested more than {MAX_SEGMENT_DEPTH} levels deep")
    if seg.kind == "static":
        ids = pl.LazyFrame({"user_id": store.catalog.members(seg.name)},
                           schema={"user_id": pl.String})
        return ids.join(universe(store, T), on="user_id", how="semi")
    if not seg.rule_json:
        raise CatalogError(f"segment {seg.name!r} has no rule")
    tree = from_json(seg.rule_json)
    return plan_members(store, tree, T, schema=schema, stack=(*stack, seg.name))


def _get_segment(store: Store, name: str):
    if not store.catalog_path.exists():
        raise RuleError(f"unknown segment {name!r} (no segments are saved yet)")
    try:
        return store.catalog.get(name)
    except CatalogError as exc:
        raise RuleError(str(exc)) from None


def _resolve(store: Store, rule: Any, segment: str | None, T: dt.datetime) -> pl.LazyFrame:
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
def members(store: Store, rule: Any = None, as_of: Any = None, *, segment: str | None = None,
            attributes: bool = False) -> pl.DataFrame:
    """Members at ``as_of`` (sorted ``user_id``; with ``attributes``, the user columns too)."""
    T = resolve_as_of(as_of)
    with store.pinned():  # one consistent set of files for the whole plan
        lf = _resolve(store, rule, segment, T)
        if attributes:
            lf = lf.join(store.scan_users(), on="user_id", how="left")
    return _collect(lf.sort("user_id"))


def count(store: Store, rule: Any = None, as_of: Any = None, *,
          segment: str | None = None) -> int:
    """Number of members at ``as_of``."""
    T = resolve_as_of(as_of)
    with store.pinned():  # one consistent set of files for the whole plan
        lf = _resolve(store, rule, segment, T)
    return int(_collect(lf.select(pl.len())).item())


def segments_of(store: Store, user_id: str, as_of: Any = None) -> list[str]:
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


def user_profile(store: Store, user_id: str, as_of: Any = None,
                 last_events: int = 20) -> dict[str, Any]:
    """A user's attributes, latest events before T and current segments."""
    from segcore.errors import NotFoundError

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
