"""References between saved segments (``in_segment('B')``): the graph and its rules.

A dynamic segment's rule may use the members of other saved segments. The catalog keeps
the graph of these references sound on every change (``segcore.store.catalog``):

- every reference of a live segment names a live segment (names compare like the
  catalog's: ASCII case-insensitive);
- no segment reaches itself (``segment cycle: A -> B -> A``);
- no chain of references is longer than :data:`MAX_SEGMENT_DEPTH` segments (the
  evaluators refuse deeper chains, so the catalog refuses to save them);
- a renamed segment's name is rewritten in the rules that refer to it
  (:func:`rename_reference`: through the condition tree and the printer).

The evaluators (``segcore.engine.polars.evaluate``, ``segcore.engine.sql.compiler``,
``segcore.analytics.trend``) keep their own cycle and depth guards as a last defence
against a catalog edited behind segcore's back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from segcore.errors import RuleError
from segcore.lang.printer import to_text
from segcore.lang.tree import InSegment, Node, from_json, segment_refs, to_json

#: The longest chain of segments one evaluation may walk (the top one included).
MAX_SEGMENT_DEPTH = 32

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def name_key(name: str) -> str:
    """The key two segment names share when SQLite's ``NOCASE`` finds them equal."""
    return name.strip().translate(_ASCII_LOWER)


def rule_references(rule_json: str | None) -> set[str]:
    """The segment names a stored rule refers to (none for a missing or bad rule)."""
    if not rule_json:
        return set()
    try:
        return segment_refs(from_json(rule_json))
    except RuleError:  # a damaged rule refers to nothing the graph can follow
        return set()


def _renamed(node: Node, old: str, new: str) -> Node:
    """``node`` with every ``in_segment(old)`` (any case) replaced by ``in_segment(new)``."""
    if isinstance(node, InSegment):
        return InSegment(new) if name_key(node.name) == name_key(old) else node
    changes = {}
    for f in dataclasses.fields(node):  # type: ignore[arg-type]
        value = getattr(node, f.name)
        if isinstance(value, Node):
            changes[f.name] = _renamed(value, old, new)
        elif isinstance(value, tuple) and any(isinstance(v, Node) for v in value):
            changes[f.name] = tuple(
                _renamed(v, old, new) if isinstance(v, Node) else v for v in value
            )
    return dataclasses.replace(node, **changes) if changes else node  # type: ignore[type-var]


def rename_reference(rule_json: str, old: str, new: str) -> tuple[str, str]:
    """(rule text, rule JSON) of a stored rule with ``in_segment(old)`` now ``in_segment(new)``.

    The rule is rewritten as a tree and printed again (never by replacing text), so a
    name that also appears in a string literal or an attribute is left alone.
    """
    tree = _renamed(from_json(rule_json), old, new)
    return to_text(tree), to_json(tree)


@dataclasses.dataclass(frozen=True)
class Problem:
    """One way a catalog breaks the rules of references: a key to compare and a message."""

    key: tuple[str, ...]
    message: str


def _chain(names: list[str]) -> str:
    if len(names) <= 8:
        return " -> ".join(names)
    return " -> ".join([*names[:3], f"... ({len(names) - 5} more)", *names[-2:]])


def problems(graph: Mapping[str, tuple[str, set[str]]],
             first: list[str] | None = None) -> list[Problem]:
    """Every missing reference, cycle and too-deep chain of a catalog's reference graph.

    Parameters
    ----------
    graph
        For each live segment, by :func:`name_key`: ``(its name, the names it refers to)``.
    first
        Keys visited first, so a cycle is told from the segment being changed
        (``A -> B -> A`` when saving A).
    """
    out: list[Problem] = []
    for key in sorted(graph):  # ok-loop: one entry per segment with references
        name, refs = graph[key]
        for ref in sorted(refs):
            if name_key(ref) not in graph:
                out.append(Problem(("missing", key, name_key(ref)),
                                   f"segment '{name}' refers to segment '{ref}', which does "
                                   "not exist"))
    depth: dict[str, int] = {}  # longest chain of segments from a key (itself included)
    below: dict[str, str | None] = {}  # the reference that chain goes through
    cycles: set[frozenset[str]] = set()
    order = [k for k in (first or []) if k in graph] + sorted(graph)
    for start in order:
        if start in depth:
            continue
        # iterative depth-first search: chains may be long in a damaged catalog
        path: list[str] = [start]
        on_path = {start}
        todo = [iter(sorted(name_key(r) for r in graph[start][1]))]
        while todo:
            node = path[-1]
            nxt = next(todo[-1], None)
            if nxt is None:
                refs = [name_key(r) for r in graph[node][1] if name_key(r) in depth]
                best = max(refs, key=lambda r: depth[r], default=None)
                depth[node] = 1 + (depth[best] if best is not None else 0)
                below[node] = best
                todo.pop()
                on_path.discard(path.pop())
                continue
            if nxt not in graph or nxt in depth:
                continue
            if nxt in on_path:
                loop = path[path.index(nxt):]
                if frozenset(loop) not in cycles:
                    cycles.add(frozenset(loop))
                    names = [graph[k][0] for k in (*loop, nxt)]
                    out.append(Problem(("cycle", *sorted(loop)),
                                       f"segment cycle: {' -> '.join(names)}"))
                continue
            path.append(nxt)
            on_path.add(nxt)
            todo.append(iter(sorted(name_key(r) for r in graph[nxt][1])))
    for key in sorted(depth, key=lambda k: (-depth[k], k)):  # the longest chain first
        if depth[key] > MAX_SEGMENT_DEPTH:
            chain, at = [], key
            while at is not None:
                chain.append(graph[at][0])
                at = below[at]
            out.append(Problem(("deep", key),
                               f"segments nested more than {MAX_SEGMENT_DEPTH} levels deep: "
                               f"{_chain(chain)} ({len(chain)} segments)"))
    return out


def new_problem(before: list[Problem], after: list[Problem]) -> Problem | None:
    """The first problem of ``after`` that ``before`` did not have (None: the change is sound).

    Problems a catalog already had (saved by an older segcore, or behind its back) do
    not block changes that leave them as they were.
    """
    seen = {p.key for p in before}
    return next((p for p in after if p.key not in seen), None)
