"""Rule text -> condition tree, and every error family of docs/rules.md section 8.

Expected trees and messages are written by hand; positions are 1-based
(line, column) of the offending token.
"""

from __future__ import annotations

import sqlite3
import time

import pytest

from segcore.errors import RuleError
from segcore.lang.parser import MAX_DEPTH, duration_us, parse_event_filter, parse_rule
from segcore.lang.tree import (
    And,
    Arith,
    Behavior,
    Between,
    Call,
    Col,
    Compare,
    InList,
    InSegment,
    IsBool,
    IsNull,
    Like,
    Lit,
    Neg,
    Not,
    Or,
    Schema,
    Sequence,
)
from segcore.segments import create_segment, edit_segment

DAY = 86_400_000_000
MINUTE = 60_000_000
WEEK = 7 * DAY

SCHEMA = Schema(
    users={
        "user_id": "string",
        "country": "string",
        "city": "string",
        "age": "int",
        "email": "string",
        "email_opt_in": "bool",
        "created_at": "timestamp",
        "subscription_end_date": "date",
        "total_spent": "float",
        "tags": "list",
        "title": "string",
        "department": "string",
        "lead_score": "int",
        "Total Spent": "float",
        "gender": "string",
    },
    events={
        "user_id": "string",
        "event": "string",
        "ts": "timestamp",
        "page": "string",
        "amount": "float",
        "product": "string",
        "price": "float",
        "quantity": "int",
    },
    event_names=frozenset({"charged", "page_viewed", "added_to_cart", "email_opened"}),
    segments=frozenset({"VIP", "Churn risk"}),
)


def P(text: str):
    return parse_rule(text, SCHEMA)


def S(v):
    return Lit(v, "string")


def Int(v):
    return Lit(v, "int")


# --------------------------------------------------------------------------- good rules
GOOD = [
    ("country = 'US'", Compare("=", Col("country"), S("US"))),
    ("country <> 'US'", Compare("!=", Col("country"), S("US"))),
    ("country != 'US'", Compare("!=", Col("country"), S("US"))),
    (
        "age >= 18 AND age < 65",
        And((Compare(">=", Col("age"), Int(18)), Compare("<", Col("age"), Int(65)))),
    ),
    (
        "age > 1 AND age > 2 AND age > 3",
        And(tuple(Compare(">", Col("age"), Int(i)) for i in (1, 2, 3))),
    ),
    (
        "(age > 1 AND age > 2) AND age > 3",
        And(tuple(Compare(">", Col("age"), Int(i)) for i in (1, 2, 3))),
    ),
    (
        "age > 1 OR (age > 2 OR age > 3)",
        Or(tuple(Compare(">", Col("age"), Int(i)) for i in (1, 2, 3))),
    ),
    (
        "age > 1 OR age > 2 AND age > 3",
        Or(
            (
                Compare(">", Col("age"), Int(1)),
                And((Compare(">", Col("age"), Int(2)), Compare(">", Col("age"), Int(3)))),
            )
        ),
    ),
    ("NOT email_opt_in", Not(Col("email_opt_in"))),
    ("email_opt_in", Col("email_opt_in")),
    ("email_opt_in IS TRUE", IsBool(Col("email_opt_in"), True)),
    ("email_opt_in IS NOT FALSE", IsBool(Col("email_opt_in"), False, negated=True)),
    ("country IS NULL", IsNull(Col("country"))),
    ("country IS NOT NULL", IsNull(Col("country"), negated=True)),
    ("NOT country IS NULL", IsNull(Col("country"), negated=True)),
    ("country IN ('US', 'DE')", InList(Col("country"), (S("US"), S("DE")))),
    ("country NOT IN ('US')", InList(Col("country"), (S("US"),), negated=True)),
    ("age BETWEEN 20 AND 30", Between(Col("age"), Int(20), Int(30))),
    ("age NOT BETWEEN 20 AND 30", Between(Col("age"), Int(20), Int(30), negated=True)),
    ("email LIKE '%@company.com'", Like(Col("email"), S("%@company.com"))),
    ("email NOT LIKE 'a_%'", Like(Col("email"), S("a_%"), negated=True)),
    ("email ILIKE '%@COMPANY.com'", Like(Col("email"), S("%@COMPANY.com"), True)),
    ("NOT (email ILIKE 'x')", Like(Col("email"), S("x"), True, negated=True)),
    (
        "total_spent / 2 > 1.5",
        Compare(">", Arith("/", Col("total_spent"), Int(2)), Lit(1.5, "float")),
    ),
    ("age * 2 + 1 > -3", Compare(">", Arith("+", Arith("*", Col("age"), Int(2)), Int(1)), Int(-3))),
    ("-age < 3", Compare("<", Neg(Col("age")), Int(3))),
    ("age = NULL", Compare("=", Col("age"), Lit(None, "null"))),
    ("lower(country) = 'us'", Compare("=", Call("lower", (Col("country"),)), S("us"))),
    ("UPPER(country) = 'US'", Compare("=", Call("upper", (Col("country"),)), S("US"))),
    ("length(tags) > 2", Compare(">", Call("length", (Col("tags"),)), Int(2))),
    ("contains(title, 'Junior')", Call("contains", (Col("title"), S("Junior")))),
    ("starts_with(title, 'J')", Call("starts_with", (Col("title"), S("J")))),
    ("ends_with(email, '.com')", Call("ends_with", (Col("email"), S(".com")))),
    ("has(tags, 'VIP')", Call("has", (Col("tags"), S("VIP")))),
    (
        "coalesce(total_spent, 0) > 10",
        Compare(">", Call("coalesce", (Col("total_spent"), Int(0))), Int(10)),
    ),
    (
        "created_at > now() - interval '14 days'",
        Compare(">", Col("created_at"), Arith("-", Call("now"), Lit(14 * DAY, "interval"))),
    ),
    (
        "created_at > current_timestamp - INTERVAL '1' DAY",
        Compare(">", Col("created_at"), Arith("-", Call("now"), Lit(DAY, "interval"))),
    ),
    (
        "subscription_end_date = today() + 6",
        Compare("=", Col("subscription_end_date"), Arith("+", Call("today"), Int(6))),
    ),
    (
        "subscription_end_date = current_date",
        Compare("=", Col("subscription_end_date"), Call("today")),
    ),
    # plain date strings compared with date/timestamp columns become dates/timestamps
    (
        "subscription_end_date = '2026-07-06'",
        Compare("=", Col("subscription_end_date"), Lit("2026-07-06", "date")),
    ),
    (
        "subscription_end_date > DATE '2026-07-06'",
        Compare(">", Col("subscription_end_date"), Lit("2026-07-06", "date")),
    ),
    (
        "created_at >= '2026-07-06'",
        Compare(">=", Col("created_at"), Lit("2026-07-06T00:00:00", "timestamp")),
    ),
    (
        "created_at < '2026-07-06 12:30:00'",
        Compare("<", Col("created_at"), Lit("2026-07-06T12:30:00", "timestamp")),
    ),
    (
        "created_at < TIMESTAMP '2026-07-06T12:30:00+02:00'",
        Compare("<", Col("created_at"), Lit("2026-07-06T10:30:00", "timestamp")),
    ),
    (
        "subscription_end_date IN ('2026-07-06', '2026-07-07')",
        InList(
            Col("subscription_end_date"), (Lit("2026-07-06", "date"), Lit("2026-07-07", "date"))
        ),
    ),
    # case-insensitive keywords, functions and (unambiguous) column names
    (
        "COUNTRY = 'US' and Age > 3 Or NOT Email_Opt_In",
        Or(
            (
                And((Compare("=", Col("country"), S("US")), Compare(">", Col("age"), Int(3)))),
                Not(Col("email_opt_in")),
            )
        ),
    ),
    (
        "DID('charged') AND Event_Count('charged') > 1",
        And((Behavior("did", "charged"), Compare(">", Behavior("event_count", "charged"), Int(1)))),
    ),
    # quoted identifiers hold spaces
    ('"Total Spent" > 10000', Compare(">", Col("Total Spent"), Int(10000))),
    # event names and string values are case-sensitive
    ("country = 'us'", Compare("=", Col("country"), S("us"))),
    # behaviour
    ("did('charged')", Behavior("did", "charged")),
    ("did('*', within => '30 days')", Behavior("did", "*", within=30 * DAY)),
    (
        "event_count('page_viewed', where => page = 'pricing') > 2",
        Compare(
            ">",
            Behavior("event_count", "page_viewed", where=Compare("=", Col("page"), S("pricing"))),
            Int(2),
        ),
    ),
    (
        "event_sum('charged', amount, within => '90 days') > 700",
        Compare(">", Behavior("event_sum", "charged", "amount", within=90 * DAY), Int(700)),
    ),
    (
        "event_sum('charged', 'amount') > 700",
        Compare(">", Behavior("event_sum", "charged", "amount"), Int(700)),
    ),
    (
        "event_avg('charged', amount) > 1",
        Compare(">", Behavior("event_avg", "charged", "amount"), Int(1)),
    ),
    (
        "event_min('charged', product) = 'TV'",
        Compare("=", Behavior("event_min", "charged", "product"), S("TV")),
    ),
    (
        "event_distinct('charged', product) >= 2",
        Compare(">=", Behavior("event_distinct", "charged", "product"), Int(2)),
    ),
    ("did('charged', within => interval '3 days')", Behavior("did", "charged", within=3 * DAY)),
    ("did('charged', within => '1 week')", Behavior("did", "charged", within=WEEK)),
    ("did('charged', within => '36h')", Behavior("did", "charged", within=36 * 3_600_000_000)),
    (
        "did('charged', since => '2026-06-01', until => DATE '2026-07-01')",
        Behavior(
            "did",
            "charged",
            since=Lit("2026-06-01T00:00:00", "timestamp"),
            until=Lit("2026-07-01", "date"),
        ),
    ),
    (
        "did('charged', since => now() - interval '60 days', until => now() - interval '30 days')",
        Behavior(
            "did",
            "charged",
            since=Arith("-", Call("now"), Lit(60 * DAY, "interval")),
            until=Arith("-", Call("now"), Lit(30 * DAY, "interval")),
        ),
    ),
    (
        "first_seen('charged', where => amount > 500) >= now() - interval '7 days'",
        Compare(
            ">=",
            Behavior("first_seen", "charged", where=Compare(">", Col("amount"), Int(500))),
            Arith("-", Call("now"), Lit(7 * DAY, "interval")),
        ),
    ),
    (
        "last_seen('*') < '2026-06-01'",
        Compare("<", Behavior("last_seen", "*"), Lit("2026-06-01T00:00:00", "timestamp")),
    ),
    (
        "event_periods('charged', period => 'week', within => '7 weeks') >= 5",
        Compare(">=", Behavior("event_periods", "charged", within=7 * WEEK, period=WEEK), Int(5)),
    ),
    (
        "did_then('added_to_cart', 'charged', gap => '10 minutes')",
        Sequence("did_then", "added_to_cart", "charged", 10 * MINUTE),
    ),
    (
        "did_then_not('added_to_cart', 'charged', gap => '10 minutes', within => '30 days', "
        "where => price > 5, then_where => amount > 10)",
        Sequence(
            "did_then_not",
            "added_to_cart",
            "charged",
            10 * MINUTE,
            within=30 * DAY,
            where=Compare(">", Col("price"), Int(5)),
            then_where=Compare(">", Col("amount"), Int(10)),
        ),
    ),
    ("in_segment('VIP')", InSegment("VIP")),
    ("in_segment('vip')", InSegment("VIP")),  # segment names resolve case-insensitively
    ("NOT in_segment('Churn risk')", Not(InSegment("Churn risk"))),
    ("age > 3 -- a comment", Compare(">", Col("age"), Int(3))),
    ("age > 3 /* a comment */", Compare(">", Col("age"), Int(3))),
    (
        "age > 3\n  AND\tcountry = 'US'",
        And((Compare(">", Col("age"), Int(3)), Compare("=", Col("country"), S("US")))),
    ),
    ("age = 1.5e3", Compare("=", Col("age"), Lit(1500.0, "float"))),
]


@pytest.mark.parametrize("text,tree", GOOD, ids=[g[0] for g in GOOD])
def test_parse_good(text, tree):
    assert P(text) == tree


def test_parse_event_filter_uses_event_columns():
    assert parse_event_filter("page = 'pricing' AND amount > 3", SCHEMA) == And(
        (Compare("=", Col("page"), S("pricing")), Compare(">", Col("amount"), Int(3)))
    )
    with pytest.raises(RuleError, match="unknown event column 'country'"):
        parse_event_filter("country = 'US'", SCHEMA)


# --------------------------------------------------------------------------- bad rules
BAD = [
    # unknown column (with a suggestion)
    ("contry = 'US'", "unknown attribute 'contry' (did you mean 'country' or 'city'?)", 1, 1),
    (
        "country = 'US' AND agee > 3",
        "unknown attribute 'agee' (did you mean 'age' or 'gender'?)",
        1,
        20,
    ),
    (
        "age > 3\n AND contry = 'US'",
        "unknown attribute 'contry' (did you mean 'country' or 'city'?)",
        2,
        6,
    ),
    (
        "page = 'pricing'",
        "unknown attribute 'page' (did you mean 'age'?); 'page' is an event "
        "property: use it inside an event function's where => ...",
        1,
        1,
    ),
    (
        "did('charged', where => country = 'US')",
        "unknown event column 'country' (did you mean 'amount'?)",
        1,
        25,
    ),
    ('country = "US"', "unknown attribute 'US'; to compare with the text US, quote it: 'US'",
     1, 11),
    # unknown event name
    ("did('chargd')", "unknown event 'chargd' (did you mean 'charged'?)", 1, 5),
    ("did_then('added_to_cart', 'buy', gap => '1 day')", "unknown event 'buy'", 1, 27),
    # type mismatch
    ("age > 'abc'", "type mismatch: cannot compare age (an integer) with 'abc' (a text)", 1, 7),
    (
        "email_opt_in = 1",
        "type mismatch: cannot compare email_opt_in (a boolean) with 1 (an integer)",
        1,
        16,
    ),
    ("tags = 'x'", "type mismatch: cannot compare tags (a list) with 'x' (a text)", 1, 8),
    ("age + 'x' > 1", "type mismatch: cannot compute an integer + a text in age + 'x'", 1, 1),
    ("country IN ('US', 3)", "type mismatch in IN: 3 (an integer) against country (a text)", 1, 19),
    (
        "age BETWEEN 'a' AND 3",
        "type mismatch in BETWEEN: 'a' (a text) against age (an integer)",
        1,
        13,
    ),
    ("country LIKE 3", "LIKE works on text, but 3 is an integer", 1, 14),
    ("has(tags, 1)", "has() needs a text here, but 1 is an integer", 1, 11),
    ("upper(age) = 'x'", "upper() needs a text here, but age is an integer", 1, 7),
    (
        "event_sum('charged', product) > 1",
        "event_sum() needs a numeric property, but 'product' is a text",
        1,
        22,
    ),
    ("age", "the rule must be a condition (true or false), but age is an integer", 1, 1),
    ("age IS TRUE", "IS TRUE/FALSE needs a condition, but age is an integer", 1, 1),
    ("subscription_end_date > '2026-13-06'", "'2026-13-06' is not a date like '2026-01-31'", 1, 25),
    (
        "did('charged', where => amount > 'x')",
        "type mismatch: cannot compare amount (a number) with 'x' (a text)",
        1,
        34,
    ),
    ("coalesce(age, 'x') > 1", "coalesce() mixes an integer and a text", 1, 15),
    # unknown function
    ("foo(age) > 1", "unknown function 'foo'", 1, 1),
    (
        "event_cnt('charged') > 1",
        "unknown function 'event_cnt' (did you mean 'event_count' or 'event_min' or 'event_sum'?)",
        1,
        1,
    ),
    # misplaced / unknown argument names
    (
        "did('charged', wthin => '3 days')",
        "unknown argument 'wthin' for did() (expected within, since, until, where)",
        1,
        25,
    ),
    (
        "did('charged', gap => '1 day')",
        "unknown argument 'gap' for did() (expected within, since, until, where)",
        1,
        23,
    ),
    (
        "did('charged', period => 'week')",
        "unknown argument 'period' for did() (expected within, since, until, where)",
        1,
        26,
    ),
    (
        "did('charged', where => amount > 1, 'x')",
        "positional argument after named arguments in did()",
        1,
        37,
    ),
    (
        "did('charged', within => '3 days', within => '4 days')",
        "argument 'within' given twice to did()",
        1,
        46,
    ),
    ("lower(country => 'x') = 'x'", "lower() takes no named arguments", 1, 18),
    # wrong arity
    (
        "event_count('charged', amount) > 1",
        "event_count() takes 1 positional argument: event_count(event, ...)",
        1,
        1,
    ),
    (
        "event_sum('charged') > 1",
        "event_sum() takes 2 positional arguments: event_sum(event, property, ...)",
        1,
        1,
    ),
    ("did('charged', 'x')", "did() takes 1 positional argument: did(event, ...)", 1, 1),
    (
        "did_then('added_to_cart', gap => '1 day')",
        "did_then() takes two event names: did_then(A, B, gap => '10 minutes', ...)",
        1,
        1,
    ),
    (
        "did_then('added_to_cart', 'charged')",
        "did_then() needs gap => '10 minutes' (the time B may follow A)",
        1,
        1,
    ),
    (
        "event_periods('charged', within => '7 weeks') > 1",
        "event_periods() needs period => 'week' (or 'day')",
        1,
        1,
    ),
    ("length(country, 1) > 1", "length() takes 1 argument, got 2", 1, 1),
    ("contains(title, 'a', 'b')", "contains() takes 2 arguments, got 3", 1, 1),
    ("lower() = 'x'", "syntax error: lower() is missing an argument", 1, 7),
    (
        "ends_with(title, 'x', 'y')",
        "syntax error: too many arguments (3 given, this function takes 2)",
        1,
        26,
    ),
    ("coalesce(age) > 1", "coalesce() takes two or more arguments", 1, 1),
    ("now(1) > created_at", "now() takes no arguments", 1, 1),
    (
        "in_segment('a', 'b')",
        "in_segment() takes one segment name as a string: in_segment('VIP')",
        1,
        1,
    ),
    ("did(charged)", "did() needs the event name as a string, like 'charged'", 1, 5),
    # within together with since/until
    (
        "did('charged', within => '3 days', since => DATE '2026-01-01')",
        "did(): use either within => or since/until =>, not both",
        1,
        26,
    ),
    (
        "did('charged', until => now(), within => '3 days')",
        "did(): use either within => or since/until =>, not both",
        1,
        42,
    ),
    (
        "did('charged', since => created_at)",
        "since must be a fixed instant (literals, now(), today() and intervals)",
        1,
        25,
    ),
    # intervals
    (
        "did('charged', within => '5 months')",
        "bad within '5 months': months have no fixed length; use days or weeks",
        1,
        26,
    ),
    (
        "did('charged', within => '5 fortnights')",
        "bad within '5 fortnights': unknown unit "
        "'fortnights' (use second, minute, hour, day or week)",
        1,
        26,
    ),
    ("did('charged', within => '0 days')", "within must be positive", 1, 26),
    ("did('charged', within => 3)", "within needs a duration like '30 days'", 1, 26),
    (
        "did('charged', within => '100000 weeks')",
        "bad within '100000 weeks': longer than 100 years",
        1,
        26,
    ),
    (
        "created_at > now() - interval '2 years'",
        "bad interval '2 years': years have no fixed length; use days or weeks",
        None,
        None,
    ),
    # absurd numbers
    ("country = 'US' AND age > 1e999", "number 1e999 is out of range", 1, 26),
    ("age > 99999999999999999999", "number 99999999999999999999 is out of range (integers go up to 9223372036854775807)", 1, 7),
    # syntax errors (position of the problem)
    ("country = 'US' AND", "syntax error: AND is missing its operand", 1, 16),
    ("country = = 'US'", "syntax error: EQ is missing its operand", 1, 11),
    ("age > 3 OR OR age < 1", "syntax error: OR is missing its operand", 1, 12),
    ("event_count('charged') > 1 XOR age > 3", "syntax error: unexpected token", 1, 28),
    ("country = 'US' AND (age > 3", "missing ')'", 1, 28),
    ("country = 'US')", "unbalanced ')'", 1, 15),
    ("age > 3; age < 4", "a rule is one condition; remove the ';'", None, None),
    ("SELECT 1", "a rule is a condition (a WHERE clause), not a statement", 1, 8),
    ("   ", "rule is empty", None, None),
    # unterminated strings and identifiers
    ("country = 'US", "unterminated string", 1, 11),
    ("\"country = 'US'", "unterminated quoted identifier", 1, 1),
    ("country = 'US' AND\n title = 'it''s", "unterminated string", 2, 10),
    # NUL and control characters
    ("country = 'U\x00S'", "control character U+0000 in rule", 1, 13),
    ("country = 'US'\x07", "control character U+0007 in rule", 1, 15),
    # in_segment of an unknown segment (names known to the schema)
    ("in_segment('VIPS')", "unknown segment 'VIPS' (did you mean 'VIP'?)", 1, 12),
]


@pytest.mark.parametrize("text,message,line,col", BAD, ids=[b[0] for b in BAD])
def test_parse_errors(text, message, line, col):
    with pytest.raises(RuleError) as info:
        P(text)
    err = info.value
    assert (err.message, err.line, err.col) == (message, line, col)
    where = f" (line {line}, column {col})" if line is not None else ""
    assert str(err) == message + where


def test_rule_must_be_text():
    with pytest.raises(RuleError, match="a rule must be text, got int"):
        parse_rule(3, SCHEMA)  # type: ignore[arg-type]


def test_unknown_event_names_are_not_checked_without_a_list():
    schema = Schema(users=SCHEMA.users, events=SCHEMA.events, event_names=None)
    assert parse_rule("did('anything')", schema) == Behavior("did", "anything")


# --------------------------------------------------------------------------- limits
def test_nesting_1000_parentheses_is_a_rule_error_quickly():
    text = "(" * 1000 + "age > 3" + ")" * 1000
    start = time.perf_counter()
    with pytest.raises(RuleError) as info:
        P(text)
    assert time.perf_counter() - start < 1.0
    assert info.value.message == f"rule is nested too deeply (more than {MAX_DEPTH} levels)"
    assert (info.value.line, info.value.col) == (1, MAX_DEPTH + 1)


def test_nesting_up_to_the_limit_parses():
    """Regression (parser_paren_depth): sqlglot ran out of stack at ~48 parentheses, below
    the documented limit, and gave an error without position."""
    depth = MAX_DEPTH
    assert P("(" * depth + "age > 3" + ")" * depth) == Compare(">", Col("age"), Int(3))


def test_nested_not_1000_is_a_rule_error():
    with pytest.raises(RuleError, match="rule is nested too deeply"):
        P("NOT " * 1000 + "email_opt_in")


def test_long_operator_chain_is_a_rule_error_not_recursion_error():
    """Regression (parser_arith_chain_recursion): ``age + 1 + 1 ... > 3`` with 1,000
    terms raised RecursionError from the tree conversion."""
    with pytest.raises(RuleError) as info:
        P("age " + "+ 1 " * 1000 + "> 3")
    assert info.value.message.startswith("rule is nested too deeply (more than 160 operators")


def test_150_term_arithmetic_chain_parses():
    tree = P("age " + "+ 1 " * 150 + "> 3")
    assert isinstance(tree, Compare) and isinstance(tree.left, Arith)


def test_huge_or_of_5000_terms_parses_and_evaluates_in_bounded_time(tiny):
    store = tiny(users=[{"user_id": "u1", "age": 7}, {"user_id": "u2", "age": 9999}])
    text = " OR ".join(f"age = {i}" for i in range(5000))
    start = time.perf_counter()
    tree = P(text)
    assert isinstance(tree, Or) and len(tree.args) == 5000
    assert store.members(text, as_of="2026-06-30")["user_id"].to_list() == ["u1"]
    assert time.perf_counter() - start < 20


def test_too_long_rule_is_a_size_error():
    with pytest.raises(
        RuleError,
        match=r"rule is too long \(200,012 characters; the limit "
        r"is 100,000\)",
    ):
        P("country = '" + "x" * 200_000 + "'")


def test_too_many_terms_is_a_size_error():
    text = " OR ".join(["age=1"] * 7_000)  # 3 nodes a term
    with pytest.raises(RuleError, match=r"rule is too large \(more than 20,000 terms\)"):
        P(text)


# --------------------------------------------------------------------------- durations
@pytest.mark.parametrize(
    "text,us",
    [
        ("30 days", 30 * DAY),
        ("1 day", DAY),
        ("10 minutes", 10 * MINUTE),
        ("1d", DAY),
        ("2w", 2 * WEEK),
        ("week", WEEK),
        ("90 seconds", 90_000_000),
        ("1.5 hours", 5_400_000_000),
        ("3 HOURS", 3 * 3_600_000_000),
        ("250 ms", 250_000),
    ],
)
def test_duration_us(text, us):
    assert duration_us(text) == us


@pytest.mark.parametrize(
    "text,message",
    [
        ("3 months", "bad interval '3 months': months have no fixed length; use days or weeks"),
        ("days 3", "bad interval 'days 3': write a number and a unit, e.g. '30 days'"),
        ("0.5 us", "bad interval '0.5 us': finer than a microsecond"),
    ],
)
def test_duration_errors(text, message):
    """Regression (duration_plural_months): '3 months' was reported as an unknown unit
    instead of 'months have no fixed length'."""
    with pytest.raises(RuleError) as info:
        duration_us(text)
    assert info.value.message == message


# --------------------------------------------------------------------------- segments
def test_in_segment_unknown_segment_at_evaluation(writable_sample):
    with pytest.raises(RuleError, match=r"unknown segment 'Nope'"):
        writable_sample.count("in_segment('Nope')", as_of="2026-06-30")


def test_in_segment_cycle_is_refused_at_save_and_at_evaluation(writable_sample):
    store = writable_sample
    create_segment(store, "A", "age > 30")
    create_segment(store, "B", "in_segment('A') AND country = 'US'")
    with pytest.raises(RuleError, match=r"segment cycle: A -> B -> A"):
        edit_segment(store, "A", rule="in_segment('B')")
    cyc = '{"version":1,"tree":{"kind":"in_segment","name":"B"}}'
    with pytest.raises(RuleError, match=r"segment cycle: A -> B -> A"):  # the catalog too
        store.catalog.edit("A", rule_text="in_segment('B')", rule_json=cyc)
    # bypass the catalog: the evaluator must still refuse the cycle
    con = sqlite3.connect(store.catalog_path)
    con.execute("UPDATE segments SET rule_text = 'in_segment(''B'')', rule_json = ? "
                "WHERE name = 'A'", (cyc,))
    con.commit()
    con.close()
    with pytest.raises(RuleError, match=r"segment cycle: A -> B -> A"):
        store.count(segment="A", as_of="2026-06-30")
    with pytest.raises(RuleError, match=r"segment cycle: B -> A -> B"):
        store.count("in_segment('B')", as_of="2026-06-30")


# --------------------------------------------------------------------------- CASE WHEN
def test_case_when_tree_type_text_and_json() -> None:
    from segcore.lang.parser import parse_expression
    from segcore.lang.printer import to_text
    from segcore.lang.tree import Case, Schema, from_json, to_json

    s = Schema(events={"InvoiceNo": "string", "q": "int", "p": "float", "d": "date"})
    node, typ = parse_expression(
        "CASE WHEN InvoiceNo LIKE 'C%' THEN 'cancelled' ELSE 'purchased' END", s
    )
    assert typ == "string"
    assert isinstance(node, Case) and len(node.conditions) == 1
    assert node.default == Lit("purchased", "string")
    assert to_text(node) == (
        "CASE WHEN \"InvoiceNo\" LIKE 'C%' THEN 'cancelled' ELSE 'purchased' END"
    )
    assert from_json(to_json(node)) == node
    assert parse_expression(to_text(node), s)[0] == node
    nested = parse_rule("NOT CASE WHEN q > 1 THEN TRUE END AND -CASE WHEN q > 2 THEN p END < 3",
                        Schema(users={"q": "int", "p": "float"}))
    assert parse_rule(to_text(nested), Schema(users={"q": "int", "p": "float"})) == nested
    simple, typ = parse_expression("CASE q WHEN 1 THEN 1 WHEN 2 THEN 2.5 END", s)
    assert typ == "float" and simple.default is None
    assert to_text(simple) == "CASE WHEN q = 1 THEN 1 WHEN q = 2 THEN 2.5 END"
    when_date, typ = parse_expression("CASE WHEN q > 1 THEN d ELSE '2026-01-31' END", s)
    assert typ == "date" and when_date.default == Lit("2026-01-31", "date")
    assert parse_expression("q * p", s)[1] == "float"


@pytest.mark.parametrize(
    "text,message",
    [
        ("CASE WHEN q > 1 THEN 'a' ELSE 3 END", "CASE mixes a text and an integer"),
        ("CASE WHEN q THEN 1 END", "WHEN needs a condition, but q is an integer"),
        ("CASE WHEN nope = 1 THEN 1 END", "unknown event column 'nope'"),
    ],
)
def test_case_when_errors(text: str, message: str) -> None:
    from segcore.lang.parser import parse_expression
    from segcore.lang.tree import Schema

    with pytest.raises(RuleError) as err:
        parse_expression(text, Schema(events={"q": "int"}))
    assert message in str(err.value)
