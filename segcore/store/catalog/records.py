"""The catalog's records: segments, channels and the report of a member upload."""

from __future__ import annotations

import dataclasses
from typing import Any


# ---------------------------------------------------------------------- records
@dataclasses.dataclass(frozen=True)
class Segment:
    """A saved segment as stored in the catalog.

    Attributes
    ----------
    id
        Internal row id (stable across renames).
    name, description
        As given; ``name`` is unique among live segments (case-insensitive).
    kind
        ``'dynamic'`` (members from ``rule_text`` / ``rule_json``) or ``'static'``
        (members stored in the catalog).
    rule_text, rule_json
        The rule as text and as the condition tree's JSON; the catalog reads only the
        JSON's ``in_segment`` references (``segcore.lang.references``).
    created_at, updated_at, deleted_at
        UTC ISO-8601 strings (``...Z``); ``deleted_at`` is None unless deleted.
    version
        1 at creation, +1 on every change (edit, rename, members, delete, restore).
    member_count
        Number of stored members for a static segment, None for a dynamic one.
    """

    id: int
    name: str
    description: str
    kind: str
    rule_text: str | None
    rule_json: str | None
    created_at: str
    updated_at: str
    version: int
    deleted_at: str | None = None
    member_count: int | None = None

    @property
    def is_static(self) -> bool:
        return self.kind == "static"

    def to_dict(self) -> dict[str, Any]:
        """The segment as a JSON-ready dict (the internal ``id`` left out)."""
        out = dataclasses.asdict(self)
        del out["id"]
        return out


@dataclasses.dataclass(frozen=True)
class Channel:
    """A reachability channel: a named attribute-only rule (docs/analytics.md, Reachability)."""

    name: str
    rule_text: str
    description: str
    position: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class MembersReport:
    """What adding or removing ids did to a static segment.

    Attributes
    ----------
    segment, version, member_count
        The segment's name, new version and number of stored members after the change.
    action
        ``'add'`` or ``'remove'``.
    rows, ids, duplicates
        Ids given (empty values skipped), distinct ids, extra occurrences.
    added, already_members
        ``add``: ids stored now / ids that were members already (left alone).
    removed, not_members
        ``remove``: ids taken out / ids that were not members (ignored).
    unknown
        Ids the store does not know (no user row, no event). ``add`` stores them (they
        may arrive with a later import); None when the store was not asked.
    """

    segment: str
    version: int
    member_count: int
    action: str
    rows: int
    ids: int
    duplicates: int
    added: int = 0
    already_members: int = 0
    removed: int = 0
    not_members: int = 0
    unknown: int | None = None
    examples: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


