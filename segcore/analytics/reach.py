"""Reachability of a segment's members by channel (docs/analytics.md, Reachability).

A channel is a named attribute-only rule stored in the catalog (the four defaults:
email, sms, push, whatsapp). For the members at T: per channel the members for
whom its rule is TRUE (count and share of the members), the members reachable by
at least one channel, by none, and every combination of channels that occurs
(exclusive: the members reachable by exactly that set; the empty set is the
members reachable by none, so the combination counts sum to the members).

A channel rule that is not valid for the store (a missing column, a behavioural
function) is reported with an ``error`` and a count of 0; it never fails the report.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from segcore.engine.plan import tree_columns
from segcore.engine.polars.evaluate import members as eval_members
from segcore.engine.polars.expressions import Ctx, to_expr
from segcore.engine.rules import schema_of
from segcore.errors import NotFoundError, RuleError
from segcore.lang.dates import resolve_as_of
from segcore.lang.parser import parse_rule
from segcore.lang.tree import Node, Schema, behaviours, segment_refs
from segcore.store.events import EventStore

CONTACT_COLUMNS = ("email", "phone", "push_token")


def iso(T) -> str:
    """An instant as ISO text with ``Z``."""
    return T.isoformat().replace("+00:00", "Z")


def channel_rules(store: EventStore, channels: Any = None) -> dict[str, str]:
    """``{name: rule text}`` of the channels (all catalog channels, a list of their
    names, or a ``{name: rule}`` dict)."""
    if isinstance(channels, dict):
        return {str(k): str(v) for k, v in channels.items()}
    stored = {c.name: c.rule_text for c in store.catalog.channels()}
    if channels is None:
        return stored
    out = {}
    lowered = {k.lower(): k for k in stored}
    for name in channels:
        key = lowered.get(str(name).lower())
        if key is None:
            raise NotFoundError(f"no channel named {name!r} (channels: {', '.join(stored)})")
        out[key] = stored[key]
    return out


def parse_channel(text: str, schema: Schema) -> Node:
    """A channel's rule as a tree; RuleError unless it is a valid attribute-only rule."""
    tree = parse_rule(text, schema)
    if behaviours(tree):
        raise RuleError("a channel rule may use user attributes only, not events: "
                        "e.g. email IS NOT NULL AND email_opt_in")
    if segment_refs(tree):
        raise RuleError("a channel rule may use user attributes only, not segments")
    return tree


def channel_trees(store: EventStore, rules: dict[str, str]) -> tuple[dict[str, Node], dict[str, str]]:
    """The trees of the valid channels and the errors of the others."""
    schema = schema_of(store, check_names=False)
    trees: dict[str, Node] = {}
    errors: dict[str, str] = {}
    for name, text in rules.items():  # ok-loop: one parse per channel
        try:
            trees[name] = parse_channel(text, schema)
        except RuleError as exc:
            errors[name] = str(exc)
    return trees, errors


def check_channel(store: EventStore, text: str) -> Node:
    """The tree of a channel rule about to be saved; one RuleError line if it is not a
    valid attribute-only rule for this store (events and segments are refused)."""
    return parse_channel(text, schema_of(store))


def contact_columns(store: EventStore, tree: Node) -> list[str]:
    """The string user columns a channel's rule reads, the usual contact columns first."""
    schema = schema_of(store, check_names=False)
    contact = [
        c for c in sorted(tree_columns(tree) - {"user_id"}) if schema.users.get(c) == "string"
    ]
    return [c for c in CONTACT_COLUMNS if c in contact] + [
        c for c in contact if c not in CONTACT_COLUMNS
    ]


def _flags(
    store: EventStore, ids: pl.DataFrame, rules: dict[str, str], T
) -> tuple[pl.DataFrame, dict[str, str]]:
    """``ids`` with one boolean column per valid channel, and the errors of the others."""
    schema = schema_of(store, check_names=False)
    trees, errors = channel_trees(store, rules)
    cols = sorted(set().union(*(tree_columns(t) for t in trees.values())) & set(schema.users))
    cols = [c for c in cols if c != "user_id"]  # the key itself
    frame = ids.select("user_id")
    if cols:
        frame = frame.join(
            store.scan_users().select("user_id", *cols).collect(), on="user_id", how="left"
        )
    ctx = Ctx(T, schema)
    flags = frame.select(
        "user_id",
        *[to_expr(t, ctx).fill_null(False).cast(pl.Boolean).alias(n) for n, t in trees.items()],
    )
    return flags, errors


def reach(
    store: EventStore,
    rule: Any = None,
    as_of: Any = None,
    *,
    segment: str | None = None,
    channels: Any = None,
) -> dict[str, Any]:
    """The reachability report of a rule's or saved segment's members at ``as_of``.

    Returns ``{"members", "as_of", "channels": {name: {"count", "share"[, "error"]}},
    "any", "none", "combinations": [{"channels": [...], "count"}, ...]}``
    (combinations sorted by count, largest first).
    """
    T = resolve_as_of(as_of)
    ids = eval_members(store, rule, T, segment=segment)
    rules = channel_rules(store, channels)
    flags, errors = _flags(store, ids, rules, T)
    valid = [c for c in rules if c not in errors]
    if valid:
        combos = flags.group_by(valid).agg(pl.len().alias("count"))
    else:
        combos = pl.DataFrame({"count": [ids.height]})
    return reach_report(T, rules, errors, combos)


def reach_report(T, rules: dict[str, str], errors: dict[str, str],
                 combos: pl.DataFrame) -> dict[str, Any]:
    """The report from ``combos``: one boolean column per valid channel (in the order of
    ``rules``) and ``count``, the members with exactly that combination (any engine)."""
    valid = [c for c in rules if c not in errors]
    combos = combos.filter(pl.col("count") > 0)
    n = int(combos["count"].sum()) if combos.height else 0

    def share(k: int) -> float:
        return k / n if n else 0.0

    report: dict[str, dict[str, Any]] = {}
    for name in rules:  # ok-loop: one entry per channel
        if name in errors:
            report[name] = {"count": 0, "share": 0.0, "error": errors[name]}
        else:
            k = int(combos.filter(pl.col(name))["count"].sum()) if combos.height else 0
            report[name] = {"count": k, "share": share(k)}
    if valid and combos.height:
        any_n = int(combos.filter(pl.any_horizontal(valid))["count"].sum())
    else:
        any_n = 0
    combo_list: list[dict[str, Any]] = []
    if n:
        if valid:
            names = pl.concat_list(
                [pl.when(pl.col(c)).then(pl.lit(c)).otherwise(None) for c in valid]
            ).list.drop_nulls()
            grouped = combos.select(names.alias("channels"), "count")
        else:
            grouped = pl.DataFrame(
                {"channels": [[]], "count": [n]},
                schema={"channels": pl.List(pl.String), "count": pl.Int64},
            )
        grouped = grouped.with_columns(
            pl.col("channels").list.len().alias("k"), pl.col("channels").list.join("+").alias("key")
        )
        grouped = grouped.sort(["count", "k", "key"], descending=[True, False, False])
        combo_list = [
            {"channels": list(c), "count": int(k)}
            for c, k in zip(grouped["channels"].to_list(), grouped["count"].to_list(), strict=True)
        ]
    return {
        "members": n,
        "as_of": iso(T),
        "channels": report,
        "any": any_n,
        "none": n - any_n,
        "combinations": combo_list,
    }


def reachable_members(
    store: EventStore,
    rule: Any = None,
    channel: str | None = None,
    as_of: Any = None,
    *,
    segment: str | None = None,
) -> pl.DataFrame:
    """Members reachable by ``channel``: ``user_id`` plus the contact columns it uses."""
    if channel is None:
        raise RuleError("give the channel's name")
    T = resolve_as_of(as_of)
    rules = channel_rules(store, [channel])
    name, text = next(iter(rules.items()))
    tree = parse_channel(text, schema_of(store, check_names=False))
    contact = contact_columns(store, tree)
    ids = eval_members(store, rule, T, segment=segment)
    flags, _ = _flags(store, ids, {name: text}, T)
    out = flags.filter(pl.col(name)).select("user_id")
    if contact:
        out = out.join(
            store.scan_users().select("user_id", *contact).collect(), on="user_id", how="left"
        )
    return out.sort("user_id")
