"""What the dashboard exposes: the bind address, the password check, download URLs.

- The server must listen on a loopback address unless ``SEGCORE_ALLOW_REMOTE`` is set
  (``dashboard/.streamlit/config.toml`` binds ``127.0.0.1`` from any working folder; this
  check also covers ``~/.streamlit``, ``STREAMLIT_SERVER_ADDRESS`` and flags).
- Passwords are compared in constant time; wrong ones are throttled per session (a growing
  wait) and across sessions (a cap per minute).
- Download URLs (``/media/<id>``) carry no cookie check in Streamlit, so each generated
  download is served once and then removed from memory.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import ipaddress
import os
import threading
import time
from collections.abc import Callable

ALLOW_REMOTE_ENV = "SEGCORE_ALLOW_REMOTE"
FREE_TRIES = 3  # wrong passwords a session may type before it has to wait
MAX_WAIT = 300.0  # seconds: the longest wait of one session
GLOBAL_WINDOW = 60.0  # seconds
GLOBAL_MAX_FAILURES = 20  # wrong passwords per GLOBAL_WINDOW, all sessions together


def bound_to_loopback(address: str | None) -> bool:
    """True when ``address`` (``server.address``) only accepts local connections."""
    if not address:
        return False  # unset: Streamlit listens on every interface
    if address.startswith("unix://"):
        return True
    if address.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def remote_allowed() -> bool:
    """True when the operator opted in to a non-loopback bind (``SEGCORE_ALLOW_REMOTE=1``)."""
    return os.environ.get(ALLOW_REMOTE_ENV, "").strip().lower() in {"1", "true", "yes"}


def same_secret(given: str, expected: str) -> bool:
    """Compare two passwords in time independent of their content and lengths."""
    a = hashlib.sha256(given.encode("utf-8", "surrogatepass")).digest()
    b = hashlib.sha256(expected.encode("utf-8", "surrogatepass")).digest()
    return hmac.compare_digest(a, b)


def session_wait(failures: int) -> float:
    """Seconds a session must wait after its ``failures``-th wrong password."""
    if failures < FREE_TRIES:
        return 0.0
    return min(MAX_WAIT, 2.0 ** (failures - FREE_TRIES))


class Throttle:
    """Wrong-password bookkeeping shared by every session of one server process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._failures: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def _prune(self, now: float) -> None:
        while self._failures and now - self._failures[0] >= GLOBAL_WINDOW:
            self._failures.popleft()

    def wait(self, failures: int, last_failure: float | None) -> float:
        """Seconds before a session with ``failures`` wrong tries may try again (0: now)."""
        now = self.clock()
        with self._lock:
            self._prune(now)
            glob = 0.0
            if len(self._failures) >= GLOBAL_MAX_FAILURES:
                glob = GLOBAL_WINDOW - (now - self._failures[0])
        own = 0.0 if last_failure is None else session_wait(failures) - (now - last_failure)
        return max(0.0, own, glob)

    def failed(self) -> float:
        """Record one wrong password; returns its time (for the session's own record)."""
        now = self.clock()
        with self._lock:
            self._prune(now)
            self._failures.append(now)
        return now

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()


THROTTLE = Throttle()


def serve_downloads_once(storage: object) -> bool:
    """Make each download in Streamlit's media ``storage`` fetchable once, then forget it.

    ``st.download_button`` with a callable generates the file on click; the browser then
    fetches ``/media/<id>`` (no cookie is checked there). Wrapping the storage's
    ``get_file`` removes a downloadable file at that first fetch, so a later fetch (a leaked
    URL, a replayed request) gets 404; clicking again generates the file again. Returns
    False when the storage is not the in-memory one this was written for: the caller then
    disables downloads instead of serving them on reusable URLs.
    """
    from streamlit.runtime.media_file_storage import MediaFileKind, MediaFileStorageError
    from streamlit.runtime.memory_media_file_storage import (
        MemoryMediaFileStorage,
        get_extension_for_mimetype,
    )

    if not isinstance(storage, MemoryMediaFileStorage):
        return False
    if getattr(storage, "segcore_once", False):
        return True
    files = getattr(storage, "_files_by_id", None)
    endpoint = getattr(storage, "_media_endpoint", None)
    if not isinstance(files, dict) or not isinstance(endpoint, str):
        return False
    lock = threading.Lock()

    def get_file(filename: str):  # the /media/ route
        file_id = os.path.splitext(filename)[0]
        with lock:
            media = files.get(file_id)
            if media is None:
                raise MediaFileStorageError(f"no media file with id '{file_id}'")
            if media.kind == MediaFileKind.DOWNLOADABLE:
                del files[file_id]
        return media

    def get_url(file_id: str) -> str:  # the script, right after generating: not a fetch
        media = files.get(file_id)
        if media is None:
            raise MediaFileStorageError(f"no media file with id '{file_id}'")
        return f"{endpoint}/{file_id}{get_extension_for_mimetype(media.mimetype)}"

    storage.get_file = get_file  # type: ignore[attr-defined]
    storage.get_url = get_url  # type: ignore[attr-defined]
    storage.segcore_once = True  # type: ignore[attr-defined]
    return True
