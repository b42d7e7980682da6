"""What the dashboard exposes: the bind address, the password check, download URLs.

- The server must listen on a loopback address unless ``SEGCORE_ALLOW_REMOTE`` is set
  (``dashboard/.streamlit/config.toml`` binds ``127.0.0.1`` from any working folder; this
  check also covers ``~/.streamlit``, ``STREAMLIT_SERVER_ADDRESS`` and flags).
- Passwords are compared in constant time; wrong ones are throttled per session (a growing
  wait) and across sessions (a cap per minute).
- Download URLs (``/media/<id>``) carry no cookie check in Streamlit: with a password,
  generated downloads are served only to browsers that signed in (their XSRF cookie).
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import ipaddress
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping

ALLOW_REMOTE_ENV = "SEGCORE_ALLOW_REMOTE"
FREE_TRIES = 3  # wrong passwords a session may type before it has to wait
FIRST_WAIT = 5.0  # seconds after the FREE_TRIES-th wrong password, doubling with each more
MAX_WAIT = 300.0  # seconds: the longest wait of one session
GLOBAL_WINDOW = 60.0  # seconds
GLOBAL_MAX_FAILURES = 10  # wrong passwords per GLOBAL_WINDOW, all sessions together


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
    return min(MAX_WAIT, FIRST_WAIT * 2.0 ** (failures - FREE_TRIES))


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


XSRF_COOKIE = "_streamlit_xsrf"  # Streamlit's per-browser cookie (server.enableXsrfProtection)
_SIGNED_IN: set[bytes] = set()  # the XSRF tokens of browsers that typed the password
_SIGNED_IN_LOCK = threading.Lock()
MAX_SIGNED_IN = 10_000


def _browser_token(cookie: object) -> bytes | None:
    """The browser's token inside Streamlit's XSRF cookie (stable across page loads)."""
    if not isinstance(cookie, str) or not cookie:
        return None
    from streamlit.web.server.starlette.starlette_app_utils import decode_xsrf_token_string

    try:
        token, _ = decode_xsrf_token_string(cookie)
    except Exception:  # noqa: BLE001 - a malformed cookie is no token
        return None
    return token if isinstance(token, bytes) and len(token) >= 16 else None


def sign_in_browser(cookie: object) -> bool:
    """Remember that the browser sending ``cookie`` typed the password (False: no cookie)."""
    token = _browser_token(cookie)
    if token is None:
        return False
    with _SIGNED_IN_LOCK:
        if len(_SIGNED_IN) >= MAX_SIGNED_IN:
            _SIGNED_IN.clear()  # bounded memory: everyone signs in again
        _SIGNED_IN.add(token)
    return True


def browser_signed_in(cookie: object) -> bool:
    token = _browser_token(cookie)
    with _SIGNED_IN_LOCK:
        return token is not None and token in _SIGNED_IN


def guard_downloads(storage: object, password_required: bool) -> bool:
    """Serve downloads from Streamlit's media ``storage`` only to signed-in browsers.

    ``st.download_button`` with a callable generates the file on click; the browser then
    fetches ``/media/<id>``, a route that checks no cookie. The storage's ``get_file`` is
    wrapped: when a password is configured, a downloadable file is returned only to a request
    whose XSRF cookie belongs to a browser that signed in (``sign_in_browser``); anyone else
    gets 404. Returns False when the storage is not the in-memory one this was written for:
    the caller then disables downloads instead of serving them unprotected.
    """
    from streamlit.runtime.media_file_storage import MediaFileKind, MediaFileStorageError
    from streamlit.runtime.memory_media_file_storage import (
        MemoryMediaFileStorage,
        get_extension_for_mimetype,
    )

    if not isinstance(storage, MemoryMediaFileStorage):
        return False
    if getattr(storage, "segcore_guarded", False):
        storage.segcore_password_required = password_required  # type: ignore[attr-defined]
        return True
    files = getattr(storage, "_files_by_id", None)
    endpoint = getattr(storage, "_media_endpoint", None)
    if not isinstance(files, dict) or not isinstance(endpoint, str):
        return False

    def get_file(filename: str):  # called by the /media/ route with the request in scope
        file_id = os.path.splitext(filename)[0]
        media = files.get(file_id)
        if media is None:
            raise MediaFileStorageError(f"no media file with id '{file_id}'")
        if media.kind == MediaFileKind.DOWNLOADABLE and storage.segcore_password_required:
            request = sys._getframe(1).f_locals.get("request")
            cookies = getattr(request, "cookies", None)
            if not isinstance(cookies, Mapping) or not browser_signed_in(cookies.get(XSRF_COOKIE)):
                raise MediaFileStorageError(f"no media file with id '{file_id}'")
        return media

    def get_url(file_id: str) -> str:  # the script, right after generating: not a fetch
        media = files.get(file_id)
        if media is None:
            raise MediaFileStorageError(f"no media file with id '{file_id}'")
        return f"{endpoint}/{file_id}{get_extension_for_mimetype(media.mimetype)}"

    storage.segcore_password_required = password_required  # type: ignore[attr-defined]
    storage.get_file = get_file  # type: ignore[attr-defined]
    storage.get_url = get_url  # type: ignore[attr-defined]
    storage.segcore_guarded = True  # type: ignore[attr-defined]
    return True
