"""Query objects and runners (segcore.query): validation, JSON, hashing, and every runner
against the analytic function it calls and against hand-computed numbers."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from segcore.analytics.engagement import engagement
from segcore.analytics.event_report import event_report
from segcore.analytics.funnel import funnel, funnel_dropoffs, funnel_over_time
from segcore.analytics.overlap import overlap
from segcore.analytics.profile import profile
from segcore.analytics.reach import reach, reachable_members
from segcore.analytics.trend import trend
from segcore.cli import main
from segcore.engine.polars.evaluate import members
from segcore.errors import NotFoundError, RuleError, UsageError
from segcore.lang import durations
from segcore.query import (
    DateRange,
    EngagementQuery,
    EngagementTrendQuery,
    EventQuery,
    Exclusion,
    FunnelQuery,
    FunnelTrendQuery,
    MembersQuery,
    OverlapQuery,
    Period,
    ProfileQuery,
    ReachQuery,
    SqlQuery,
    Step,
    Target,
    TrendQuery,
    UserQuery,
    funnel_actors,
    members_actors,
    query_from_json,
    reach_actors,
    run,
    run_events,
    run_funnel,
    run_funnel_trend,
    run_members,
    run_overlap,
    run_profile,
    run_reach,
    run_trend,
    save_funnel,
    saved_funnel,
    trend_actors,
)
from tests.conftest import AS_OF, T

RULE = "did('charged', within => '30 days')"
JUNE = DateRange.of("2026-06-01", "2026-06-30")
STEPS = ("product_viewed", "added_to_cart", "charged")

EXAMPLES = [
    MembersQuery(Target(rule=RULE), AS_OF, share_of_all=True),
    SqlQuery(Target(segment="s"), AS_OF, "spark"),
    UserQuery("u000042", AS_OF, 5),
    TrendQuery(Target(rule=RULE), JUNE, "week"),
    ReachQuery(Target(segment="s"), AS_OF, ("email",)),
    ProfileQuery(Target(rule=RULE), AS_OF, ("country", "age"), top=3, bins=4),
    OverlapQuery(("a", "country = 'US'"), AS_OF),
    EngagementQuery(Target(rule=RULE), AS_OF, "charged", "7 days"),
    EngagementTrendQuery(Target(segment="s"), JUNE, "day", "charged"),
    FunnelQuery(("a", {"event": "b", "where": "amount > 5"}), "30 minutes", JUNE, strict=True,
                exclusions=(Exclusion("x", between=(0, 1)),), hold="sku", segment="s",
                compare=("p", "q")),
    FunnelTrendQuery(FunnelQuery(("a", "b")), "week"),
    EventQuery(("charged", "signed_up"), JUNE, "week", segment="s", by="category", top=3,
               where="amount > 1"),
]


@pytest.mark.parametrize("query", EXAMPLES, ids=[q.kind for q in EXAMPLES])
def test_json_round_trip_and_hash(query):
    text = query.to_json()
    again = query_from_json(text)
    assert again == query and hash(again) == hash(query)
    assert type(query).from_json(text) == query
    assert json.loads(text)["kind"] == query.kind
    assert {query: 1}[again] == 1  # usable as a cache key


def test_a_tree_target_round_trips_as_checked_json(sample_store):
    tree = sample_store.parse(RULE)
    q = MembersQuery(Target(rule=tree), AS_OF)
    again = query_from_json(q.to_json())
    assert run_members(sample_store, again).members == run_members(sample_store, q).members


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: Target(), RuleError, "give either a rule or a segment name"),
        (lambda: Target(rule="x", segment="y"), RuleError, "give either a rule or a segment"),
        (lambda: TrendQuery(Target(rule=RULE), JUNE, "month"), UsageError, "bad step 'month'"),
        (lambda: TrendQuery(Target(rule=RULE)), UsageError, "a trend needs a start and an end"),
        (lambda: DateRange.of("2026-06-30", "2026-06-01"), UsageError, "the range ends"),
        (lambda: DateRange.of("2026-06-01", None), UsageError, "needs a range"),
        (lambda: DateRange.of("2026-13-01", "2026-12-01"), UsageError, "bad start date"),
        (lambda: MembersQuery(Target(rule=RULE), "June"), UsageError, "bad as-of 'June'"),
        (lambda: FunnelQuery(()), UsageError, "a funnel needs at least one step"),
        (lambda: FunnelQuery(("a",), "soon"), UsageError, "bad duration 'soon'"),
        (lambda: FunnelQuery(("a",), order="random"), UsageError, "bad order 'random'"),
        (lambda: FunnelQuery(({"event": "a", "when": 1},)), UsageError, "unknown key"),
        (lambda: EventQuery((), JUNE), UsageError, "needs at least one event"),
        (lambda: EventQuery(("a",)), UsageError, "needs a range"),
        (lambda: EventQuery(("a",), JUNE, by="p", compare=("s",)), UsageError, "not both"),
        (lambda: EventQuery(("a",), JUNE, top=0), UsageError, "top must be a positive number"),
        (lambda: OverlapQuery("a"), UsageError, "give segment names or rules"),
        (lambda: EngagementQuery(Target(rule=RULE), goal_within="3 months"), UsageError,
         "months have no fixed length"),
        (lambda: query_from_json('{"kind": "nope"}'), UsageError, "unknown query kind 'nope'"),
        (lambda: query_from_json('{"kind": "trend", "target": {"rule": "x"}, "range": '
                                 '{"start": "2026-06-01", "end": "2026-06-02"}, "x": 1}'),
         UsageError, "unknown key"),
        (lambda: query_from_json("{"), UsageError, "invalid query JSON"),
    ],
)
def test_queries_are_validated_when_built(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_date_range_and_period():
    rng = DateRange.of("2026-06-01", dt.date(2026, 6, 30))
    assert (rng.start, rng.end) == (dt.date(2026, 6, 1), dt.date(2026, 6, 30))
    assert rng.since == dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)
    assert rng.until == T
    assert Period.parse("week") is Period.WEEK and str(Period.DAY) == "day"


def test_one_duration_parser():
    assert durations.duration_us("10 minutes") == 600_000_000
    assert durations.parse_duration("10m") == dt.timedelta(minutes=10)
    assert durations.parse_duration("1.5d") == dt.timedelta(hours=36)
    assert durations.duration_us("week") == 7 * 86_400_000_000  # a rule may omit the 1
    with pytest.raises(UsageError, match="bad duration 'week'"):
        durations.parse_duration("week")  # a window may not
    assert durations.split(90 * 60_000_000) == (90, "minute")
    assert durations.split(2 * 86_400_000_000) == (2, "day")
    assert durations.text(1, "day") == "1 day" and durations.text(3, "hour") == "3 hours"


# ---------------------------------------------------------------------- runners
def test_members_runner_and_share_of_all_users(sample_store):
    q = MembersQuery(Target(rule=RULE), AS_OF, share_of_all=True)
    res = run_members(sample_store, q)
    ids = members(sample_store, RULE, as_of=AS_OF)
    # the universe by hand: the users table plus everyone with an event before T
    users = pl.read_parquet(sample_store.user_files())["user_id"]
    ev = pl.concat([pl.read_parquet(f, columns=["user_id", "ts"]) for f in
                    sample_store.event_files()])
    everyone = pl.concat([users, ev.filter(pl.col("ts") < T)["user_id"]]).n_unique()
    assert (res.members, res.all_users) == (ids.height, everyone)
    assert res.to_dict() == {"as_of": "2026-07-01T00:00:00Z", "members": ids.height,
                             "all_users": everyone, "share_of_all": ids.height / everyone}
    assert members_actors(sample_store, q).equals(ids)
    assert run(sample_store, q) == res


def test_trend_runner_and_actors(sample_store):
    q = TrendQuery(Target(rule=RULE), DateRange.of("2026-06-20", "2026-06-30"))
    res = run_trend(sample_store, q)
    assert res.points.equals(trend(sample_store, RULE, "2026-06-20", "2026-06-30"))
    point = res.to_dict()["points"][-1]
    assert point["date"] == "2026-06-30"
    who = trend_actors(sample_store, q, "2026-06-30", "members")
    assert who.height == point["members"]
    assert who.equals(members(sample_store, RULE, as_of=AS_OF).select("user_id"))
    entered = trend_actors(sample_store, q, "2026-06-30", "entered")
    assert entered.height == point["entered"]
    before = set(members(sample_store, RULE, as_of="2026-06-29")["user_id"])
    assert set(entered["user_id"]) == set(who["user_id"]) - before
    with pytest.raises(UsageError, match="bad list"):
        trend_actors(sample_store, q, "2026-06-30", "left")


def test_reach_runner_shares_and_actors(sample_store):
    q = ReachQuery(Target(rule=RULE), AS_OF)
    res = run_reach(sample_store, q)
    assert res.report == reach(sample_store, RULE, as_of=AS_OF)
    out = res.to_dict()
    n = out["members"]
    assert n > 0
    assert out["any_share"] == out["any"] / n and out["none_share"] == out["none"] / n
    channel = next(iter(out["channels"]))
    who = reach_actors(sample_store, q, channel)
    assert who.equals(reachable_members(sample_store, RULE, channel, AS_OF))
    assert who.height == out["channels"][channel]["count"]


def test_profile_overlap_engagement_runners(sample_store):
    prof = run_profile(sample_store, ProfileQuery(Target(rule=RULE), AS_OF, ("country",)))
    assert prof.report == profile(sample_store, RULE, as_of=AS_OF, attributes=["country"])
    assert prof.to_dict()["share_of_all"] == prof["members"] / prof["all"]
    items = (RULE, "country = 'US'")
    ov = run_overlap(sample_store, OverlapQuery(items, AS_OF))
    assert ov.report == overlap(sample_store, list(items), as_of=AS_OF)
    assert ov.to_dict()["shares_of_union"][RULE] == ov["sizes"][RULE] / ov["union"]
    eng = run(sample_store, EngagementQuery(Target(rule=RULE), AS_OF, "charged"))
    assert eng.report == engagement(sample_store, RULE, as_of=AS_OF, goal="charged")
    # members who charged in the last 30 days all did the goal within 30 days
    assert eng["goal"]["share"] == 1.0


def test_funnel_runners_and_dropoffs(sample_store):
    q = FunnelQuery(STEPS, "1d", JUNE)
    res = run_funnel(sample_store, q)
    direct = funnel(sample_store, list(STEPS), "1d", "2026-06-01", "2026-06-30")
    assert res.report == direct
    assert res.to_dict()["overall_conversion"] == direct["steps"][-1]["conversion_from_first"]
    dropped = funnel_actors(sample_store, q, 1)
    assert dropped.equals(funnel_dropoffs(sample_store, list(STEPS), "1d", "2026-06-01",
                                          "2026-06-30", after_step=1))
    assert dropped.height == direct["steps"][0]["users"] - direct["steps"][1]["users"]
    over = run_funnel_trend(sample_store, FunnelTrendQuery(q, "week")).rows
    assert over.equals(funnel_over_time(sample_store, list(STEPS), "1d", "2026-06-01",
                                        "2026-06-30", every="week"))


def test_event_runner(sample_store):
    q = EventQuery(("charged",), JUNE, "week", by="category", top=2)
    got = run_events(sample_store, q).rows
    assert got.equals(event_report(sample_store, ["charged"], "2026-06-01", "2026-06-30",
                                   "week", by="category", top=2))
    charged = pl.concat([pl.read_parquet(f, columns=["event", "ts"]) for f in
                         sample_store.event_files()]).filter(
        (pl.col("event") == "charged") & (pl.col("ts") >= JUNE.since) & (pl.col("ts") < T))
    assert got["events"].sum() == charged.height


def test_store_api_is_the_runners(sample_store):
    q = TrendQuery(Target(rule=RULE), DateRange.of("2026-06-28", "2026-06-30"))
    assert sample_store.run(q).points.equals(
        sample_store.trend(RULE, start="2026-06-28", end="2026-06-30"))
    assert sample_store.count(RULE, as_of=AS_OF) == run_members(
        sample_store, MembersQuery(Target(rule=RULE), AS_OF)).members
    assert sample_store.engagement(RULE, as_of=AS_OF) == engagement(sample_store, RULE,
                                                                     as_of=AS_OF)
    assert sample_store.overlap([RULE, "age > 30"], as_of=AS_OF)["union"] > 0


# ---------------------------------------------------------------------- saved funnels
def test_saved_funnel_is_the_query_json_and_opens_from_the_cli(writable_sample, capsys):
    store = writable_sample
    q = FunnelQuery((Step("product_viewed"), Step("charged", "amount > 20")), "2 days",
                    DateRange.of("2026-06-01", "2026-06-15"), exclusions=(Exclusion("email_opened"),))
    save_funnel(store, "Buyers", q)
    assert store.catalog.get_funnel("Buyers")["spec"] == q.to_dict()
    assert saved_funnel(store, "Buyers") == q
    home = str(store.home)
    assert main(["funnel", "--home", home, "--saved", "Buyers", "--json"]) == 0
    opened = json.loads(capsys.readouterr().out)
    direct = funnel(store, ["product_viewed", {"event": "charged", "where": "amount > 20"}],
                    "2 days", "2026-06-01", "2026-06-15", exclusions=["email_opened"])
    assert opened == json.loads(json.dumps(direct))
    # --from/--to override the saved range
    assert main(["funnel", "--home", home, "--saved", "Buyers", "--from", "2026-06-10",
                 "--to", "2026-06-12", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["from"] == "2026-06-10T00:00:00Z"
    # the CLI saves too; a saved funnel does not take more steps
    assert main(["funnel", "--home", home, "--step", "signed_up", "--step", "charged",
                 "--from", "2026-06-01", "--to", "2026-06-30", "--save", "Signup"]) == 0
    capsys.readouterr()
    assert saved_funnel(store, "Signup").steps == (Step("signed_up"), Step("charged"))
    assert main(["funnel", "--home", home, "--saved", "Signup", "--step", "x"]) == 2
    assert "drop --step" in capsys.readouterr().err
    assert main(["funnel", "--home", home, "--saved", "Nope"]) == 2
    assert "no funnel named 'Nope'" in capsys.readouterr().err
    assert main(["funnel", "--home", home, "--step", "signed_up"]) == 2
    assert "required: --from, --to" in capsys.readouterr().err


def test_funnels_saved_in_the_earlier_format_still_open(writable_sample):
    store = writable_sample
    old = {"steps": [{"event": "signed_up", "where": None}, "charged"], "window": "3 days",
           "start": "2026-06-01", "end": "2026-06-30", "strict": True, "order": "ordered",
           "exclusions": None, "hold": None, "segment": None}
    store.catalog.save_funnel("Old", old)
    q = saved_funnel(store, "Old")
    assert q == FunnelQuery(("signed_up", "charged"), "3 days", JUNE, strict=True)
    store.catalog.save_funnel("Plain", {"steps": ["signed_up", "charged"]})
    assert saved_funnel(store, "Plain") == FunnelQuery(("signed_up", "charged"))
    with pytest.raises(NotFoundError):
        saved_funnel(store, "Missing")


def test_the_package_resolves_every_name_on_first_use():
    """``segcore.query`` imports each public name's module when it is first used."""
    import segcore.query as Q
    from segcore.query import members, queries

    assert set(Q.__all__) <= set(dir(Q))
    for name in Q.__all__:
        assert getattr(Q, name) is not None
    assert Q.MembersQuery is members.MembersQuery is queries.MembersQuery
    assert Q.runners.run is Q.run  # submodules too
    with pytest.raises(AttributeError):
        _ = Q.no_such_name
