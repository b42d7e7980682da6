"""Import records: the content hash of every events file imported into a store.

Each successful ``ingest events`` appends one JSON line per file to
``<home>/imports.ndjson``: ``{"sha256", "file", "rows", "at"}``. A later import of a file
with the same content (whatever its name) is found by its hash before anything is written;
:func:`segcore.ingest.ingest` then refuses it, skips it or imports it again, as asked
(``if_imported``), when its events carry no ``event_id`` to deduplicate them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

from segcore.errors import IngestError
from segcore.store.events import EventStore

RECORDS_FILE = "imports.ndjson"
IF_IMPORTED = ("ask", "skip", "again")


def check_if_imported(value: str) -> str:
    """One of :data:`IF_IMPORTED`, or one clear error."""
    if value not in IF_IMPORTED:
        raise IngestError(f"bad if_imported {value!r}: use {', '.join(IF_IMPORTED)}")
    return value


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's content (hex)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _records(store: EventStore) -> dict[str, dict[str, Any]]:
    """The first record of each content hash."""
    path = Path(store.home) / RECORDS_FILE
    if not path.exists():
        return {}
    out: dict[str, dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():  # ok-loop: one line per imported file
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a torn last line (a crash while appending) is not a record
        if isinstance(rec, dict) and isinstance(rec.get("sha256"), str):
            out.setdefault(rec["sha256"], rec)
    return out


def imported_before(store: EventStore, digests: dict[Path, str]) -> dict[Path, dict[str, Any]]:
    """The files of ``digests`` whose content was imported before, with that record."""
    known = _records(store)
    return {p: known[d] for p, d in digests.items() if d in known}


def record_imports(store: EventStore, digests: dict[Path, str], rows: int) -> None:
    """Append one record per imported file (``rows``: the rows the import stored)."""
    at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    lines = "".join(json.dumps({"sha256": d, "file": p.name, "rows": rows, "at": at}) + "\n"
                    for p, d in digests.items())
    with open(Path(store.home) / RECORDS_FILE, "a", encoding="utf-8") as f:
        f.write(lines)


def describe(before: dict[Path, dict[str, Any]]) -> str:
    """``a.csv (imported 2026-06-30T10:00:00Z as a.csv)``, for each repeated file."""
    return ", ".join(f"{p.name} (imported {r.get('at', '?')} as {r.get('file', '?')})"
                     for p, r in before.items())


__all__ = ["IF_IMPORTED", "RECORDS_FILE", "check_if_imported", "describe", "file_digest",
           "imported_before", "record_imports"]
