"""The Polars evaluator on a tiny hand-made store, with hand-computed members.

As of 2026-06-30 (T = 2026-07-01T00:00:00Z) the universe is u1..u5: u1-u4 are in
the users table, u5 only has events (NULL attributes), u6's only event is at T
(it does not exist yet, so u6 is not in the universe).
"""

from __future__ import annotations

import datetime as dt
import warnings

import polars as pl
import pytest

from segcore.errors import RuleError
from segcore.segments import create_segment

AS_OF = "2026-06-30"
T = dt.datetime(2026, 7, 1)
UNIVERSE = ["u1", "u2", "u3", "u4", "u5"]

USERS = [
    {
        "user_id": "u1",
        "country": "US",
        "age": 30,
        "tags": ["Customer", "VIP"],
        "email": "a@company.com",
        "total_spent": 100.0,
        "opt_in": True,
        "renews": dt.date(2026, 7, 5),
        "created_at": dt.datetime(2026, 6, 25),
    },
    {
        "user_id": "u2",
        "country": "DE",
        "age": 20,
        "tags": [],
        "email": "B@Company.COM",
        "total_spent": 0.0,
        "opt_in": False,
        "renews": None,
        "created_at": dt.datetime(2026, 1, 1),
    },
    {
        "user_id": "u3",
        "country": None,
        "age": None,
        "tags": None,
        "email": None,
        "total_spent": 50.0,
        "opt_in": None,
        "renews": dt.date(2026, 6, 1),
        "created_at": None,
    },
    {
        "user_id": "u4",
        "country": "US",
        "age": 45,
        "tags": ["Newsletter"],
        "email": "x_y@other.org",
        "total_spent": None,
        "opt_in": True,
        "renews": dt.date(2026, 8, 1),
        "created_at": dt.datetime(2025, 6, 1),
    },
]
EVENTS = [
    ("u1", "charged", "2026-06-10T10:00:00", {"amount": 10.0, "product": "TV"}),
    ("u1", "charged", "2026-06-20T10:00:00", {"amount": 30.0, "product": "Phone"}),
    ("u1", "charged", "2026-06-25T10:00:00", {"amount": None, "product": "TV"}),
    ("u1", "page_viewed", "2026-06-29T12:00:00", {"page": "pricing"}),
    ("u2", "page_viewed", "2026-06-30T08:00:00", {"page": None}),
    ("u2", "page_viewed", "2026-06-01T08:00:00", {"page": "home"}),
    ("u5", "charged", "2026-06-15T00:00:00", {"amount": 100.0, "product": "TV"}),
    ("u6", "page_viewed", "2026-07-01T00:00:00", {"page": "home"}),
]


@pytest.fixture
def store(tiny):
    users = pl.DataFrame(
        USERS, schema_overrides={"tags": pl.List(pl.String)}, infer_schema_length=None
    )
    users = users.with_columns(pl.col("created_at").dt.replace_time_zone("UTC"))
    return tiny(events=EVENTS, users=users)


def m(store, rule, as_of=AS_OF) -> list[str]:
    return store.members(rule, as_of=as_of)["user_id"].to_list()


CASES = [
    # behavioural aggregates (no matching event: did FALSE, counts/sums 0, others NULL)
    ("did('charged')", ["u1", "u5"]),
    ("NOT did('charged')", ["u2", "u3", "u4"]),
    ("event_count('charged') = 3", ["u1"]),
    ("event_count('charged') = 0", ["u2", "u3", "u4"]),
    ("event_sum('charged', amount) = 40", ["u1"]),  # the NULL amount is skipped
    ("event_sum('charged', amount) = 0", ["u2", "u3", "u4"]),
    ("event_avg('charged', amount) = 20", ["u1"]),
    ("event_avg('charged', amount) IS NULL", ["u2", "u3", "u4"]),
    ("event_min('charged', amount) = 10 AND event_max('charged', amount) = 30", ["u1"]),
    ("event_max('charged', amount) >= 30", ["u1", "u5"]),
    ("event_min('charged', product) = 'Phone'", ["u1"]),
    ("event_distinct('charged', product) = 2", ["u1"]),
    ("event_distinct('charged', product) = 1", ["u5"]),
    ("event_distinct('charged', amount) = 2", ["u1"]),  # NULL is not a value
    ("first_seen('charged') = TIMESTAMP '2026-06-10 10:00:00'", ["u1"]),
    ("last_seen('charged') = '2026-06-25 10:00:00'", ["u1"]),
    ("last_seen('charged') IS NULL", ["u2", "u3", "u4"]),
    ("first_seen('charged') < now() - interval '20 days'", ["u1"]),
    ("did('charged', where => product = 'TV', within => '20 days')", ["u1", "u5"]),
    ("event_count('charged', where => product = 'TV') = 2", ["u1"]),
    # static conjuncts: users of the users table who pass them, unless a user with no
    # attributes (u5, only in events) passes them too
    ("country = 'US' AND NOT did('charged')", ["u4"]),
    ("age > 25 AND event_count('charged') = 0", ["u4"]),
    ("country = 'US' AND (did('charged') OR age > 40)", ["u1", "u4"]),
    ("country IS NULL AND did('charged')", ["u5"]),
    ("coalesce(country, 'none') = 'none' AND NOT did('page_viewed')", ["u3", "u5"]),
    ("opt_in IS NOT TRUE AND event_count('*') = 0", ["u3"]),
    # event '*': any event
    ("did('*', within => '2 days')", ["u1", "u2"]),
    ("did('*', within => '1 day')", ["u2"]),
    ("event_count('*') = 2", ["u2"]),
    ("NOT did('*')", ["u3", "u4"]),
    # where filters with NULL properties: a NULL filter is not a match
    ("event_count('page_viewed', where => page = 'home') = 1", ["u2"]),
    ("event_count('page_viewed', where => page != 'home') = 1", ["u1"]),
    ("event_count('page_viewed', where => page != 'home') = 0", ["u2", "u3", "u4", "u5"]),
    ("did('page_viewed', where => page IS NULL)", ["u2"]),
    ("did('page_viewed', where => NOT page = 'pricing')", ["u2"]),
    ("did('charged', where => amount > 20 OR amount IS NULL)", ["u1", "u5"]),
    # NULL attributes: a comparison with NULL is NULL, never a member (also negated)
    ("country = 'US'", ["u1", "u4"]),
    ("NOT country = 'US'", ["u2"]),
    ("country != 'US'", ["u2"]),
    ("NOT (country = 'US')", ["u2"]),
    ("country IS NULL", ["u3", "u5"]),  # u5 is only in events: NULL attributes
    ("country IS NOT NULL", ["u1", "u2", "u4"]),
    ("opt_in", ["u1", "u4"]),
    ("NOT opt_in", ["u2"]),
    ("opt_in IS NOT TRUE", ["u2", "u3", "u5"]),
    ("opt_in IS FALSE", ["u2"]),
    ("opt_in = TRUE OR country IS NULL", ["u1", "u3", "u4", "u5"]),
    ("country = 'US' OR TRUE", UNIVERSE),  # Kleene: NULL OR TRUE is TRUE
    ("country = 'US' AND FALSE", []),
    ("NOT (country = 'US' AND age > 40)", ["u1", "u2"]),  # u3/u5: NULL AND NULL
    ("age = NULL", []),
    # arithmetic: / is float division, x / 0 is NULL
    ("age / 2 = 15", ["u1"]),
    ("age / 40 > 0.7", ["u1", "u4"]),
    ("age / 0 > 1", []),
    ("age / 0 IS NULL", UNIVERSE),
    ("age * 2 - 1 = 59", ["u1"]),
    ("-age < -40", ["u4"]),
    ("total_spent / age = 5", []),  # u2: 0 / 20 = 0; u1: 100 / 30
    ("total_spent / age = 0", ["u2"]),
    # IN with NULL
    ("country IN ('US', 'DE')", ["u1", "u2", "u4"]),
    ("country IN ('US', NULL)", ["u1", "u4"]),
    ("country NOT IN ('US', NULL)", []),  # DE: NOT (FALSE OR NULL) is NULL
    ("country NOT IN ('US')", ["u2"]),
    ("age IN (20, 45.0)", ["u2", "u4"]),
    # BETWEEN (both ends included)
    ("age BETWEEN 20 AND 30", ["u1", "u2"]),
    ("age NOT BETWEEN 20 AND 30", ["u4"]),
    ("renews BETWEEN '2026-07-05' AND DATE '2026-08-01'", ["u1", "u4"]),
    # LIKE / ILIKE: % any run, _ one character, everything else literal
    ("email LIKE '%@company.com'", ["u1"]),
    ("email ILIKE '%@company.com'", ["u1", "u2"]),
    ("email LIKE '_@company.com'", ["u1"]),
    ("email LIKE '__@company.com'", []),
    ("email LIKE 'x_y@%'", ["u4"]),
    ("email LIKE '%.org'", ["u4"]),
    ("email LIKE '%(%' OR email LIKE '%[a%' OR email LIKE '%$'", []),
    ("email NOT LIKE '%company%'", ["u2", "u4"]),
    ("email LIKE NULL", []),
    # text functions
    ("lower(email) = 'b@company.com'", ["u2"]),
    ("upper(country) = 'DE'", ["u2"]),
    ("length(email) = 13", ["u1", "u2", "u4"]),
    ("contains(email, 'company')", ["u1"]),
    ("starts_with(email, 'x_')", ["u4"]),
    ("ends_with(email, '.COM')", ["u2"]),
    # lists
    ("has(tags, 'VIP')", ["u1"]),
    ("NOT has(tags, 'VIP')", ["u2", "u4"]),  # NULL tags: NULL
    ("length(tags) = 0", ["u2"]),
    # coalesce
    ("coalesce(total_spent, 0) = 0", ["u2", "u4", "u5"]),
    ("coalesce(country, 'none') = 'none'", ["u3", "u5"]),
    ("coalesce(age, total_spent, 7) = 7", ["u5"]),
    # dates, intervals, today()
    ("renews - interval '4 days' <= now()", ["u1", "u3"]),
    ("renews - interval '4 days' < now()", ["u3"]),
    ("renews + 1 = DATE '2026-07-06'", ["u1"]),
    ("renews - 30 = today()", []),
    ("renews = today() + 5", ["u1"]),
    ("renews < today()", ["u3"]),
    ("created_at + interval '6 days' > now()", []),
    ("created_at + interval '6 days' >= now()", ["u1"]),
    ("created_at >= now() - interval '6 days'", ["u1"]),
    ("created_at > '2026-01-01'", ["u1"]),
    ("created_at >= '2026-01-01'", ["u1", "u2"]),
    ("renews > created_at", ["u1", "u4"]),
    ("interval '1 day' + created_at > '2026-06-25 12:00'", ["u1"]),
]


@pytest.mark.parametrize("rule,expected", CASES, ids=[c[0] for c in CASES])
def test_members(store, rule, expected):
    assert m(store, rule) == expected
    assert store.count(rule, as_of=AS_OF) == len(expected)


def test_universe_includes_event_only_users_and_excludes_events_at_T(store):
    assert m(store, "TRUE") == UNIVERSE
    assert m(store, "TRUE", as_of="2026-07-01T00:00:00.000001Z") == [*UNIVERSE, "u6"]
    # before u5's only event, u5 is not in the universe yet
    assert m(store, "TRUE", as_of="2026-06-14") == ["u1", "u2", "u3", "u4"]


def test_members_with_attributes(store):
    df = store.members("did('charged')", as_of=AS_OF, attributes=True)
    assert df["user_id"].to_list() == ["u1", "u5"]
    assert df["country"].to_list() == ["US", None]
    assert df["age"].to_list() == [30, None]


def test_rule_as_tree_and_json(store):
    from segcore.lang.tree import to_dict, to_json

    tree = store.parse("country = 'US'")
    assert m(store, tree) == ["u1", "u4"]
    assert m(store, to_json(tree)) == ["u1", "u4"]
    assert m(store, to_dict(tree)) == ["u1", "u4"]


def test_in_list_is_not_a_deprecated_polars_call(store):
    """Regression (is_in_deprecation): IN over literals called ``is_in`` with a Series of
    the column's own type, deprecated in Polars (a warning on every evaluation)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert m(store, "country IN ('US', 'DE') AND age IN (20, 30)") == ["u1", "u2"]


# --------------------------------------------------------------------------- segments
@pytest.fixture
def seg_store(store):
    create_segment(store, "US", "country = 'US'")
    create_segment(store, "Buyers", "did('charged')")
    create_segment(store, "US buyers", "in_segment('US') AND in_segment('Buyers')")
    create_segment(store, "Picked", ids=["u3", "u5", "u6", "ghost"])
    return store


def test_in_segment(seg_store):
    assert m(seg_store, "in_segment('US') AND age > 40") == ["u4"]
    assert m(seg_store, "NOT in_segment('US')") == ["u2", "u3", "u5"]
    assert m(seg_store, "in_segment('US buyers')") == ["u1"]
    assert m(seg_store, "in_segment('Buyers') OR in_segment('Picked')") == ["u1", "u3", "u5"]


def test_in_segment_uses_the_same_T(seg_store):
    # as of 2026-06-14 u5 has no event yet: not a buyer
    assert m(seg_store, "in_segment('Buyers')", as_of="2026-06-14") == ["u1"]


def test_static_segment_members_are_stored_ids_in_the_universe(seg_store):
    assert seg_store.members(segment="Picked", as_of=AS_OF)["user_id"].to_list() == ["u3", "u5"]
    # u6's only event is at T: one microsecond later u6 is in the universe
    later = "2026-07-01T00:00:00.000001Z"
    assert seg_store.members(segment="Picked", as_of=later)["user_id"].to_list() == [
        "u3",
        "u5",
        "u6",
    ]
    assert seg_store.count(segment="Picked", as_of="2026-06-14") == 1


def test_store_api(seg_store):
    assert seg_store.count(segment="US", as_of=AS_OF) == 2
    assert seg_store.count("country = 'US'", as_of=AS_OF) == 2
    assert seg_store.members(segment="US buyers", as_of=AS_OF)["user_id"].to_list() == ["u1"]
    assert seg_store.segments_of("u1", as_of=AS_OF) == ["Buyers", "US", "US buyers"]
    assert seg_store.segments_of("u5", as_of=AS_OF) == ["Buyers", "Picked"]
    assert seg_store.segments_of("u2", as_of=AS_OF) == []
    assert seg_store.segments_of("nobody", as_of=AS_OF) == []
    profile = seg_store.user("u1", as_of=AS_OF)
    assert profile["user_id"] == "u1"
    assert profile["events"] == 4
    assert profile["attributes"]["country"] == "US"
    assert profile["segments"] == ["Buyers", "US", "US buyers"]
    assert [e["event"] for e in profile["latest_events"]] == [
        "page_viewed",
        "charged",
        "charged",
        "charged",
    ]
    event_only = seg_store.user("u5", as_of=AS_OF)
    assert event_only["attributes"] == {} and event_only["events"] == 1


def test_store_api_errors(seg_store):
    from segcore.errors import NotFoundError

    with pytest.raises(NotFoundError, match="unknown user 'nobody'"):
        seg_store.user("nobody", as_of=AS_OF)
    with pytest.raises(RuleError, match="give either a rule or a segment name"):
        seg_store.count(as_of=AS_OF)
    with pytest.raises(RuleError, match="no segment named 'Nope'"):
        seg_store.count(segment="Nope", as_of=AS_OF)


def test_segments_of_without_catalog(store):
    assert store.segments_of("u1", as_of=AS_OF) == []


# --------------------------------------------------------------------------- empty stores
def test_empty_store_counts_zero(tiny):
    store = tiny()
    assert store.count("did('charged')", as_of=AS_OF) == 0
    assert store.count("NOT did('charged')", as_of=AS_OF) == 0
    assert store.count("event_count('*') = 0", as_of=AS_OF) == 0
    df = store.members("did_then_not('a', 'b', gap => '1 hour')", as_of=AS_OF)
    assert df.height == 0 and df.columns == ["user_id"]


def test_users_only_store(tiny):
    store = tiny(users=[{"user_id": "a", "age": 3}, {"user_id": "b", "age": 5}])
    assert m(store, "age > 4") == ["b"]
    assert m(store, "NOT did('charged')") == ["a", "b"]
    assert m(store, "event_count('charged') = 0") == ["a", "b"]


def test_events_only_store(tiny):
    store = tiny(
        events=[
            ("a", "charged", "2026-06-01T00:00:00", {"amount": 5.0}),
            ("b", "page_viewed", "2026-06-01T00:00:00"),
        ]
    )
    assert m(store, "did('charged')") == ["a"]
    assert m(store, "NOT did('charged')") == ["b"]
    assert m(store, "event_sum('charged', amount) < 1") == ["b"]


# --------------------------------------------------------------------------- narrowing
NARROW_EVENTS = [
    ("recent", "view", "2026-06-29T12:00:00", {"page": "home"}),
    ("edge", "view", "2026-06-28T00:00:00", {"page": "home"}),  # exactly now() - 3 days
    ("old", "view", "2026-06-20T00:00:00", {"page": "home"}),
    ("future", "view", "2026-07-02T00:00:00", {"page": "home"}),  # after T: never counts
    ("pricing", "view", "2026-06-29T00:00:00", {"page": "pricing"}),
    ("nothing", "buy", "2026-06-29T00:00:00", {"page": None}),
]


@pytest.mark.parametrize(
    ("rule", "members"),
    [
        ("last_seen('view') >= now() - interval '3 days'", ["edge", "pricing", "recent"]),
        ("now() - interval '3 days' <= last_seen('view')", ["edge", "pricing", "recent"]),
        ("last_seen('view', where => page = 'home') >= now() - interval '3 days'",
         ["edge", "recent"]),
        ("last_seen('view') >= now() - interval '3 days' OR did('buy')",
         ["edge", "nothing", "pricing", "recent"]),
        # under NOT the NULL of "never viewed" matters: not rewritten, same answer as SQL
        ("NOT (last_seen('view') >= now() - interval '3 days')", ["old"]),
        ("(last_seen('view') >= now() - interval '3 days') IS NOT TRUE",
         ["future", "nothing", "old"]),
        ("last_seen('view') >= NULL", []),
        ("last_seen('view') > now() - interval '3 days'", ["pricing", "recent"]),
    ],
)
def test_last_seen_since_is_narrowed_exactly(tiny, rule, members):
    from segcore.engine.polars.evaluate import members as members_of

    users = [{"user_id": u} for u in ("recent", "edge", "old", "future", "pricing", "nothing")]
    store = tiny(events=NARROW_EVENTS, users=users)
    assert members_of(store, rule, as_of=AS_OF)["user_id"].to_list() == members
    # the same members from DuckDB on the compiled SQL (no narrowing there)
    from segcore.engine.sql.engines import run_members

    sql = run_members(store, rule, engine="duckdb", as_of=AS_OF)
    assert sorted(sql["user_id"].to_list()) == members


def test_narrowing_applies_in_positive_positions_only(sample_store):
    from segcore.engine.polars.evaluate import narrow_windows, schema_of, to_tree
    from segcore.lang.tree import Behavior, Not

    schema = schema_of(sample_store, check_names=False)
    rule = ("did('charged') AND (last_seen('page_viewed') >= now() - interval '3 days' "
            "OR country = 'US')")
    tree = narrow_windows(to_tree(sample_store, rule), T, schema)
    narrowed = [n for n in tree.walk() if isinstance(n, Behavior) and n.since is not None]
    assert [(n.func, n.event) for n in narrowed] == [("did", "page_viewed")]
    negated = to_tree(sample_store, f"NOT ({rule})")
    assert narrow_windows(negated, T, schema) == negated and isinstance(negated, Not)
    windowed = to_tree(sample_store, "last_seen('page_viewed', within => '9 days') >= "
                                     "now() - interval '3 days'")
    assert narrow_windows(windowed, T, schema) == windowed


@pytest.mark.parametrize(
    "rule",
    [
        "last_seen('page_viewed') >= now() - interval '3 days'",
        "last_seen('*') >= now() - interval '1 day' AND country = 'US'",
        "last_seen('charged', where => amount > 100) >= TIMESTAMP '2026-06-01 00:00:00' "
        "OR age > 60",
        "did('charged', within => '30 days') AND last_seen('app_launched') >= "
        "now() - interval '2 days'",
    ],
)
def test_narrowing_keeps_the_members(sample_store, monkeypatch, rule):
    import segcore.engine.polars.evaluate as ev

    narrowed = ev.members(sample_store, rule, as_of=AS_OF)["user_id"].to_list()
    monkeypatch.setattr(ev, "narrow_windows", lambda tree, T, schema: tree)
    assert ev.members(sample_store, rule, as_of=AS_OF)["user_id"].to_list() == narrowed
    assert len(narrowed) > 0


def test_a_saved_segment_in_a_new_process_needs_no_rule_parser(seg_store):
    """The catalog keeps a dynamic segment's tree: a new process counts it without
    importing the rule parser (sqlglot), and gets the same members; nor does it import
    the query classes it does not use, numpy, other engines or the UI."""
    from tests.conftest import OTHER_ENGINES_AND_UI, fresh_process

    code = ("from segcore import Store\n"
            "result = Store(sys.argv[1]).count(segment='US buyers', as_of='2026-06-30')")
    n, imported = fresh_process(code, str(seg_store.home))
    assert n == 1
    unused = {"sqlglot", "segcore.lang.parser", "numpy", "tomllib", "segcore.query.queries",
              "segcore.segments", "segcore.sample", "segcore.ingest", "segcore.service"}
    assert not imported & (unused | OTHER_ENGINES_AND_UI)
    assert m(seg_store, "in_segment('US buyers')") == ["u1"]


def test_members_start_from_the_users_who_pass_the_static_conjuncts(store):
    """``users_first``: the evaluator starts from the users table's users who pass the
    attribute-only conjuncts, unless a user with no attributes passes them as well."""
    from segcore.engine.plan import users_first
    from segcore.engine.rules import schema_of, to_tree

    schema = schema_of(store)

    def first(rule: str) -> list[str]:
        from segcore.lang.printer import to_text

        return [to_text(c) for c in users_first(to_tree(store, rule), schema, T)]

    assert first("country = 'US' AND age > 25 AND NOT did('charged')") == [
        "country = 'US'", "age > 25"]
    assert first("country IS NULL AND did('charged')") == []  # u5 passes: no attributes
    assert first("did('charged') OR country = 'US'") == []  # not a conjunct at the root
    assert first("user_id = 'u1' AND did('charged')") == []  # user_id: left to the universe
    assert first("did('charged')") == []
