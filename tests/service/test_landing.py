"""While an import lands, a request is answered at once from the last complete view (never
waiting for an evaluation or its lock), moves to the new version as soon as the import's
refresh has logged it, and loopback clients are not rate-limited unless configured.
An idle connection outlives a client's keep-alive. Real uvicorn servers on loopback
ports (with ``segcore serve``'s options); every wait is bounded."""

from __future__ import annotations

import http.client
import threading
import time

import httpx

from segcore import Store
from segcore.segments import create_segment
from segcore.service.limits import Limits
from segcore.service.memberships import Memberships
from tests.service.conftest import NOW, RULE, fresh_members, ingest_events, serve

WAIT_S = 60.0  # bound of every wait in these tests (never reached when they pass)
HTTPX_KEEP_ALIVE_S = 5.0  # how long httpx keeps an idle connection (its default)


def test_requests_never_wait_for_a_materialization_while_an_import_lands(
        writable_sample, tmp_path):
    home = writable_sample.home
    create_segment(writable_sample, "Buyers", RULE)
    create_segment(writable_sample, "Quiet", "NOT did('form_submitted', within => '7 days')")
    with serve(home, now=NOW) as s:
        first = s.read.get("/v1/segments/Buyers/count").json()
        v0 = first["data_version"]
        outsider = next(u for u in fresh_members(home, NOW, segment="Quiet")
                        if u not in fresh_members(home, NOW, segment="Buyers"))

        # the server's own materialization of the new version is slow (held here)
        mem = s.service.memberships
        evaluate, entered, release = mem._evaluate, threading.Event(), threading.Event()

        def slow(*args, **kwargs):
            entered.set()
            release.wait(WAIT_S)
            return evaluate(*args, **kwargs)

        mem._evaluate = slow
        try:
            ingest_events(home, [(outsider, "charged", "2026-06-30T11:00:00Z")], tmp_path,
                          hook=False)
            v1 = Store(home).data_version()
            assert s.read.get("/v1/segments/Buyers/count").json()["data_version"] == v0
            assert entered.wait(WAIT_S), "the server did not start materializing v1"

            # the import's refresh (another Memberships, as in `segcore ingest`) has
            # stored Buyers at v1 but not logged it yet: a request must not wait for the
            # server's thread, which holds that snapshot's lock while it evaluates
            other = Memberships.from_settings(Store(home))
            segs = {seg.name: seg for seg in other.segments()}
            other.snapshot(segs["Buyers"], other.now(), log=False)
            fast = httpx.Client(base_url=s.url, headers=dict(s.read.headers), timeout=10)
            for path in ("/v1/segments/Buyers/count", f"/v1/users/{outsider}/segments"):
                r = fast.get(path)
                assert r.status_code == 200, r.text
                assert r.json()["data_version"] == v0
            assert fast.get("/v1/segments/Buyers/count").json()["members"] == first["members"]

            # the refresh logs every segment at v1: answers move there, although the
            # server's own thread is still held
            other.refresh()
            answers = []
            deadline = time.monotonic() + WAIT_S
            while time.monotonic() < deadline:
                body = fast.get("/v1/segments/Buyers/count").json()
                answers.append((body["data_version"], body["members"]))
                if body["data_version"] == v1:
                    break
                time.sleep(0.05)
            assert not release.is_set()
            assert answers[-1] == (v1, first["members"] + 1)
            assert set(answers) <= {(v0, first["members"]), answers[-1]}
            body = fast.get(f"/v1/users/{outsider}/segments").json()
            assert (body["data_version"], body["segments"]) == (v1, ["Buyers", "Quiet"])
            fast.close()
        finally:
            release.set()
        # once the server's thread ends, the view stays at v1 (never back to v0)
        for _ in range(5):
            body = s.read.get("/v1/segments/Buyers/count").json()
            assert (body["data_version"], body["members"]) == (v1, first["members"] + 1)
        assert body["members"] == len(fresh_members(home, NOW, segment="Buyers"))


def test_loopback_clients_are_not_rate_limited_unless_configured(writable_sample):
    create_segment(writable_sample, "Buyers", RULE)
    with serve(writable_sample.home, now=NOW, limits=Limits(rate=0.1, burst=2)) as s:
        codes = [s.read.get("/v1/segments/Buyers/count").status_code for _ in range(12)]
        assert codes == [200] * 12
        r = s.anonymous.get("/v1/segments", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401  # failed tokens are still limited per address
    limits = Limits(rate=0.1, burst=2, limit_loopback=True)
    with serve(writable_sample.home, now=NOW, limits=limits) as s:
        codes = [s.read.get("/v1/segments/Buyers/count").status_code for _ in range(6)]
        assert codes[:2] == [200, 200] and set(codes[2:]) == {429}


def test_the_server_waits_for_the_imports_refresh_instead_of_evaluating(
        writable_sample, tmp_path):
    home = writable_sample.home
    create_segment(writable_sample, "Buyers", RULE)
    with serve(home, now=NOW) as s:
        first = s.read.get("/v1/segments/Buyers/count").json()
        mem = s.service.memberships
        calls: list[object] = []

        def counted(*args, **kwargs):
            calls.append(args)
            return None  # as if the store changed: never registered

        mem._evaluate = counted
        ingest_events(home, [("u000003", "charged", "2026-06-30T11:00:00Z")], tmp_path,
                      hook=False)
        v1 = Store(home).data_version()
        # an import's refresh of v1 runs in a live process (this one)
        with mem.state.refreshing_as(v1):
            assert s.read.get("/v1/segments/Buyers/count").json()["data_version"] == \
                first["data_version"]
            time.sleep(1.0)  # the server's thread polls the log meanwhile
            Memberships.from_settings(Store(home)).refresh()
            deadline = time.monotonic() + WAIT_S
            while time.monotonic() < deadline:
                body = s.read.get("/v1/segments/Buyers/count").json()
                if body["data_version"] == v1:
                    break
                time.sleep(0.05)
        assert body["data_version"] == v1
        assert body["members"] == len(fresh_members(home, NOW, segment="Buyers"))
        assert calls == []  # the server evaluated nothing itself
        assert mem.state.refreshing() is None


def test_an_idle_connection_outlives_a_clients_keep_alive(served_store):
    """The server keeps an idle connection open longer than clients keep theirs (httpx:
    5 s, which was also uvicorn's default): the next request on it is answered, on the
    same connection, instead of being cut ("Server disconnected without sending a
    response", the load run's errors)."""
    host, port = served_store.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=WAIT_S)
    try:
        conn.request("GET", "/v1/health")
        first = conn.getresponse()
        first.read()
        assert first.status == 200
        sock = conn.sock
        time.sleep(HTTPX_KEEP_ALIVE_S + 1.0)
        conn.request("GET", "/v1/health")
        again = conn.getresponse()
        again.read()
        assert again.status == 200 and conn.sock is sock
    finally:
        conn.close()
