"""The typed condition tree: what a rule *is*, independent of any engine.

Rule text is parsed into these nodes (``segcore.lang.parser``); the Polars evaluator,
the SQL compiler and the text printer all read them. Nodes are immutable
dataclasses that serialise to versioned JSON (:func:`to_json` / :func:`from_json`).
This module imports neither Polars nor sqlglot.

Value types (``TYPES``) are the scalar types of docs/rules.md section 3 plus
``interval`` (microseconds) and ``list`` (list of strings).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from segcore.errors import RuleError

TREE_VERSION = 1
TYPES = ("string", "int", "float", "bool", "date", "timestamp", "interval", "list", "null")


# Behavioural aggregate functions: name -> (needs a property, value when no event matches)
AGGREGATES: dict[str, tuple[bool, Any]] = {
    "did": (False, False),
    "event_count": (False, 0),
    "event_sum": (True, 0),
    "event_avg": (True, None),
    "event_min": (True, None),
    "event_max": (True, None),
    "event_distinct": (True, 0),
    "first_seen": (False, None),
    "last_seen": (False, None),
    "event_periods": (False, 0),
}
SEQUENCES = ("did_then", "did_then_not")
SCALAR_FUNCTIONS = (
    "now", "today", "lower", "upper", "length", "contains", "starts_with", "ends_with",
    "coalesce", "has",
)

_REGISTRY: dict[str, type[Node]] = {}


class Node:
    """Base of every tree node; subclasses are frozen dataclasses with a ``kind``."""

    kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls.kind:
            _REGISTRY[cls.kind] = cls

    def children(self) -> list[Node]:
        """Direct child nodes (in field order)."""
        out: list[Node] = []
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, Node):
                out.append(v)
            elif isinstance(v, tuple):
                out.extend(x for x in v if isinstance(x, Node))
        return out

    def walk(self):
        """Every node of the subtree, parents before children (iterative)."""
        stack: list[Node] = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children()))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of this subtree."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, Node):
                v = v.to_dict()
            elif isinstance(v, tuple):
                v = [x.to_dict() if isinstance(x, Node) else x for x in v]
            if v is None and f.default is None:  # optional fields are left out
                continue
            out[f.name] = v
        return out


# --------------------------------------------------------------------------- values
@dataclass(frozen=True)
class Lit(Node):
    """A literal. ``value`` is JSON-ready: dates ``YYYY-MM-DD``, timestamps ISO
    ``YYYY-MM-DDTHH:MM:SS[.ffffff]`` (UTC), intervals integer microseconds."""

    kind: ClassVar[str] = "lit"
    value: Any
    type: str


@dataclass(frozen=True)
class Col(Node):
    """A user attribute, or an event column inside ``where`` filters."""

    kind: ClassVar[str] = "col"
    name: str


@dataclass(frozen=True)
class Call(Node):
    """A scalar function from ``SCALAR_FUNCTIONS`` (``now()``, ``lower(x)``...)."""

    kind: ClassVar[str] = "call"
    name: str
    args: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Neg(Node):
    """Unary minus."""

    kind: ClassVar[str] = "neg"
    arg: Node


@dataclass(frozen=True)
class Arith(Node):
    """``left op right`` with op in ``+ - * /`` (``/`` is float division; x/0 is NULL)."""

    kind: ClassVar[str] = "arith"
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Case(Node):
    """``CASE WHEN c1 THEN v1 [WHEN c2 THEN v2 ...] [ELSE d] END``: the value of the first
    condition that is TRUE (NULL counts as not true), else ``default`` (NULL if absent)."""

    kind: ClassVar[str] = "case"
    conditions: tuple[Node, ...]
    values: tuple[Node, ...]
    default: Node | None = None


# --------------------------------------------------------------------------- predicates
@dataclass(frozen=True)
class Compare(Node):
    """``left op right`` with op in ``= != < <= > >=``; NULL on either side is NULL."""

    kind: ClassVar[str] = "compare"
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Like(Node):
    """``arg [NOT] LIKE|ILIKE pattern`` (``%`` any run, ``_`` one character)."""

    kind: ClassVar[str] = "like"
    arg: Node
    pattern: Node
    case_insensitive: bool = False
    negated: bool = False


@dataclass(frozen=True)
class InList(Node):
    """``arg [NOT] IN (items...)`` with SQL NULL semantics."""

    kind: ClassVar[str] = "in"
    arg: Node
    items: tuple[Node, ...]
    negated: bool = False


@dataclass(frozen=True)
class Between(Node):
    """``arg [NOT] BETWEEN low AND high`` (both ends included)."""

    kind: ClassVar[str] = "between"
    arg: Node
    low: Node
    high: Node
    negated: bool = False


@dataclass(frozen=True)
class IsNull(Node):
    """``arg IS [NOT] NULL`` (never NULL itself)."""

    kind: ClassVar[str] = "is_null"
    arg: Node
    negated: bool = False


@dataclass(frozen=True)
class IsBool(Node):
    """``arg IS [NOT] TRUE|FALSE`` (never NULL itself)."""

    kind: ClassVar[str] = "is_bool"
    arg: Node
    value: bool
    negated: bool = False


@dataclass(frozen=True)
class Not(Node):
    """Logical NOT (NULL stays NULL)."""

    kind: ClassVar[str] = "not"
    arg: Node


@dataclass(frozen=True)
class And(Node):
    """Logical AND of two or more conditions (Kleene logic)."""

    kind: ClassVar[str] = "and"
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Or(Node):
    """Logical OR of two or more conditions (Kleene logic)."""

    kind: ClassVar[str] = "or"
    args: tuple[Node, ...]


# --------------------------------------------------------------------------- behaviour
@dataclass(frozen=True)
class Behavior(Node):
    """An aggregate over a user's matching events (``did``, ``event_count``...)."""

    kind: ClassVar[str] = "behavior"
    func: str
    event: str
    prop: str | None = None
    within: int | None = None
    since: Node | None = None
    until: Node | None = None
    where: Node | None = None
    period: int | None = None  # event_periods only, microseconds


@dataclass(frozen=True)
class Sequence(Node):
    """``did_then(A, B, gap)`` / ``did_then_not(A, B, gap)`` (docs/rules.md section 6).

    The window and ``where`` select the A events; ``then_where`` filters B events.
    """

    kind: ClassVar[str] = "sequence"
    func: str
    first: str
    then: str
    gap: int  # microseconds
    within: int | None = None
    since: Node | None = None
    until: Node | None = None
    where: Node | None = None
    then_where: Node | None = None


@dataclass(frozen=True)
class InSegment(Node):
    """Membership of a saved segment at the same instant T."""

    kind: ClassVar[str] = "in_segment"
    name: str


BEHAVIOURAL = (Behavior, Sequence)


# --------------------------------------------------------------------------- JSON
def _node_from_dict(d: Any) -> Any:
    if isinstance(d, list):
        return tuple(_node_from_dict(x) for x in d)
    if not isinstance(d, dict):
        return d
    kind = d.get("kind")
    cls = _REGISTRY.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise RuleError(f"unknown node kind {kind!r} in condition tree JSON")
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    extra = set(d) - names - {"kind"}
    if extra:
        raise RuleError(f"unknown field(s) {sorted(extra)} for node {kind!r} in condition tree JSON")
    try:
        return cls(**{k: _node_from_dict(v) for k, v in d.items() if k != "kind"})
    except TypeError as exc:
        raise RuleError(f"bad {kind!r} node in condition tree JSON: {exc}") from None


def to_dict(node: Node) -> dict[str, Any]:
    """The versioned JSON document of a tree: ``{"version": 1, "tree": {...}}``."""
    return {"version": TREE_VERSION, "tree": node.to_dict()}


def from_dict(doc: dict[str, Any]) -> Node:
    """Inverse of :func:`to_dict` (also accepts a bare node dict)."""
    if not isinstance(doc, dict):
        raise RuleError("condition tree JSON must be an object")
    if "tree" in doc:
        version = doc.get("version", TREE_VERSION)
        if version != TREE_VERSION:
            raise RuleError(f"condition tree JSON version {version} is not supported")
        doc = doc["tree"]
    node = _node_from_dict(doc)
    if not isinstance(node, Node):
        raise RuleError("condition tree JSON does not describe a node")
    return node


def to_json(node: Node) -> str:
    """Serialise a tree to versioned JSON text."""
    return json.dumps(to_dict(node), separators=(",", ":"), ensure_ascii=False)


def from_json(text: str) -> Node:
    """Parse versioned JSON text back into a tree."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RuleError(f"condition tree JSON is not valid JSON: {exc}") from None
    return from_dict(doc)


def segment_refs(node: Node) -> set[str]:
    """Names of the segments a tree refers to with ``in_segment``."""
    return {n.name for n in node.walk() if isinstance(n, InSegment)}


def behaviours(node: Node) -> list[Node]:
    """The distinct behavioural terms of a tree, in first-seen order."""
    seen: dict[Node, None] = {}
    for n in node.walk():
        if isinstance(n, BEHAVIOURAL):
            seen.setdefault(n, None)
    return list(seen)


def conj(*args: Node) -> Node:
    """AND of the arguments, flattening nested ANDs (one argument: itself)."""
    flat: list[Node] = []
    for a in args:
        flat.extend(a.args if isinstance(a, And) else (a,))
    return flat[0] if len(flat) == 1 else And(tuple(flat))


def disj(*args: Node) -> Node:
    """OR of the arguments, flattening nested ORs (one argument: itself)."""
    flat: list[Node] = []
    for a in args:
        flat.extend(a.args if isinstance(a, Or) else (a,))
    return flat[0] if len(flat) == 1 else Or(tuple(flat))


@dataclass(frozen=True)
class Schema:
    """Column types a rule is checked against: user attributes and event columns."""

    users: dict[str, str] = field(default_factory=dict)
    events: dict[str, str] = field(default_factory=dict)
    event_names: frozenset[str] | None = None  # None: do not check event names
    segments: frozenset[str] | None = None  # None: do not check segment names
