"""Faults: a SIGKILL of an import mid-write or of the server mid-evaluation loses
nothing; the restarted server answers at the old or the new version, never a mix, and a
syncing client's set stays equal to a fresh evaluation."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import polars as pl

from segcore import Store
from segcore.segments import create_segment
from segcore.service.state import DB, DIR
from segcore.store.files import TMP_PREFIX
from segcore.store.tokens import Tokens
from tests.service.conftest import NOW, RULE, free_socket, fresh_members, ingest_events, sync

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def start(home: Path) -> tuple[subprocess.Popen, str]:
    """``segcore serve`` in a subprocess on a free port; waits for its health answer."""
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    proc = subprocess.Popen([sys.executable, "-m", "segcore", "serve", "--home", str(home),
                             "--port", str(port), "--now", NOW], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            if httpx.get(url + "/v1/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("the server did not start")


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def events(home: Path) -> int:
    return Store(home).scan_events().select(pl.len()).collect().item()


def log_alternates(home: Path) -> None:
    """In the log, each user's changes alternate +, -, +, ... (never twice in a row)."""
    con = sqlite3.connect(home / DIR / DB)
    rows = con.execute("SELECT user_id, change FROM changes ORDER BY seq").fetchall()
    con.close()
    last: dict[str, str] = {}
    for uid, change in rows:  # ok-loop: a test check over the log
        assert last.get(uid, "-") != change, f"{uid} got {change} twice in a row"
        last[uid] = change


def test_sigkill_of_an_import_and_of_the_server(writable_sample, tmp_path):
    home = writable_sample.home
    create_segment(writable_sample, "Buyers", RULE)
    token = Tokens(home / "catalog.sqlite").create("faults")
    auth = {"Authorization": f"Bearer {token}"}
    proc, url = start(home)
    try:
        client = httpx.Client(base_url=url, headers=auth, timeout=60)
        members, cursor, page = sync(client, "Buyers", set(), None)
        v0, n0 = page["data_version"], events(home)

        # 1. an import killed while it writes its file: the store stays at v0
        users = Store(home).scan_users().select("user_id").collect()["user_id"]
        big = pl.DataFrame({"user_id": users.sample(400_000, with_replacement=True, seed=1),
                            "event": "charged", "ts": "2026-06-30T09:00:00Z"})
        big.write_csv(tmp_path / "big.csv")
        imp = subprocess.Popen([sys.executable, "-m", "segcore", "ingest", "events",
                                str(tmp_path / "big.csv"), "--home", str(home)], env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        answers: list[tuple[str, int]] = []
        writing = False
        deadline = time.monotonic() + 240
        while imp.poll() is None and time.monotonic() < deadline:
            r = client.get("/v1/segments/Buyers/count").json()
            answers.append((r["data_version"], r["members"]))
            if any(p.name.startswith(TMP_PREFIX) for p in (home / "events").iterdir()):
                writing = True
                kill(imp)
                break
        assert writing, "the import ended before it could be killed mid-write"
        assert events(home) == n0 and Store(home).data_version() == v0
        assert {v for v, _ in answers} == {v0}
        r = client.get("/v1/segments/Buyers/count").json()
        assert (r["data_version"], r["members"]) == (v0, len(members))

        # 2. an import that lands (without the refresh hook), then the server killed
        # while it evaluates the new version
        outsiders = [u for u in fresh_members(home, NOW, rule="NOT did('form_submitted', "
                                              "within => '7 days')") if u not in members][:6]
        ingest_events(home, [(u, "charged", "2026-06-30T10:00:00Z") for u in outsiders],
                      tmp_path, hook=False)
        v1 = Store(home).data_version()

        def poll() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the server dies under it
                httpx.get(url + "/v1/segments/Buyers/changes", headers=auth, timeout=60)

        threading.Thread(target=poll, daemon=True).start()
        time.sleep(0.3)
        kill(proc)
        proc, url = start(home)
        client.close()
        client = httpx.Client(base_url=url, headers=auth, timeout=60)
        members, cursor, page = sync(client, "Buyers", members, cursor)
        assert page["data_version"] == v1
        assert members == set(fresh_members(home, NOW, segment="Buyers"))
        assert set(outsiders) <= members
        again, _, _ = sync(client, "Buyers", set(), None, limit=9)
        assert again == members
        log_alternates(home)
        client.close()
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
