"""Compare segments over time, top values with counts, user search and pasted ids
(issue 19): hand-computed values on a tiny store."""

from __future__ import annotations

import pytest

from segcore.errors import RuleError, UsageError
from segcore.query import CompareQuery, DateRange, UserSearchQuery, ValuesQuery, run
from segcore.segments import create_segment, parse_pasted_ids

USERS = [
    {"user_id": "a", "name": "Ann Lee", "email": "ann@x.com", "country": "US", "tags": ["v", "w"]},
    {"user_id": "b", "name": "Bo Lee", "email": None, "country": "US", "tags": ["v"]},
    {"user_id": "c", "name": "Cy Ng", "email": "cy@lee.org", "country": "DE", "tags": []},
]
EVENTS = [
    ("a", "buy", "2026-06-01T10:00:00", {"product": "pen"}),
    ("b", "buy", "2026-06-02T10:00:00", {"product": "pen"}),
    ("d", "buy", "2026-06-02T12:00:00", {"product": "ink"}),  # d: events only
    ("a", "view", "2026-06-03T10:00:00", {"product": "cup"}),
]


@pytest.fixture
def shop(tiny):
    store = tiny(events=EVENTS, users=USERS)
    create_segment(store, "buyers", "did('buy')")
    create_segment(store, "US", "country = 'US'")
    return store


def test_compare_sizes_entries_and_shares_per_day(shop):
    rows = run(shop, CompareQuery(("buyers", "US"), DateRange.of("2026-06-01", "2026-06-03"))).rows
    got = {(r["segment"], r["date"].isoformat()): (r["members"], r["entered"], r["exited"],
                                                    r["all_users"], r["share"])
           for r in rows.iter_rows(named=True)}
    # all users: a, b, c from the users table, d from its first event on 06-02
    assert got[("buyers", "2026-06-01")] == (1, 1, 0, 3, pytest.approx(1 / 3))
    assert got[("buyers", "2026-06-02")] == (3, 2, 0, 4, pytest.approx(3 / 4))
    assert got[("buyers", "2026-06-03")] == (3, 0, 0, 4, pytest.approx(3 / 4))
    assert got[("US", "2026-06-01")] == (2, 0, 0, 3, pytest.approx(2 / 3))
    assert rows.height == 6
    with pytest.raises(UsageError):
        CompareQuery((), DateRange.of("2026-06-01", "2026-06-03"))


def test_top_values_of_attributes_properties_and_lists(shop):
    assert run(shop, ValuesQuery("country")).rows.rows() == [("US", 2), ("DE", 1)]
    assert run(shop, ValuesQuery("tags")).rows.rows() == [("v", 2), ("w", 1)]
    assert run(shop, ValuesQuery("product", event="buy", top=1)).rows.rows() == [("pen", 2)]
    with pytest.raises(UsageError, match="unknown user attribute 'nope'"):
        run(shop, ValuesQuery("nope"))


def test_user_search_by_id_email_or_name(shop):
    def found(text: str) -> list[str]:
        return run(shop, UserSearchQuery(text)).rows["user_id"].to_list()

    assert found("lee") == ["a", "b", "c"]  # names Lee, and cy@lee.org
    assert found("ANN@") == ["a"]
    assert found("b") == ["b"]  # the exact id (no name or email has a "b")
    assert found("zz") == []


def test_pasted_ids_with_commas_lines_and_blanks():
    ids, report = parse_pasted_ids("u1, u2\n\nu3,,u1\n 007 ")
    assert ids == ["u1", "u2", "u3", "007"]
    assert (report["rows"], report["members"], report["duplicates"], report["blanks"]) == (
        5, 4, 1, 2)
    ids, report = parse_pasted_ids("user_id,score\nx,1\ny,2\n")
    assert ids == ["x", "y"] and report["header"] == "user_id"


def test_channel_rules_refuse_events_and_bare_words_get_a_quote_hint(shop):
    from segcore.analytics.reach import check_channel

    with pytest.raises(RuleError, match="user attributes only, not events"):
        check_channel(shop, "did('buy')")
    with pytest.raises(RuleError, match="quote it: 'DE'"):
        shop.parse("country = DE")
