"""What every query shares: a date range, a period, the measured target, JSON.

Vocabulary (the same in every query, the CLI and the dashboard):

- ``target``: what is measured -- a rule or a saved segment (:class:`Target`);
- ``segment``: a population restriction -- only the members of this saved segment
  (taken at the end of the range) count;
- ``range``: the days ``start..end`` (both included; instants ``[start, end + 1 day)``
  in the report zone) and ``every``: the :class:`Period` of a series (days, weeks, or
  calendar months where a report takes them);
- ``tz``: the report time zone of this query (an IANA name, every query has it;
  None: the store's setting, docs/rules.md section 2).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from segcore.errors import RuleError, UsageError
from segcore.lang.dates import check_zone, end_of_day, parse_date, resolve_as_of
from segcore.lang.periods import Period
from segcore.lang.tree import Node

Q = TypeVar("Q", bound="Query")

__all__ = ["DateRange", "Period", "Query", "Target", "check_as_of", "names", "query_from_json",
           "set_fields"]


@dataclasses.dataclass(frozen=True)
class DateRange:
    """The days ``start..end``, both included (instants ``[start, end + 1 day)`` in the
    report zone in force when they are read)."""

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        start = parse_date(self.start, "start date")
        end = parse_date(self.end, "end date")
        if end < start:
            raise UsageError(f"the range ends ({end}) before it starts ({start})")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    @classmethod
    def of(cls, start: Any, end: Any,
           missing: str = "this report needs a range: give start and end dates") -> DateRange:
        """A range from two dates (text or dates); a missing one is ``missing``'s UsageError."""
        if start is None or end is None:
            raise UsageError(missing)
        return cls(start, end)

    @property
    def since(self) -> dt.datetime:
        """The first instant of the range."""
        return end_of_day(self.start - dt.timedelta(days=1))

    @property
    def until(self) -> dt.datetime:
        """The instant that ends the range (exclusive)."""
        return end_of_day(self.end)

    def to_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


@dataclasses.dataclass(frozen=True)
class Target:
    """What is measured: a ``rule`` (text) or a saved ``segment`` by name (exactly one)."""

    rule: str | Node | None = None
    segment: str | None = None

    def __post_init__(self) -> None:
        if (self.rule is None) == (self.segment is None):
            raise RuleError("give either a rule or a segment name")
        if self.rule is not None and not isinstance(self.rule, str | Node):
            raise RuleError(
                f"a rule must be text or a condition tree, got {type(self.rule).__name__}")
        if self.segment is not None and not isinstance(self.segment, str):
            raise UsageError(f"a segment name must be text, got {type(self.segment).__name__}")

    @property
    def label(self) -> str:
        """The segment's name or the rule."""
        return self.segment if self.segment is not None else str(self.rule)

    def to_dict(self) -> dict[str, Any]:
        if isinstance(self.rule, Node):
            return {"rule": self.rule.to_dict()}
        return {"rule": self.rule} if self.rule is not None else {"segment": str(self.segment)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Target:
        rule = data.get("rule")
        if isinstance(rule, Mapping):  # a condition tree's JSON
            rule = json.dumps(rule)
        return cls(rule=rule, segment=data.get("segment"))


def set_fields(obj: Any, **values: Any) -> None:
    """Set fields of a frozen dataclass (in ``__post_init__``: normalised values)."""
    for k, v in values.items():
        object.__setattr__(obj, k, v)


def check_as_of(value: Any) -> str | None:
    """An as-of given to a query: None (now) or text that :func:`resolve_as_of` reads."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return resolve_as_of(value).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    resolve_as_of(value)  # raises a UsageError naming the problem
    return str(value).strip()


def names(values: Any, what: str) -> tuple[str, ...]:
    """A tuple of distinct non-empty names (a single name is one), in the given order."""
    if values is None:
        return ()
    if isinstance(values, str):
        values = [values]
    out = []
    for v in values:
        if not isinstance(v, str) or not v.strip():
            raise UsageError(f"{what}: expected names, got {v!r}")
        out.append(v)
    return tuple(dict.fromkeys(out))


_KINDS: dict[str, type[Query]] = {}


def _plain(value: Any) -> Any:
    if isinstance(value, Query):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        to_dict = getattr(value, "to_dict", None)
        if to_dict is not None:
            return to_dict()
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


@dataclasses.dataclass(frozen=True)
class Query:
    """A frozen, validated, hashable description of one analytic (see :mod:`segcore.query`).

    ``to_json``/``from_json`` round-trip it; ``kind`` names it in the JSON.
    """

    kind: ClassVar[str] = "query"
    # the report time zone (IANA name) of this query; None: the store's (keyword only)
    tz: str | None = dataclasses.field(default=None, kw_only=True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind != "query":
            _KINDS[cls.kind] = cls
        own = cls.__dict__.get("__post_init__")
        if own is not None:  # every query checks its tz after its own fields
            def post_init(self: Query, _own: Any = own) -> None:
                _own(self)
                Query.__post_init__(self)
            cls.__post_init__ = post_init  # type: ignore[method-assign]

    def __post_init__(self) -> None:
        if self.tz is not None:
            object.__setattr__(self, "tz", check_zone(self.tz))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values, with ``kind`` (``tz`` only when given)."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            if f.name == "tz" and self.tz is None:
                continue
            out[f.name] = _plain(getattr(self, f.name))
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls: type[Q], data: Mapping[str, Any]) -> Q:
        """The query of :meth:`to_dict`'s output (unknown keys are a UsageError)."""
        if not isinstance(data, Mapping):
            raise UsageError(f"a {cls.kind} query must be a JSON object")
        body = {k: v for k, v in data.items() if k != "kind"}
        if data.get("kind", cls.kind) != cls.kind:
            raise UsageError(f"expected a {cls.kind} query, got {data.get('kind')!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(body) - known)
        if unknown:
            raise UsageError(f"{cls.kind} query: unknown key(s) {unknown}")
        return cls(**cls._decode(body))

    @classmethod
    def _decode(cls, body: dict[str, Any]) -> dict[str, Any]:
        """Turn JSON values into field values (nested dataclasses, tuples)."""
        out = dict(body)
        if isinstance(out.get("target"), Mapping):
            out["target"] = Target.from_dict(out["target"])
        if isinstance(out.get("range"), Mapping):
            rng = out["range"]
            out["range"] = DateRange.of(rng.get("start"), rng.get("end"))
        return out

    @classmethod
    def from_json(cls: type[Q], text: str) -> Q:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"invalid query JSON: {exc}") from None
        return cls.from_dict(data)


def query_from_json(text: str) -> Query:
    """Any query from its JSON (its ``kind`` says which)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"invalid query JSON: {exc}") from None
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind not in _KINDS:
        raise UsageError(f"unknown query kind {kind!r}; known: {', '.join(sorted(_KINDS))}")
    return _KINDS[kind].from_dict(data)
