"""The project's own error types: every user-facing failure is one of these."""

from __future__ import annotations


class SegcoreError(Exception):
    """Base of every error segcore raises on bad input or a bad state.

    The CLI prints ``str(error)`` as one line on stderr and exits non-zero; the
    dashboard shows it as a friendly message.
    """


class RuleError(SegcoreError):
    """A rule that cannot be parsed, type-checked or resolved.

    Parameters
    ----------
    message
        What is wrong, in words.
    line, col
        1-based position in the rule text, when the problem comes from the text.
    """

    def __init__(self, message: str, line: int | None = None, col: int | None = None):
        self.message = message
        self.line = line
        self.col = col
        where = f" (line {line}, column {col})" if line is not None and col is not None else ""
        super().__init__(f"{message}{where}")


class IngestError(SegcoreError):
    """A file refused by ingestion (nothing was written)."""


class StoreError(SegcoreError):
    """The store cannot be read or written (missing, read-only, full disk...)."""


class CatalogError(SegcoreError):
    """A catalog operation that cannot be done (unknown name, duplicate name...)."""


class NotFoundError(CatalogError):
    """A segment, channel or user that does not exist."""


class ConflictError(CatalogError):
    """An edit based on a stale version of a segment."""


class UsageError(SegcoreError):
    """A bad argument value (date, duration, option)."""


class EngineError(StoreError):
    """A SQL engine (DuckDB, ClickHouse, Spark) failed to run a query: its message, one line."""
