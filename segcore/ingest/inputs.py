"""The input files of one import: files, folders (recursive) and glob patterns.

- a file is taken as given (its format from its extension, or ``--format``);
- a folder stands for every file below it (recursively, in name order) whose extension
  is a known format (with ``--format``: every file); hidden files and folders (``.x``)
  and rejects files (``*.rejected.csv``) are left out;
- an argument that is no existing path and holds ``*``, ``?`` or ``[`` is a glob
  pattern (``**`` crosses folders): the files it matches are chosen as in a folder, a
  folder it matches is expanded as above, and a pattern matching nothing is an error.

A file named twice (directly, through a folder or a pattern) is read once.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path

from segcore.errors import IngestError
from segcore.ingest.readers import EXTENSIONS

REJECTS_SUFFIX = ".rejected.csv"
_GLOB_CHARS = ("*", "?", "[")


def _wanted(path: Path, root: Path, any_extension: bool) -> bool:
    rel = path.relative_to(root).parts
    if any(part.startswith(".") for part in rel):
        return False
    if path.name.lower().endswith(REJECTS_SUFFIX):
        return False
    return any_extension or path.suffix.lower() in EXTENSIONS


def _folder_files(folder: Path, any_extension: bool) -> list[Path]:
    files = [p for p in folder.rglob("*") if p.is_file() and _wanted(p, folder, any_extension)]
    if not files:
        kinds = "files" if any_extension else "files with a known extension (" + ", ".join(
            sorted(EXTENSIONS)) + ")"
        raise IngestError(f"{folder}: folder holds no {kinds}")
    return sorted(files)


def expand_inputs(args: Sequence[str | Path], format: str | None = None) -> list[Path]:
    """The files named by ``args`` (files, folders, glob patterns), in order, each once."""
    out: list[Path] = []
    any_extension = format is not None
    for arg in args:  # ok-loop: command-line arguments
        path = Path(arg)
        text = str(arg)
        if path.is_dir():
            out.extend(_folder_files(path, any_extension))
        elif path.exists() or not any(ch in text for ch in _GLOB_CHARS):
            out.append(path)  # a missing file is reported by its reader
        else:
            matches = [Path(m) for m in sorted(glob.glob(text, recursive=True))]
            files = [m for m in matches if m.is_file() and _wanted(m, m.parent, any_extension)]
            folders = [m for m in matches if m.is_dir()]
            if not files and not folders:
                raise IngestError(f"{text}: no file with a known extension matches this pattern")
            out.extend(files)
            for folder in folders:  # ok-loop: matched folders
                out.extend(_folder_files(folder, any_extension))
    seen: set[Path] = set()
    unique = []
    for p in out:  # ok-loop: input files
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    if not unique:
        raise IngestError("no input files given")
    return unique


__all__ = ["REJECTS_SUFFIX", "expand_inputs"]
