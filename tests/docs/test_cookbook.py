"""The cookbook (docs/cookbook.md): every example segment as a rule on the sample data.

Each rule is checked on the session sample store as of 2026-06-30 (T =
2026-07-01T00:00:00Z): it has members, and its members equal an independent
computation, hand-written SQL run by DuckDB over the same Parquet files.

In the SQL, ``ev`` is the events before T, ``users`` the users table and
``univ`` the universe at T (users table plus every user with an event before T).
"""

from __future__ import annotations

import duckdb
import pytest

from segcore.engine.polars.evaluate import schema_of
from segcore.lang.parser import parse_rule
from segcore.sample.examples import EXAMPLES

AS_OF = "2026-06-30"
T = "TIMESTAMPTZ '2026-07-01 00:00:00+00'"

# name, rule, meaning, hand-written DuckDB SQL returning the member user_ids
COOKBOOK: list[dict[str, str]] = [
    {
        "name": "Subscription ends in 6 days",
        "rule": "subscription_end_date = today() + 6",
        "meaning": "The subscription end date is exactly 6 days after today "
        "(today() is the UTC date just before T).",
        "sql": "SELECT user_id FROM users WHERE subscription_end_date = DATE '2026-07-06'",
    },
    {
        "name": "Junior product and engineering staff",
        "rule": "department IN ('Product', 'Engineering') "
        "AND (contains(title, 'Junior') OR contains(title, 'Associate'))",
        "meaning": "Department is Product or Engineering and the title includes "
        "Junior or Associate.",
        "sql": "SELECT user_id FROM users WHERE department IN ('Product', 'Engineering') "
        "AND (title LIKE '%Junior%' OR title LIKE '%Associate%')",
    },
    {
        "name": "Email opted in",
        "rule": "email_opt_in",
        "meaning": "Opted in to e-mail (a bare boolean column is a rule; NULL is not a member).",
        "sql": "SELECT user_id FROM users WHERE email_opt_in",
    },
    {
        "name": "Pricing page visited more than twice",
        "rule": "event_count('page_viewed', where => page = 'pricing') > 2",
        "meaning": "More than two views of the pricing page, ever (before T).",
        "sql": "SELECT user_id FROM ev WHERE event = 'page_viewed' AND page = 'pricing' "
        "GROUP BY user_id HAVING count(*) > 2",
    },
    {
        "name": "High-value customers",
        "rule": "event_count('charged') >= 3 OR event_sum('charged', amount) > 1000",
        "meaning": "Several purchases (three or more) or more than 1,000 spent in total.",
        "sql": "SELECT user_id FROM ev WHERE event = 'charged' GROUP BY user_id "
        "HAVING count(*) >= 3 OR sum(amount) > 1000",
    },
    {
        "name": "High-value tagged customers",
        "rule": "event_sum('charged', amount) > 1000 AND has(tags, 'Customer') "
        "AND did('*', within => '90 days')",
        "meaning": "Purchase total above 1,000, tagged Customer, and any activity in the "
        "last 90 days.",
        "sql": "SELECT user_id FROM users WHERE list_contains(tags, 'Customer') "
        "AND user_id IN (SELECT user_id FROM ev WHERE event = 'charged' GROUP BY user_id "
        "HAVING sum(amount) > 1000) "
        f"AND user_id IN (SELECT user_id FROM ev WHERE ts >= {T} - INTERVAL 90 DAY)",
    },
    {
        "name": "VIP local shoppers",
        "rule": "city = 'New York' AND did('charged', within => '30 days') "
        "AND did('email_opened', within => '30 days')",
        "meaning": "Lives in New York, bought something and opened an e-mail in the last 30 days.",
        "sql": "SELECT user_id FROM users WHERE city = 'New York' "
        f"AND user_id IN (SELECT user_id FROM ev WHERE event = 'charged' "
        f"AND ts >= {T} - INTERVAL 30 DAY) "
        f"AND user_id IN (SELECT user_id FROM ev WHERE event = 'email_opened' "
        f"AND ts >= {T} - INTERVAL 30 DAY)",
    },
    {
        "name": "Inactive loyal customers",
        "rule": "total_spent > 10000 AND NOT did('charged', within => '90 days')",
        "meaning": "Spent over 10,000 in total and bought nothing in the last 3 months "
        "(90 days: months have no fixed length).",
        "sql": "SELECT user_id FROM users WHERE total_spent > 10000 AND user_id NOT IN "
        f"(SELECT user_id FROM ev WHERE event = 'charged' AND ts >= {T} - INTERVAL 90 DAY)",
    },
    {
        "name": "Hot leads",
        "rule": "lead_score > 70 AND did('*', within => '7 days') "
        "AND created_at >= now() - interval '14 days'",
        "meaning": "Lead score above 70, active (any event in the last 7 days) and created "
        "in the last 14 days.",
        "sql": f"SELECT user_id FROM users WHERE lead_score > 70 "
        f"AND created_at >= {T} - INTERVAL 14 DAY "
        f"AND user_id IN (SELECT user_id FROM ev WHERE ts >= {T} - INTERVAL 7 DAY)",
    },
    {
        "name": "At-risk customers",
        "rule": "has(tags, 'Customer') AND NOT did('*', within => '30 days') "
        "AND NOT did('conversation_started', within => '60 days')",
        "meaning": "Tagged Customer, no activity in the last 30 days and no conversation in "
        "the last 60 days.",
        "sql": "SELECT user_id FROM users WHERE list_contains(tags, 'Customer') "
        f"AND user_id NOT IN (SELECT user_id FROM ev WHERE ts >= {T} - INTERVAL 30 DAY) "
        "AND user_id NOT IN (SELECT user_id FROM ev WHERE event = 'conversation_started' "
        f"AND ts >= {T} - INTERVAL 60 DAY)",
    },
    {
        "name": "Newsletter subscribers",
        "rule": "has(tags, 'Newsletter') AND email_opt_in",
        "meaning": "Tagged Newsletter and consented to e-mail.",
        "sql": "SELECT user_id FROM users WHERE list_contains(tags, 'Newsletter') AND email_opt_in",
    },
    {
        "name": "Company e-mail domain",
        "rule": "email LIKE '%@company.com'",
        "meaning": "E-mail domain is company.com.",
        "sql": "SELECT user_id FROM users WHERE email LIKE '%@company.com'",
    },
    {
        "name": "Abandoned carts",
        "rule": "did('added_to_cart', within => '7 days') AND NOT did('charged', within => '7 days')",
        "meaning": "Added something to the cart in the last 7 days and bought nothing in "
        "that time.",
        "sql": "SELECT user_id FROM ev WHERE event = 'added_to_cart' "
        f"AND ts >= {T} - INTERVAL 7 DAY EXCEPT SELECT user_id FROM ev "
        f"WHERE event = 'charged' AND ts >= {T} - INTERVAL 7 DAY",
    },
    {
        "name": "Frequent buyers",
        "rule": "event_count('charged', within => '90 days') >= 3",
        "meaning": "Three or more purchases in the last 90 days.",
        "sql": f"SELECT user_id FROM ev WHERE event = 'charged' AND ts >= {T} - INTERVAL 90 DAY "
        "GROUP BY user_id HAVING count(*) >= 3",
    },
    {
        "name": "High spenders",
        "rule": "event_sum('charged', amount, within => '90 days') > 2000",
        "meaning": "Spent more than 2,000 in the last 90 days.",
        "sql": f"SELECT user_id FROM ev WHERE event = 'charged' AND ts >= {T} - INTERVAL 90 DAY "
        "GROUP BY user_id HAVING sum(amount) > 2000",
    },
    {
        "name": "Once-frequent buyers who stopped",
        "rule": "event_count('charged', since => now() - interval '120 days', "
        "until => now() - interval '60 days') >= 2 AND NOT did('charged', within => '60 days')",
        "meaning": "Bought at least twice between 120 and 60 days ago, nothing in the last "
        "60 days.",
        "sql": f"SELECT user_id FROM ev WHERE event = 'charged' AND ts >= {T} - INTERVAL 120 DAY "
        f"AND ts < {T} - INTERVAL 60 DAY GROUP BY user_id HAVING count(*) >= 2 "
        f"EXCEPT SELECT user_id FROM ev WHERE event = 'charged' AND ts >= {T} - INTERVAL 60 DAY",
    },
    {
        "name": "Bought a TV in the last 10 days",
        "rule": "did('charged', within => '10 days', where => product LIKE '%TV%')",
        "meaning": "A purchase of a product whose name contains TV in the last 10 days.",
        "sql": f"SELECT user_id FROM ev WHERE event = 'charged' AND ts >= {T} - INTERVAL 10 DAY "
        "AND product LIKE '%TV%'",
    },
    {
        "name": "Visited last month but not last week",
        "rule": "did('page_viewed', within => '30 days') AND NOT did('page_viewed', within => '7 days')",
        "meaning": "Viewed a page in the last 30 days but not in the last 7 days.",
        "sql": f"SELECT user_id FROM ev WHERE event = 'page_viewed' AND ts >= {T} - INTERVAL 30 DAY "
        f"EXCEPT SELECT user_id FROM ev WHERE event = 'page_viewed' "
        f"AND ts >= {T} - INTERVAL 7 DAY",
    },
    {
        "name": "Visited in June but not in the last 7 days",
        "rule": "did('page_viewed', since => DATE '2026-06-01', until => DATE '2026-07-01') "
        "AND NOT did('page_viewed', within => '7 days')",
        "meaning": "Viewed a page in the calendar month of June 2026 but not in the last 7 days.",
        "sql": "SELECT user_id FROM ev WHERE event = 'page_viewed' "
        "AND ts >= TIMESTAMPTZ '2026-06-01 00:00:00+00' "
        "AND ts < TIMESTAMPTZ '2026-07-01 00:00:00+00' "
        f"EXCEPT SELECT user_id FROM ev WHERE event = 'page_viewed' "
        f"AND ts >= {T} - INTERVAL 7 DAY",
    },
    {
        "name": "Added to cart without buying within 10 minutes",
        "rule": "did_then_not('added_to_cart', 'charged', gap => '10 minutes')",
        "meaning": "Some add-to-cart (at least 10 minutes before T) with no purchase in the "
        "10 minutes after it.",
        "sql": "SELECT DISTINCT a.user_id FROM ev a WHERE a.event = 'added_to_cart' "
        f"AND a.ts + INTERVAL 10 MINUTE < {T} AND NOT EXISTS (SELECT 1 FROM ev b "
        "WHERE b.user_id = a.user_id AND b.event = 'charged' AND b.ts > a.ts "
        "AND b.ts <= a.ts + INTERVAL 10 MINUTE)",
    },
    {
        "name": "Carts that converted within 10 minutes",
        "rule": "did_then('added_to_cart', 'charged', gap => '10 minutes', within => '30 days')",
        "meaning": "Added to cart in the last 30 days and bought within 10 minutes after.",
        "sql": "SELECT DISTINCT a.user_id FROM ev a JOIN ev b ON a.user_id = b.user_id "
        "WHERE a.event = 'added_to_cart' AND b.event = 'charged' "
        f"AND a.ts >= {T} - INTERVAL 30 DAY "
        "AND b.ts > a.ts AND b.ts <= a.ts + INTERVAL 10 MINUTE",
    },
    {
        "name": "Did it 3 times",
        "rule": "event_count('charged') >= 3",
        "meaning": "Bought at least three times (all history before T).",
        "sql": "SELECT user_id FROM ev WHERE event = 'charged' GROUP BY user_id "
        "HAVING count(*) >= 3",
    },
    {
        "name": "Total amount above 700",
        "rule": "event_sum('charged', amount) > 700",
        "meaning": "The sum of all purchase amounts is above 700.",
        "sql": "SELECT user_id FROM ev WHERE event = 'charged' GROUP BY user_id "
        "HAVING sum(amount) > 700",
    },
    {
        "name": "Amount above 500 for the first time",
        "rule": "first_seen('charged', where => amount > 500) >= now() - interval '7 days'",
        "meaning": "The first purchase of more than 500 happened in the last 7 days.",
        "sql": "SELECT user_id FROM ev WHERE event = 'charged' AND amount > 500 "
        f"GROUP BY user_id HAVING min(ts) >= {T} - INTERVAL 7 DAY",
    },
    {
        "name": "Performed regularly",
        "rule": "event_periods('app_launched', period => 'week', within => '7 weeks') >= 5",
        "meaning": "Launched the app in at least 5 of the last 7 weeks (weeks counted back "
        "from T).",
        "sql": "SELECT user_id FROM ev WHERE event = 'app_launched' "
        f"AND ts >= {T} - INTERVAL 49 DAY GROUP BY user_id "
        f"HAVING count(DISTINCT (date_diff('microsecond', ts, {T}) - 1) // 604800000000) >= 5",
    },
    {
        "name": "US customers or strong leads",
        "rule": "(has(tags, 'Customer') AND country = 'US') OR lead_score > 80",
        "meaning": "(Tag Customer AND Country US) OR lead score above 80.",
        "sql": "SELECT user_id FROM users WHERE (list_contains(tags, 'Customer') "
        "AND country = 'US') OR lead_score > 80",
    },
    {
        "name": "Bought in the last 60 days",
        "rule": "did('charged', within => '60 days')",
        "meaning": "Performed a purchase in the last 60 days.",
        "sql": f"SELECT user_id FROM ev WHERE event = 'charged' AND ts >= {T} - INTERVAL 60 DAY",
    },
    {
        "name": "No purchase in the last 60 days",
        "rule": "NOT did('charged', within => '60 days')",
        "meaning": "Did not purchase in the last 60 days (users of the universe without "
        "any event are members too).",
        "sql": "SELECT user_id FROM univ EXCEPT SELECT user_id FROM ev "
        f"WHERE event = 'charged' AND ts >= {T} - INTERVAL 60 DAY",
    },
    {
        "name": "Engaged with sales",
        "rule": "did('conversation_started', within => '7 days') OR did('appointment_booked') "
        "OR did('form_submitted')",
        "meaning": "Had a conversation in the last 7 days, booked an appointment or "
        "submitted a form.",
        "sql": "SELECT user_id FROM ev WHERE (event = 'conversation_started' "
        f"AND ts >= {T} - INTERVAL 7 DAY) OR event IN ('appointment_booked', 'form_submitted')",
    },
    {
        "name": "Signed up in the last 30 days",
        "rule": "created_at >= now() - interval '30 days'",
        "meaning": "Created in the last 30 days.",
        "sql": f"SELECT user_id FROM users WHERE created_at >= {T} - INTERVAL 30 DAY",
    },
    {
        "name": "Aged 20 to 30",
        "rule": "age BETWEEN 20 AND 30",
        "meaning": "Age group 20-30 (both ends included).",
        "sql": "SELECT user_id FROM users WHERE age BETWEEN 20 AND 30",
    },
]

NAMES = [c["name"] for c in COOKBOOK]


@pytest.fixture(scope="module")
def duck(sample_store):
    """DuckDB over the sample store's Parquet files with views ev, users, univ."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    ev_files = ", ".join(f"'{f}'" for f in sample_store.event_files())
    user_files = ", ".join(f"'{f}'" for f in sample_store.user_files())
    con.execute(
        f"CREATE VIEW events AS SELECT * FROM read_parquet([{ev_files}], union_by_name = true)"
    )
    con.execute(
        f"CREATE VIEW users AS SELECT * FROM read_parquet([{user_files}], union_by_name = true)"
    )
    con.execute(f"CREATE VIEW ev AS SELECT * FROM events WHERE ts < {T}")
    con.execute("CREATE VIEW univ AS SELECT user_id FROM users UNION SELECT user_id FROM ev")
    yield con
    con.close()


def sql_members(con, sql: str) -> list[str]:
    return sorted({r[0] for r in con.execute(sql).fetchall()})


def test_cookbook_names_unique():
    assert len(set(NAMES)) == len(NAMES)


@pytest.mark.parametrize("case", COOKBOOK, ids=NAMES)
def test_cookbook_rule_matches_sql(sample_store, duck, case):
    got = sample_store.members(case["rule"], as_of=AS_OF)["user_id"].to_list()
    expected = sql_members(duck, case["sql"])
    assert len(got) > 0, f"{case['name']!r} has no members on the sample data"
    assert got == expected
    assert sample_store.count(case["rule"], as_of=AS_OF) == len(expected)


def test_examples_rules_parse_and_have_members(sample_store):
    """Every entry of segcore.sample.examples.EXAMPLES (the demo's segments) fits the sample data."""
    schema = schema_of(sample_store)
    for ex in EXAMPLES:
        parse_rule(ex["rule"], schema)
        assert sample_store.count(ex["rule"], as_of=AS_OF) > 0, ex["name"]
