"""Which engine computes a query: :class:`Engine`, a small frozen value.

The runners (``segcore.query.runners``), ``segcore.Store``, the CLI (``--engine``)
and the dashboard all take an ``Engine``; ``Engine.parse`` turns the user's text
(``"duckdb"``, ``"spark"``, ``"spark://host:7077"``, ``"local[4]"``) into one.

>>> Engine.parse("duckdb")
Engine(name='duckdb', master=None)
>>> Engine.parse("spark://10.0.0.5:7077")
Engine(name='spark', master='spark://10.0.0.5:7077')
>>> Engine.parse(None).is_polars
True

``polars`` is the in-process reference (the Polars backend); ``duckdb``,
``clickhouse`` (chdb) and ``spark`` run the SQL compiled by ``segcore.engine.sql``.
``master`` (Spark only) is a master URL (``local[*]``, ``spark://host:7077``) or
``sc://host:15002`` for Spark Connect; None means ``$SPARK_MASTER`` or
``$SPARK_REMOTE``, else ``local[2]``. This module imports nothing heavy, so any
layer may use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from segcore.errors import UsageError

EngineName = Literal["polars", "duckdb", "clickhouse", "spark"]
ENGINE_NAMES: tuple[str, ...] = ("polars", "duckdb", "clickhouse", "spark")
_ALIASES = {"chdb": "clickhouse", "local": "polars"}
_SQL_DIALECT = {"duckdb": "duckdb", "clickhouse": "clickhouse", "spark": "spark"}


@dataclass(frozen=True)
class Engine:
    """An engine choice: ``name`` in ``ENGINE_NAMES`` and, for Spark, a ``master`` URL.

    Frozen and hashable (dashboard caches key on it); ``str(engine)`` gives text
    that ``Engine.parse`` reads back.
    """

    name: EngineName = "polars"
    master: str | None = None

    def __post_init__(self) -> None:
        name = _ALIASES.get(str(self.name).lower(), str(self.name).lower())
        if name not in ENGINE_NAMES:
            raise UsageError(
                f"unknown engine {self.name!r} (expected polars, duckdb, clickhouse or spark)"
            )
        object.__setattr__(self, "name", name)
        master = None if self.master is None else str(self.master).strip() or None
        if master is not None and name != "spark":
            raise UsageError(f"a master URL is for the spark engine, not {name}")
        object.__setattr__(self, "master", master)

    @classmethod
    def parse(cls, value: Engine | str | None, master: str | None = None) -> Engine:
        """An Engine from text or an Engine (None: polars).

        ``spark://...``, ``sc://...``, ``local[...]`` and ``yarn`` mean Spark with
        that master; ``spark@<master>`` spells both at once.
        """
        if isinstance(value, Engine):
            return value if master is None else cls(value.name, master)
        if value is None or str(value).strip() == "":
            return cls("spark", master) if master else cls()
        text = str(value).strip()
        low = text.lower()
        if low.startswith("spark@"):
            return cls("spark", text.split("@", 1)[1])
        if low.startswith(("spark://", "sc://", "local[", "yarn", "k8s://", "mesos://")):
            return cls("spark", text)
        return cls(low, master)  # type: ignore[arg-type]

    @property
    def is_polars(self) -> bool:
        """True for the in-process Polars backend (no SQL)."""
        return self.name == "polars"

    @property
    def dialect(self) -> str | None:
        """The sqlglot dialect of a SQL engine (None for polars)."""
        return _SQL_DIALECT.get(self.name)

    def __str__(self) -> str:
        return f"spark@{self.master}" if self.master else self.name

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "master": self.master}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Engine:
        return cls(d.get("name", "polars"), d.get("master"))


POLARS = Engine("polars")


def engine_of(value: Engine | str | None) -> Engine:
    """``Engine.parse`` (the one place user text becomes an Engine)."""
    return Engine.parse(value)
