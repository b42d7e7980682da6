"""File imports from the Data page: uploaded bytes -> segcore.ingest, with a report."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from segcore.api import Store
from segcore.errors import SegcoreError, UsageError
from segcore.ingest.preview import Preview
from segcore.ingest.readers import FORMATS
from segcore.ingest.tool_exports import TOOLS


def parse_mapping(fields: dict[str, str], extra: str = "") -> dict[str, str]:
    """Target -> source columns from the form: fixed fields plus ``target=source, ...``."""
    mapping = {k: v.strip() for k, v in fields.items() if v and v.strip()}
    for part in (p for p in extra.split(",") if p.strip()):
        target, sep, source = part.partition("=")
        if not sep or not target.strip() or not source.strip():
            raise UsageError(f"bad mapping {part.strip()!r}: write target=source")
        mapping[target.strip()] = source.strip()
    return mapping


def parse_derivations(text: str) -> list[str]:
    """The derived columns of the form's text area: one ``NAME = EXPRESSION`` per line."""
    return [line.strip() for line in text.splitlines() if line.strip()]


NO_MAPPING = "(no mapping: same name)"


def preview_upload(name: str, data: bytes, format: str | None = None,
                   encoding: str | None = None) -> Preview:
    """The first rows of an uploaded file and its guessed mapping
    (:func:`segcore.ingest.preview.preview_file`)."""
    from segcore.ingest.preview import preview_file

    with tempfile.TemporaryDirectory(prefix="segcore-preview-") as tmp:
        path = Path(tmp) / (Path(name).name or "upload")
        path.write_bytes(data)
        try:
            return preview_file(path, format, encoding or "utf-8")
        except SegcoreError as exc:  # name the user's file, not its temporary copy
            exc.args = tuple(a.replace(str(path), path.name) if isinstance(a, str) else a
                             for a in exc.args)
            raise


def mapping_index(preview: Preview, target: str) -> int:
    """The position of ``target``'s guessed column in ``[NO_MAPPING, *columns]``."""
    guess = preview.mapping.get(target)
    return preview.columns.index(guess) + 1 if guess in preview.columns else 0


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
    derive: list[str] | None = None,
    key: str | None = None,
    trim: bool = False,
    source_tz: str | None = None,
    if_imported: str = "ask",
) -> tuple[dict[str, Any], bytes | None]:
    """Import uploaded files; returns ingest's summary and the rejected rows as CSV bytes.

    ``kind="export"`` reads another tool's raw export (``format`` names the tool) into
    events and users at once; its summary adds up both tables' counts.
    Raises IngestError (nothing written) like :func:`segcore.ingest.ingest`.
    """
    from segcore.ingest import ingest, ingest_export

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
            if kind == "export":
                if format not in TOOLS:
                    raise UsageError(f"choose the tool as the format: {', '.join(TOOLS)}")
                if mapping or event or derive or (key and key.strip()) or source_tz:
                    raise UsageError("column mappings, derived columns, keys and a source "
                                     "time zone do not apply to a tool's export")
                summary = _added_up(
                    ingest_export(
                        store,
                        paths,
                        format=format or "",
                        skip_invalid=skip_invalid,
                        rejects_path=rejects,
                        progress=progress,
                        **kwargs,
                    )
                )
            else:
                if format in TOOLS and format not in FORMATS:
                    raise UsageError(f"a {format} export goes in with Import: export")
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
                    derive=derive or (),
                    key=key.strip() if key and key.strip() else None,
                    trim=trim,
                    source_tz=source_tz or None,
                    if_imported=if_imported,
                    **kwargs,
                )
        except SegcoreError as exc:  # name the user's file, not its temporary copy
            temp = re.escape(str(Path(tmp))) + r"[/\\]\d+[/\\]"
            exc.args = tuple(_dashboard_words(re.sub(temp, "", a)) if isinstance(a, str) else a
                             for a in exc.args)
            raise
        rejected = rejects.read_bytes() if rejects.exists() else None
    return _without_temp_paths(summary, Path(tmp), [name for name, _ in files]), rejected


# the CLI's wording in ingest's summary and errors, as the dashboard says it
_DASHBOARD_WORDS = {
    "use --key to skip them": "give key columns to skip them",
    "Choose --if-imported skip (leave those files out) or --if-imported again (import them "
    "anyway), or give --key": "Choose 'Skip it' (leave those files out) or 'Import it again' "
    "under 'If a file was imported before', or give key columns",
}

# the import form's choices for a file imported before -> ingest's ``if_imported``
IF_IMPORTED_CHOICES = {"Stop and tell me": "ask", "Skip it": "skip", "Import it again": "again"}


def _dashboard_words(text: str) -> str:
    for cli, words in _DASHBOARD_WORDS.items():
        text = text.replace(cli, words)
    return text


def _without_temp_paths(summary: dict[str, Any], tmp: Path,
                        names: list[str]) -> dict[str, Any]:
    """The summary naming the user's files, not their temporary copies (gone by now): the
    rejected rows are the page's download."""
    out = dict(summary)
    out["files"] = [Path(n).name for n in names]
    for key in ("imported_before", "skipped_files"):
        out[key] = [Path(f).name for f in out.get(key) or []]
    if out.get("rejects_file"):
        out["rejects_file"] = "rejected.csv (download below)"
    text = str(out.get("summary") or "")
    text = re.sub(r"rejected rows written to " + re.escape(str(tmp / "rejected.csv")),
                  "the rejected rows are in the download below", text)
    text = re.sub(re.escape(str(tmp)) + r"[/\\]\d+[/\\]", "", text)
    out["summary"] = _dashboard_words(text)
    return out


def _added_up(result: dict[str, Any]) -> dict[str, Any]:
    """An export's per-table results as one summary (counts added, columns listed)."""
    tables = [result[k] for k in ("events", "users") if k in result]
    total = {
        key: sum(t.get(key, 0) for t in tables)
        for key in ("rows_read", "rows_imported", "rows_rejected", "duplicates_skipped")
    }
    new = [f"{t['kind']}.{c}" for t in tables for c in t.get("new_columns", [])]
    return {**result, **total, "new_columns": new}
