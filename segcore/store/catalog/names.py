"""Names in the catalog: the name rule, suggestions for unknown names, timestamps."""

from __future__ import annotations

import datetime as dt
import difflib
import unicodedata
from typing import Any

from segcore.errors import CatalogError
from segcore.store.catalog.schema import MAX_NAME_LENGTH


# ---------------------------------------------------------------------- helpers
def now_text() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_name(name: Any, what: str = "segment") -> str:
    """A stripped, valid name, or CatalogError."""
    if not isinstance(name, str):
        raise CatalogError(f"a {what} name must be text, got {type(name).__name__}")
    clean = name.strip()
    if not clean:
        raise CatalogError(f"a {what} name cannot be empty")
    if len(clean) > MAX_NAME_LENGTH:
        raise CatalogError(
            f"a {what} name can have at most {MAX_NAME_LENGTH} characters "
            f"(got {len(clean)}: {clean[:30]!r}...)"
        )
    bad = [c for c in clean if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]
    if bad:
        raise CatalogError(
            f"a {what} name cannot contain control characters (found {bad[0]!r} in {clean!r})"
        )
    return clean


def quote_list(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def suggest(name: str, candidates: list[str]) -> str:
    """'; did you mean ...?' with close names, or ''."""
    lower = {c.casefold(): c for c in candidates}
    close = difflib.get_close_matches(name.casefold(), list(lower), n=3, cutoff=0.6)
    extra = [c for k, c in lower.items() if name.casefold() in k and k not in close]
    found = [lower[k] for k in close] + extra
    found = list(dict.fromkeys(found))[:3]
    return f"; did you mean {quote_list(found)}?" if found else ""


