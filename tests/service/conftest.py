"""Fixtures of the service tests: a real uvicorn server on a free loopback port (in a
thread, stopped at the end of the test), tokens, and helpers to ingest and to evaluate
afresh."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
import uvicorn

from segcore import Store
from segcore.cli import main as cli_main
from segcore.cli.service import uvicorn_options
from segcore.ingest import ingest
from segcore.query import MembersQuery, Target, members_actors
from segcore.segments import create_segment
from segcore.service.app import create_app
from segcore.store.tokens import Tokens

NOW = "2026-06-30T12:00:00Z"  # the service's fixed "now" in most tests
RULE = "did('charged', within => '7 days') AND NOT did('form_submitted', within => '7 days')"


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclasses.dataclass
class Served:
    """A running service: its URL, a read client, an admin client, the app's state."""

    url: str
    read: httpx.Client
    admin: httpx.Client
    anonymous: httpx.Client
    service: Any
    home: Path


@contextlib.contextmanager
def serve(home: Path, **options: Any) -> Iterator[Served]:
    """Run ``create_app(home, **options)`` on uvicorn in a thread until the block ends."""
    tokens = Tokens(Path(home) / "catalog.sqlite")
    stamp = time.monotonic_ns()
    read, admin = tokens.create(f"reader{stamp}"), tokens.create(f"admin{stamp}", "admin")
    app = create_app(home, **options)
    sock = free_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", **uvicorn_options()))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    clients = [httpx.Client(base_url=url, timeout=60, headers=h) for h in (
        {"Authorization": f"Bearer {read}"}, {"Authorization": f"Bearer {admin}"}, {})]
    try:
        yield Served(url, *clients, app.state.service, Path(home))
    finally:
        for c in clients:
            c.close()
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture
def served_store(writable_sample) -> Iterator[Served]:
    """The sample store with the saved segment "Buyers" (RULE), served at NOW."""
    create_segment(writable_sample, "Buyers", RULE)
    with serve(writable_sample.home, now=NOW) as s:
        yield s


def fresh_members(home: Path, as_of: str, *, segment: str | None = None,
                  rule: str | None = None) -> list[str]:
    """Members evaluated afresh (a new store object, no caches) at ``as_of``."""
    store = Store(home, cache_events=False)
    q = MembersQuery(Target(rule=rule, segment=segment), as_of)
    return members_actors(store, q)["user_id"].to_list()


def ingest_events(home: Path, rows: list[tuple[str, str, str]], tmp: Path, *,
                  hook: bool = True) -> None:
    """Import ``(user_id, event, ts)`` rows with ``segcore ingest events`` (whose hook
    refreshes the service's memberships), or without the hook (the Python API)."""
    path = tmp / f"batch-{time.monotonic_ns()}.csv"
    pl.DataFrame(rows, schema=["user_id", "event", "ts"], orient="row").write_csv(path)
    if hook:
        assert cli_main(["ingest", "events", str(path), "--home", str(home)]) == 0
    else:
        ingest(Store(home), "events", [path])


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def sync(client: httpx.Client, segment: str, members: set[str], cursor: str | None,
         limit: int = 50, check: Callable[[dict], None] | None = None
         ) -> tuple[set[str], str, dict]:
    """Poll the change feed until it has no more pages; apply each page to ``members``
    (asserting no member twice and no missed leave). The new set, cursor, last page."""
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        r = client.get(f"/v1/segments/{segment}/changes", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        entered, left = set(page["entered"]), set(page["left"])
        assert not entered & members, "a member was sent twice"
        assert left <= members, "a leave of a non-member"
        members = (members | entered) - left
        cursor = page["cursor"]
        if check is not None:
            check(page)
        if not page["more"]:
            return members, cursor, page
