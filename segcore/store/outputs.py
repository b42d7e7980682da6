"""Files segcore writes for the user (``--out``, ``--rejects``) never land inside the store.

An output written into ``<home>/events`` or ``<home>/users`` would be read as store data
(members counted twice, users lost, phantom events); one written over the catalog or
its ``-wal``/``-shm``/``-journal`` files would lose every saved segment.
:func:`check_output_path` refuses such a path, however it is spelled: relative paths,
``..``, symbolic links (of the file or of a folder above it) and hard links to a store
file (same device and inode) all count. Writing an input of the same command over
(``--rejects`` naming the file being imported) is refused too.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from segcore.errors import UsageError
from segcore.store.events import EventStore

CATALOG_SUFFIXES = ("", "-wal", "-shm", "-journal")


def _real(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _store_files(store: EventStore) -> Iterable[Path]:
    yield from store.event_files()
    yield from store.user_files()
    for suffix in CATALOG_SUFFIXES:  # ok-loop: four names
        yield store.catalog_path.with_name(store.catalog_path.name + suffix)


def check_output_path(
    store: EventStore,
    path: str | os.PathLike[str],
    what: str,
    inputs: Iterable[str | os.PathLike[str]] = (),
) -> None:
    """Refuse (``UsageError``) writing ``what`` (e.g. ``--out``) at ``path`` when it is
    inside the store's events or users folder, is its catalog (or one of the catalog's
    side files), is one of ``inputs``, or is a hard link to any of them.
    """
    target = _real(path)
    home = _real(store.home)
    hint = "; write it outside the store's events and users folders and catalog"
    for name in ("events", "users"):  # ok-loop: two folders
        folder = home / name
        if target == folder or target.is_relative_to(folder):
            raise UsageError(
                f"{what} {path} is inside the store's {name} folder {folder}: it would be "
                f"read as {name} data{hint}"
            )
    protected = {home / (store.catalog_path.name + s): "catalog" for s in CATALOG_SUFFIXES}
    if target in protected:
        raise UsageError(f"{what} {path} is the store's {protected[target]} file {target}{hint}")
    real_inputs = [_real(p) for p in inputs]
    if target in real_inputs:
        raise UsageError(f"{what} {path} is one of the files being read; choose another file")
    inode = _inode(target)
    if inode is None:
        return
    for f in [*_store_files(store), *real_inputs]:  # ok-loop: the store's few files
        if _inode(f) == inode:
            raise UsageError(
                f"{what} {path} is a hard link to {f}{hint}"
            )
