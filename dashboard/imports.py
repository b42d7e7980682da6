"""File imports from the Data page: uploaded bytes -> segcore.ingest, with a report."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from segcore.api import Store
from segcore.errors import SegcoreError, UsageError


def parse_mapping(fields: dict[str, str], extra: str = "") -> dict[str, str]:
    """Target -> source columns from the form: fixed fields plus ``target=source, ...``."""
    mapping = {k: v.strip() for k, v in fields.items() if v and v.strip()}
    for part in (p for p in extra.split(",") if p.strip()):
        target, sep, source = part.partition("=")
        if not sep or not target.strip() or not source.strip():
            raise UsageError(f"bad mapping {part.strip()!r}: write target=source")
        mapping[target.strip()] = source.strip()
    return mapping


def run_import(
    store: Store,
    kind: str,
    files: list[tuple[str, bytes]],
    *,
    format: str | None = None,
    mapping: dict[str, str] | None = None,
    event: str | None = None,
    skip_invalid: bool = False,
    encoding: str | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> tuple[dict[str, Any], bytes | None]:
    """Import uploaded files; returns ingest's summary and the rejected rows as CSV bytes.

    Raises IngestError (nothing written) like :func:`segcore.ingest.ingest`.
    """
    from segcore.ingest import ingest

    if not files:
        raise UsageError("choose at least one file")
    with tempfile.TemporaryDirectory(prefix="segcore-upload-") as tmp:
        paths = []
        for i, (name, data) in enumerate(files):
            folder = Path(tmp) / str(i)
            folder.mkdir()
            path = folder / (Path(name).name or f"upload-{i}")
            path.write_bytes(data)
            paths.append(path)
        rejects = Path(tmp) / "rejected.csv"
        kwargs: dict[str, Any] = {}
        if encoding:
            kwargs["encoding"] = encoding
        try:
            summary = ingest(
                store,
                kind,
                paths,
                format=format,
                mapping=mapping or None,
                event=event or None,
                skip_invalid=skip_invalid,
                rejects_path=rejects,
                progress=progress,
                **kwargs,
            )
        except SegcoreError as exc:  # name the user's file, not its temporary copy
            temp = re.escape(str(Path(tmp))) + r"[/\\]\d+[/\\]"
            exc.args = tuple(re.sub(temp, "", a) if isinstance(a, str) else a for a in exc.args)
            raise
        rejected = rejects.read_bytes() if rejects.exists() else None
    return summary, rejected
