"""The catalog: saved segments, static members, channels and funnels in SQLite.

Split by concern: ``connection`` (connections, transactions, schema, reference check),
``segments``, ``members`` (static members), ``channels``, ``funnels``; ``records`` holds the
rows as objects, ``id_lists`` parses lists of ids, ``names`` the name rule.


The catalog lives at ``<home>/catalog.sqlite`` (see docs/architecture.md, "The store").
It is safe to use from several threads and several processes at once:

- every call opens its own short-lived ``sqlite3`` connection (never shared
  between threads), in WAL mode with a busy timeout and foreign keys on;
- every write runs in one ``BEGIN IMMEDIATE`` transaction: it is applied
  completely or not at all (an exception or a crash leaves the catalog as it was);
- a segment carries a ``version`` (1 at creation, +1 on every change). An edit
  given ``expect_version`` is checked and applied atomically
  (``UPDATE ... WHERE version = ?``): of two edits made from the same stale
  version, exactly one wins and the other gets a :class:`ConflictError`.

Names of segments, channels and funnels are unique without regard to (ASCII)
case. A deleted segment is kept (with its history) until purged; its name may
be reused by a new segment, and restoring it then needs a new name.

References between segments (``in_segment``) stay sound through every change
(``segcore.lang.references``): a rename rewrites the rules that refer to the segment,
a referenced segment cannot be deleted, and no change may leave a missing
reference, a cycle or a chain deeper than ``MAX_SEGMENT_DEPTH``. The member
changes of static segments are logged per version, so :meth:`Catalog.revert`
can bring back any earlier version.

Examples
--------
>>> cat = Catalog("data/catalog.sqlite")                      # doctest: +SKIP
>>> cat.create("vip", rule_text="sum('purchase', 'amount') > 1000")  # doctest: +SKIP
>>> cat.edit("vip", description="big spenders", expect_version=1)    # doctest: +SKIP
"""

from __future__ import annotations

from segcore.store.catalog.channels import ChannelsMixin
from segcore.store.catalog.connection import CatalogConnection
from segcore.store.catalog.funnels import FunnelsMixin
from segcore.store.catalog.id_lists import ID_HEADERS, parse_ids_csv, parse_ids_text
from segcore.store.catalog.members import StaticMembersMixin
from segcore.store.catalog.records import Channel, MembersReport, Segment
from segcore.store.catalog.schema import DEFAULT_CHANNELS, SCHEMA_VERSION
from segcore.store.catalog.segments import SegmentsMixin

__all__ = [
    "DEFAULT_CHANNELS", "ID_HEADERS", "SCHEMA_VERSION", "Catalog", "Channel", "MembersReport",
    "Segment", "parse_ids_csv", "parse_ids_text",
]


class Catalog(SegmentsMixin, StaticMembersMixin, ChannelsMixin, FunnelsMixin, CatalogConnection):
    """The SQLite catalog at ``path`` (created with its schema on first use).

    Parameters
    ----------
    path
        The database file, normally ``<home>/catalog.sqlite``.
    busy_timeout
        Seconds to wait for another writer before giving up with a StoreError.
    """
