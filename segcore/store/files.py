"""Atomic file writes: a file appears complete or not at all."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from segcore.errors import StoreError

TMP_PREFIX = ".tmp-"


def fsync_dir(path: Path) -> None:
    """Flush a directory entry (after a rename) where the OS supports it."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_OS_ERROR = re.compile(r"os error (\d+)")


def write_error(target: Path, exc: BaseException, left: str) -> StoreError | None:
    """The one-line StoreError for a failed write of ``target``, or None if ``exc`` is
    not an OS failure (Polars wraps them: ``... No space left on device (os error 28)``).

    ``left`` says what stayed as it was, e.g. ``the store is unchanged``.
    """
    if isinstance(exc, OSError):
        code, text = exc.errno, exc.strerror or str(exc)
    else:
        found = _OS_ERROR.search(str(exc))
        if not isinstance(exc, pl.exceptions.PolarsError) or found is None:
            return None
        code = int(found.group(1))
        text = os.strerror(code)
    if code == errno.ENOSPC:
        return StoreError(f"no space left on device while writing {target}; {left}")
    if code == errno.EROFS:
        return StoreError(f"read-only file system: cannot write {target}; {left}")
    return StoreError(f"cannot write {target}: {text}; {left}")


@contextlib.contextmanager
def atomic_path(target: Path, *, left: str = "nothing was written") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success fsync it and rename it over.

    On any exception the temporary file is removed and ``target`` is untouched; an OS
    failure (full disk, read-only, permissions) becomes one :class:`StoreError` line
    ending in ``left``.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {target.parent}: {exc.strerror or exc}") from None
    tmp = target.parent / f"{TMP_PREFIX}{uuid.uuid4().hex}-{target.name}"
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        error = write_error(target, exc, left)
        if error is None:
            raise
        raise error from None


def write_parquet_atomic(
    df: pl.DataFrame, target: Path, row_group_size: int = 512_000, *,
    left: str = "nothing was written",
) -> None:
    """Write a DataFrame to Parquet at ``target`` atomically (zstd, statistics on)."""
    with atomic_path(target, left=left) as tmp:
        df.write_parquet(tmp, compression="zstd", statistics=True, row_group_size=row_group_size)


def replace_dir_atomic(build: Path, target: Path) -> None:
    """Swap a fully built directory ``build`` into place at ``target``.

    The old directory is renamed aside first and removed after the swap, so at any
    moment ``target`` is either the complete old or the complete new directory
    (one rename apart).
    """
    target = Path(target)
    old = target.parent / f"{TMP_PREFIX}old-{uuid.uuid4().hex}-{target.name}"
    try:
        if target.exists():
            os.replace(target, old)
        os.replace(build, target)
        fsync_dir(target.parent)
    except OSError as exc:
        if old.exists() and not target.exists():
            os.replace(old, target)
        raise StoreError(f"cannot replace {target}: {exc.strerror or exc}") from None
    shutil.rmtree(old, ignore_errors=True)


def new_build_dir(parent: Path, name: str) -> Path:
    """A fresh hidden directory beside where ``name`` will live."""
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{name}-", dir=parent))


def clean_stale_temp(folder: Path) -> None:
    """Remove temporary files left by a killed writer (they are never read)."""
    if not folder.exists():
        return
    for p in folder.iterdir():
        if p.name.startswith(TMP_PREFIX):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    p.unlink()
