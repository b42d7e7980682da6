"""The membership service over real HTTP: answers equal the query runners at the
reported instant, auth and scopes, paging and streaming, errors and limits."""

from __future__ import annotations

import io
import json

import polars as pl
import pytest

from segcore import Store
from segcore.errors import RuleError
from segcore.query import ReachQuery, Target, UserQuery, reach_actors, user_segments
from segcore.segments import create_segment
from segcore.service.limits import Limits
from tests.service.conftest import NOW, RULE, fresh_members, serve


def test_health_needs_no_token_and_carries_versions(served_store):
    r = served_store.anonymous.get("/v1/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["as_of"] == NOW
    assert body["data_version"] == Store(served_store.home).data_version()


def test_count_and_members_equal_a_fresh_evaluation(served_store):
    expected = fresh_members(served_store.home, NOW, rule=RULE)
    assert len(expected) > 20  # the fixture has members to page through
    r = served_store.read.get("/v1/segments/Buyers/count")
    assert r.status_code == 200
    assert r.json()["members"] == len(expected)
    assert r.json()["as_of"] == NOW
    assert r.headers["X-Segcore-As-Of"] == NOW
    # pages of 7, keyset paging, one snapshot: every member once, in order
    got, after, snapshot = [], None, None
    while True:
        params = {"limit": 7} | ({"after": after, "snapshot": snapshot} if after else {})
        page = served_store.read.get("/v1/segments/Buyers/members", params=params).json()
        assert len(page["members"]) <= 7
        got += page["members"]
        snapshot = page["snapshot"]
        if not page["more"]:
            break
        after = page["after"]
    assert got == expected


def test_members_at_an_instant(served_store):
    as_of = "2026-06-20"
    page = served_store.read.get("/v1/segments/Buyers/members",
                                 params={"as_of": as_of, "limit": 10000}).json()
    assert page["as_of"] == "2026-06-21T00:00:00Z"
    assert page["members"] == fresh_members(served_store.home, as_of, segment="Buyers")


def test_streams_jsonl_and_csv(served_store):
    expected = fresh_members(served_store.home, NOW, rule=RULE)
    r = served_store.read.get("/v1/segments/Buyers/members", params={"format": "jsonl"})
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(line)["user_id"] for line in r.text.splitlines()] == expected
    r = served_store.read.get("/v1/segments/Buyers/members", params={"format": "csv"})
    assert pl.read_csv(io.StringIO(r.text))["user_id"].to_list() == expected
    assert r.headers["X-Segcore-Data-Version"] == Store(served_store.home).data_version()


def test_reachable_members_with_contact_column(served_store):
    store = Store(served_store.home)
    expected = reach_actors(store, ReachQuery(Target(segment="Buyers"), NOW), "email")
    page = served_store.read.get("/v1/segments/Buyers/members",
                                 params={"channel": "email", "limit": 10000}).json()
    assert page["members"] == expected.to_dicts()
    assert set(page["members"][0]) == {"user_id", "email"}


def test_user_segments_one_and_batch(served_store, writable_sample):
    create_segment(writable_sample, "US", "country = 'US'")
    store = Store(served_store.home)
    buyers = fresh_members(served_store.home, NOW, segment="Buyers")
    us = fresh_members(served_store.home, NOW, segment="US")
    ids = [*buyers[:2], *us[:2], *sorted(set(buyers) & set(us))[:1], "u000500", "nobody"]
    expected = {u: user_segments(store, UserQuery(u, NOW)) for u in ids}
    assert ["Buyers", "US"] in expected.values()  # someone is in both
    for u in ids:
        body = served_store.read.get(f"/v1/users/{u}/segments").json()
        assert body["segments"] == expected[u]
        assert body["as_of"] == NOW
    body = served_store.read.post("/v1/users/segments", json={"user_ids": ids}).json()
    assert body["users"] == expected
    past = {u: user_segments(store, UserQuery(u, "2026-06-01")) for u in ids}
    body = served_store.read.post("/v1/users/segments",
                                  json={"user_ids": ids, "as_of": "2026-06-01"}).json()
    assert body["users"] == past


def test_adhoc_count_and_evaluate(served_store):
    rule = "country = 'US' AND did('charged', within => '30 days')"
    expected = fresh_members(served_store.home, NOW, rule=rule)
    r = served_store.read.post("/v1/count", json={"rule": rule})
    assert r.json()["members"] == len(expected)
    body = served_store.read.post("/v1/evaluate", json={"rule": rule, "limit": 5}).json()
    assert body["count"] == len(expected)
    assert body["members"] == expected[:5]
    assert body["truncated"] is (len(expected) > 5)


def test_entered_and_left_since_an_instant(served_store):
    then, now = (set(fresh_members(served_store.home, t, rule=RULE))
                 for t in ("2026-06-25", NOW))
    body = served_store.read.get("/v1/segments/Buyers/changes",
                                 params={"since": "2026-06-25"}).json()
    assert set(body["entered"]) == now - then
    assert set(body["left"]) == then - now
    assert body["entered"] and body["left"]


def test_auth_and_scopes(served_store):
    r = served_store.anonymous.get("/v1/segments/Buyers/count")
    assert r.status_code == 401
    assert r.json()["error"].startswith("missing bearer token")
    r = served_store.anonymous.get("/v1/segments", headers={"Authorization": "Bearer sgc_nope"})
    assert r.status_code == 401 and r.json()["error"] == "unknown or revoked token"
    r = served_store.read.get("/v1/tokens")
    assert r.status_code == 403
    r = served_store.admin.get("/v1/tokens")
    assert r.status_code == 200
    assert {t["scope"] for t in r.json()["tokens"]} == {"read", "admin"}
    assert all("token" not in t and "hash" not in t for t in r.json()["tokens"])
    # revoked: refused on the next request
    name = next(t["name"] for t in r.json()["tokens"] if t["scope"] == "read")
    served_store.service.tokens.revoke(name)
    assert served_store.read.get("/v1/segments").status_code == 401


def test_errors_are_json_with_the_cli_messages(served_store):
    store = Store(served_store.home)
    with pytest.raises(RuleError) as exc:
        fresh_members(served_store.home, NOW, rule="did('chargd')")
    r = served_store.read.post("/v1/evaluate", json={"rule": "did('chargd')"})
    assert r.status_code == 400
    assert r.json() == {"error": str(exc.value), "type": "RuleError"}
    assert "did you mean 'charged'" in r.json()["error"]
    r = served_store.read.get("/v1/segments/Nope/count")
    assert r.status_code == 404 and r.json()["error"] == "no segment named 'Nope'"
    r = served_store.read.get("/v1/segments/Buyers/count", params={"as_of": "yesterday"})
    assert r.status_code == 400 and r.json()["type"] == "UsageError"
    assert r.json()["error"].startswith("bad as-of 'yesterday'")
    r = served_store.read.get("/v1/segments/Buyers/changes", params={"cursor": "x.1"})
    assert r.status_code == 400 and "another log" in r.json()["error"]
    r = served_store.read.post("/v1/users/segments", json={"ids": []})
    assert r.status_code == 422 and r.json()["error"].startswith("bad request: user_ids")
    assert store.data_version() == r.headers.get("X-Segcore-Data-Version", store.data_version())


def test_limits(writable_sample):
    create_segment(writable_sample, "Buyers", RULE)
    limits = Limits(rate=0.1, burst=6, max_body=2000, max_batch=3, max_page=50,
                    eval_seconds=0.001, limit_loopback=True)
    with serve(writable_sample.home, now=NOW, limits=limits) as s:
        r = s.read.post("/v1/users/segments", json={"user_ids": ["a", "b", "c", "d"]})
        assert r.status_code == 400 and "at most 3 user ids" in r.json()["error"]
        r = s.read.post("/v1/evaluate", content=json.dumps({"rule": "x" * 3000}),
                        headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["error"] == "request body larger than 2000 bytes"
        r = s.read.get("/v1/segments/Buyers/members", params={"limit": 51})
        assert r.status_code == 400
        r = s.read.post("/v1/evaluate", json={"rule": "did('charged', at_least => 3)"})
        assert r.status_code == 503 and "took longer than" in r.json()["error"], r.json()
        codes = [s.read.get("/v1/segments").status_code for _ in range(8)]
        assert 429 in codes
        r = s.read.get("/v1/segments")
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert r.json()["error"].startswith("too many requests")
