"""segcore: exact user segments over a Parquet event store."""

from __future__ import annotations

from segcore.api import Store
from segcore.errors import (
    CatalogError,
    ConflictError,
    IngestError,
    NotFoundError,
    RuleError,
    SegcoreError,
    StoreError,
    UsageError,
)

__version__ = "0.1.0"
__all__ = [
    "CatalogError",
    "ConflictError",
    "IngestError",
    "NotFoundError",
    "RuleError",
    "SegcoreError",
    "Store",
    "StoreError",
    "UsageError",
]
