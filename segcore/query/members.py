"""The members queries: who is in a rule or saved segment at one instant (a count, the
list, its SQL) and one user's page. Kept apart from :mod:`segcore.query.queries` (which
imports them) so that a count defines only the query classes it uses.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from segcore.errors import UsageError
from segcore.query.base import Query, Target, check_as_of, set_fields


# --------------------------------------------------------------------------- members
@dataclasses.dataclass(frozen=True)
class MembersQuery(Query):
    """Members of ``target`` at ``as_of`` (None: now); ``share_of_all`` also counts the
    universe, for the share of all users."""

    kind: ClassVar[str] = "members"
    target: Target
    as_of: str | None = None
    share_of_all: bool = False

    def __post_init__(self) -> None:
        set_fields(self, as_of=check_as_of(self.as_of), share_of_all=bool(self.share_of_all))


@dataclasses.dataclass(frozen=True)
class SqlQuery(Query):
    """The members query of ``target`` at ``as_of`` as SQL in ``dialect``."""

    kind: ClassVar[str] = "sql"
    target: Target
    as_of: str | None = None
    dialect: str = "duckdb"
    events_table: str | None = None  # table names instead of the store's Parquet files
    users_table: str | None = None

    def __post_init__(self) -> None:
        set_fields(self, as_of=check_as_of(self.as_of))


@dataclasses.dataclass(frozen=True)
class UserQuery(Query):
    """One user's attributes, latest ``last_events`` events and segments at ``as_of``."""

    kind: ClassVar[str] = "user"
    user_id: str
    as_of: str | None = None
    last_events: int = 20

    def __post_init__(self) -> None:
        if not isinstance(self.user_id, str) or not self.user_id:
            raise UsageError("give a user id")
        set_fields(self, as_of=check_as_of(self.as_of))
