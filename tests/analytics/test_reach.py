"""Reachability by channel (docs/analytics.md): hand-made users, the sample store
against a direct Polars computation, and the CLI's JSON keys."""

from __future__ import annotations

import json

import polars as pl
import pytest

from segcore.analytics.reach import reach, reachable_members
from segcore.cli import main
from segcore.errors import NotFoundError

B = {"email_opt_in": True, "sms_opt_in": False, "push_opt_in": False}
USERS = [
    {
        **B,
        "user_id": "u1",
        "country": "US",
        "email": "a@x.com",
        "phone": None,
        "push_token": None,
        "whatsapp_opt_in": None,
    },
    {
        **B,
        "user_id": "u2",
        "country": "US",
        "email": None,
        "phone": "+1 555",
        "sms_opt_in": True,
        "push_token": None,
        "whatsapp_opt_in": True,
    },
    {
        **B,
        "user_id": "u3",
        "country": "US",
        "email": "b@x.com",
        "phone": "+1 666",
        "push_token": "tok",
        "push_opt_in": True,
        "whatsapp_opt_in": None,
    },
    {
        **B,
        "user_id": "u4",
        "country": "US",
        "email": "c@x.com",
        "email_opt_in": False,
        "phone": None,
        "push_token": None,
        "whatsapp_opt_in": False,
    },
    {
        **B,
        "user_id": "u5",
        "country": "DE",
        "email": "d@x.com",
        "phone": "+49 1",
        "push_token": None,
        "whatsapp_opt_in": True,
    },
]


@pytest.fixture
def people(tiny):
    return tiny(events=[("u1", "visit", "2026-06-01T10:00:00")], users=USERS)


def test_counts_shares_and_combinations_by_hand(people):
    out = reach(people, "country = 'US'", as_of="2026-06-30")
    assert out["members"] == 4
    assert out["as_of"] == "2026-07-01T00:00:00Z"
    assert out["channels"] == {
        "email": {"count": 2, "share": 0.5},  # u1, u3 (u2 has no email, u4 opted out)
        "sms": {"count": 1, "share": 0.25},  # u2
        "push": {"count": 1, "share": 0.25},  # u3
        "whatsapp": {"count": 1, "share": 0.25},  # u2 (u3's opt-in is NULL)
    }
    assert (out["any"], out["none"]) == (3, 1)
    assert out["combinations"] == [
        {"channels": [], "count": 1},
        {"channels": ["email"], "count": 1},
        {"channels": ["email", "push"], "count": 1},
        {"channels": ["sms", "whatsapp"], "count": 1},
    ]
    assert people.reach("country = 'US'", as_of="2026-06-30") == out


def test_edited_extended_and_invalid_channels(people):
    people.catalog.set_channel("fax", "fax_number IS NOT NULL")
    people.catalog.set_channel("email", "email IS NOT NULL")
    people.catalog.set_channel("buyers", "did('visit')")
    out = reach(people, "country = 'US'", as_of="2026-06-30")
    assert out["channels"]["email"] == {"count": 3, "share": 0.75}
    assert out["channels"]["fax"]["count"] == 0
    assert "fax_number" in out["channels"]["fax"]["error"]
    assert "attributes only" in out["channels"]["buyers"]["error"]
    assert sum(c["count"] for c in out["combinations"]) == 4
    only = reach(people, "country = 'US'", as_of="2026-06-30", channels=["SMS"])
    assert list(only["channels"]) == ["sms"]
    with pytest.raises(NotFoundError, match="no channel named 'telegram'"):
        reach(people, "country = 'US'", as_of="2026-06-30", channels=["telegram"])


def test_no_members(people):
    out = reach(people, "country = 'FR'", as_of="2026-06-30")
    assert out["members"] == 0 and out["any"] == 0 and out["none"] == 0
    assert out["channels"]["email"] == {"count": 0, "share": 0.0}
    assert out["combinations"] == []


def test_reachable_members_with_contacts(people):
    df = reachable_members(people, "country = 'US'", "email", as_of="2026-06-30")
    assert df.columns == ["user_id", "email"]
    assert df.rows() == [("u1", "a@x.com"), ("u3", "b@x.com")]
    df = reachable_members(
        people, "country = 'US' OR country = 'DE'", "whatsapp", as_of="2026-06-30"
    )
    assert df.rows() == [("u2", "+1 555"), ("u5", "+49 1")]


def test_sample_store_against_polars(sample_store):
    rule = "did('charged', within => '30 days')"
    out = reach(sample_store, rule, as_of="2026-06-30")
    ids = sample_store.members(rule, as_of="2026-06-30")
    users = sample_store.scan_users().collect().join(ids, on="user_id", how="semi")
    expect = {
        "email": (pl.col("email").is_not_null() & pl.col("email_opt_in")),
        "sms": (pl.col("phone").is_not_null() & pl.col("sms_opt_in")),
        "push": (pl.col("push_token").is_not_null() & pl.col("push_opt_in")),
        "whatsapp": (pl.col("phone").is_not_null() & pl.col("whatsapp_opt_in")),
    }
    flags = users.select([e.fill_null(False).alias(k) for k, e in expect.items()])
    assert out["members"] == ids.height > 0
    for k in expect:
        assert out["channels"][k]["count"] == flags[k].sum()
        assert out["channels"][k]["share"] == pytest.approx(flags[k].sum() / ids.height)
    assert out["any"] == flags.select(pl.any_horizontal(pl.all())).to_series().sum()
    assert out["any"] + out["none"] == out["members"]
    assert sum(c["count"] for c in out["combinations"]) == out["members"]
    counts = [c["count"] for c in out["combinations"]]
    assert counts == sorted(counts, reverse=True)
    email_only = flags.filter(
        pl.col("email") & ~pl.col("sms") & ~pl.col("push") & ~pl.col("whatsapp")
    ).height
    assert {"channels": ["email"], "count": email_only} in out["combinations"]


def test_cli_reach_json(people, capsys):
    code = main(
        [
            "reach",
            "--home",
            str(people.home),
            "--rule",
            "country = 'US'",
            "--as-of",
            "2026-06-30",
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"members", "channels", "any", "none", "combinations"}
    assert out["channels"]["sms"] == {"count": 1, "share": 0.25}
    code = main(
        [
            "reach",
            "--home",
            str(people.home),
            "--rule",
            "country = 'US'",
            "--as-of",
            "2026-06-30",
            "--channel",
            "email",
            "--json",
        ]
    )
    assert json.loads(capsys.readouterr().out)["members"] == [
        {"user_id": "u1", "email": "a@x.com"},
        {"user_id": "u3", "email": "b@x.com"},
    ]
    assert main(["reach", "--home", str(people.home), "--rule", "nosuch = 1"]) == 2
    assert "nosuch" in capsys.readouterr().err
