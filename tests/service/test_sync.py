"""The sync protocol: a client polling with a cursor gets every change once, across
imports (one landing while it polls) and the clock passing minutes and days; every
answer equals a fresh evaluation at the version and instant it reports."""

from __future__ import annotations

import datetime as dt
import threading
import time

from segcore import Store
from segcore.segments import create_segment
from tests.service.conftest import NOW, RULE, at, fresh_members, ingest_events, serve, sync

START = at("2026-06-30T12:00:30Z")


class Clock:
    def __init__(self, t: dt.datetime):
        self.t = t

    def __call__(self) -> float:
        return self.t.timestamp()


def test_sync_across_imports_and_time(writable_sample, tmp_path):
    home = writable_sample.home
    create_segment(writable_sample, "Buyers", RULE)
    clock = Clock(START)
    with serve(home, tick=60, clock=clock, background=False) as s:
        def check(page: dict) -> None:
            assert page["data_version"] == Store(home).data_version()

        members, cursor, page = sync(s.read, "Buyers", set(), None, limit=13, check=check)
        assert page["as_of"] == "2026-06-30T12:00:00Z"
        assert members == set(fresh_members(home, page["as_of"], segment="Buyers"))
        v0, before = page["data_version"], set(members)

        # an import: 4 enter (a purchase), 4 leave (a form), 1 enters only a bit later
        no_forms = fresh_members(home, "2026-06-30T12:01:00Z",
                                 rule="NOT did('form_submitted', within => '7 days')")
        outsiders = [u for u in no_forms if u not in members][:5]
        leavers = sorted(members)[:4]
        rows = [(u, "charged", "2026-06-30T11:00:00Z") for u in outsiders[:4]]
        rows += [(u, "form_submitted", "2026-06-30T11:30:00Z") for u in leavers]
        rows.append((outsiders[4], "charged", "2026-06-30T12:00:10Z"))
        ingest_events(home, rows, tmp_path, hook=False)  # its clock is not the test's
        members, cursor, page = sync(s.read, "Buyers", members, cursor, limit=3, check=check)
        assert page["data_version"] != v0
        assert members == before - set(leavers) | set(outsiders[:4])
        assert members == set(fresh_members(home, page["as_of"], segment="Buyers"))

        # the same data, a minute later: the purchase at 12:00:10 now counts
        clock.t += dt.timedelta(minutes=1)
        members, cursor, page = sync(s.read, "Buyers", members, cursor, check=check)
        assert page["as_of"] == "2026-06-30T12:01:00Z"
        assert outsiders[4] in members
        assert members == set(fresh_members(home, page["as_of"], segment="Buyers"))

        # eight days later (past several midnights): the 7-day window has slid past all
        clock.t += dt.timedelta(days=8)
        members, cursor, page = sync(s.read, "Buyers", members, cursor, check=check)
        assert members == set(fresh_members(home, page["as_of"], segment="Buyers")) == set()

        # since a data version: the changes from v0's last head to now
        body = s.read.get("/v1/segments/Buyers/changes",
                          params={"since_version": v0, "limit": 10000}).json()
        assert body["left"] == sorted(before)  # net: who entered after v0 and left is out
        assert body["entered"] == []
        # a new client from scratch gets the same set, each member once
        again, _, _ = sync(s.read, "Buyers", set(), None, limit=7)
        assert again == members
        # the last sync is recorded per token
        syncs = s.admin.get("/v1/tokens").json()["syncs"]
        assert {x["segment"] for x in syncs} == {"Buyers"}


def test_sync_while_imports_land(writable_sample, tmp_path):
    """Polls race with 4 imports: each answer equals the evaluation at its version."""
    home = writable_sample.home
    create_segment(writable_sample, "Buyers", RULE)
    now = "2026-06-30T12:00:00Z"
    expected = {Store(home).data_version(): set(fresh_members(home, now, segment="Buyers"))}
    users = Store(home).scan_users().select("user_id").collect()["user_id"].to_list()
    with serve(home, now=now) as s:
        done = threading.Event()
        failures: list[BaseException] = []

        def importer() -> None:
            try:
                for k in range(4):  # ok-loop: 4 imports
                    batch = users[k * 40:(k + 1) * 40]
                    rows = [(u, "charged" if i % 2 else "form_submitted",
                             "2026-06-30T10:00:00Z") for i, u in enumerate(batch)]
                    ingest_events(home, rows, tmp_path)
                    expected[Store(home).data_version()] = set(
                        fresh_members(home, now, segment="Buyers"))
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)
            finally:
                done.set()

        thread = threading.Thread(target=importer)
        thread.start()
        members, cursor, seen = set(), None, []
        settle = time.monotonic() + 60
        while True:
            finished = done.is_set()
            members, cursor, page = sync(s.read, "Buyers", members, cursor, limit=17)
            seen.append((page["data_version"], frozenset(members)))
            r = s.read.get("/v1/segments/Buyers/members", params={"limit": 10000}).json()
            seen.append((r["data_version"], frozenset(r["members"])))
            if finished and (seen[-1][0] == Store(home).data_version()
                             or time.monotonic() > settle):
                break  # the last import is served (or the bound below fails the test)
            if not finished:
                settle = time.monotonic() + 60  # the server serves the last complete set
        thread.join(timeout=300)
        assert not failures
        assert len(expected) == 5
        for version, got in seen:
            assert got == expected[version]
        assert seen[-1][0] == Store(home).data_version()


def test_an_import_refreshes_the_memberships(served_store, tmp_path, monkeypatch):
    """After `segcore ingest`, the new version is already materialized and logged:
    the next lookups are reads (no evaluation)."""
    home = served_store.home
    members, cursor, _ = sync(served_store.read, "Buyers", set(), None)
    ingest_events(home, [("u000003", "charged", "2026-06-30T11:00:00Z")], tmp_path)
    mem = served_store.service.memberships

    def no_evaluation(*args, **kwargs):
        raise AssertionError("evaluated instead of read")

    monkeypatch.setattr(mem, "_evaluate", no_evaluation)
    members, cursor, page = sync(served_store.read, "Buyers", members, cursor)
    assert page["data_version"] == Store(home).data_version()
    assert members == set(fresh_members(home, page["as_of"], segment="Buyers"))
    r = served_store.read.get("/v1/users/u000003/segments").json()
    assert r["segments"] == (["Buyers"] if "u000003" in members else [])


def test_the_server_answers_from_the_old_view_until_the_new_is_ready(served_store, tmp_path):
    """In the server's background mode, a new data version is materialized by a thread:
    answers stay at the old version until every segment is ready at the new one, then
    all move; never a mix, never a wait for the evaluation."""
    home = served_store.home
    first = served_store.read.get("/v1/segments/Buyers/count").json()
    outsider = next(u for u in fresh_members(home, NOW, rule="NOT did('form_submitted', "
                                             "within => '7 days')")
                    if u not in fresh_members(home, NOW, segment="Buyers"))
    ingest_events(home, [(outsider, "charged", "2026-06-30T11:00:00Z")], tmp_path,
                  hook=False)
    v1 = Store(home).data_version()
    answers = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        r = served_store.read.get("/v1/segments/Buyers/count").json()
        answers.append((r["data_version"], r["members"]))
        if r["data_version"] == v1:
            break
        time.sleep(0.05)
    assert answers[0] == (first["data_version"], first["members"])
    assert answers[-1] == (v1, first["members"] + 1)
    assert set(answers) == {answers[0], answers[-1]}
    body = served_store.read.get(f"/v1/users/{outsider}/segments").json()
    assert (body["data_version"], body["segments"]) == (v1, ["Buyers"])
