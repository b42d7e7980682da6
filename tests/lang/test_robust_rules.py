"""Hostile rule text: random, token soup, mutated cookbook rules, extremes, unicode.

The contract (docs/rules.md section 8, docs/robustness.md): ``parse_rule`` returns a condition
tree or raises ``RuleError`` with a one-line message, and with a (line, column) inside the
text when the problem comes from the text; never any other exception, in bounded time
and memory. An accepted rule evaluates to members or raises a ``SegcoreError``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segcore import Store
from segcore.engine.polars.evaluate import schema_of
from segcore.errors import RuleError, SegcoreError
from segcore.lang.parser import parse_rule
from segcore.lang.tree import Node
from segcore.sample.examples import EXAMPLES
from tests.docs.test_cookbook import COOKBOOK

AS_OF = "2026-06-30"
RULES = [c["rule"] for c in COOKBOOK] + [e["rule"] for e in EXAMPLES]
TOKENS = [
    "(",
    ")",
    ",",
    "'",
    '"',
    "AND",
    "OR",
    "NOT",
    "=",
    "!=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "IN",
    "BETWEEN",
    "LIKE",
    "ILIKE",
    "IS",
    "NULL",
    "TRUE",
    "FALSE",
    "=>",
    "did",
    "event_count",
    "event_sum",
    "event_avg",
    "first_seen",
    "did_then",
    "did_then_not",
    "event_periods",
    "in_segment",
    "has",
    "coalesce",
    "lower",
    "now()",
    "today()",
    "INTERVAL",
    "'30 days'",
    "DATE",
    "'2026-01-01'",
    "TIMESTAMP",
    "within",
    "since",
    "until",
    "where",
    "gap",
    "period",
    "then_where",
    "age",
    "country",
    "tags",
    "amount",
    "page",
    "email_opt_in",
    "created_at",
    "subscription_end_date",
    "total_spent",
    "'charged'",
    "'*'",
    "1",
    "0",
    "-1",
    "3.5",
    "1e308",
    "1e999",
    "99999999999999999999",
    "'US'",
    '"Total Spent"',
    ";",
    "SELECT",
    "::",
    "[",
    "]",
    "{",
    "}",
    "CASE",
    "WHEN",
    "THEN",
    "END",
    "CAST",
    "AS",
    "$1",
    "?",
    "@x",
    ".",
    "`",
    "\n",
    "\r",
    "--",
    "/*",
    "*/",
    "x.y",
    "'😀'",
    "'\u202eRTL'",
    "\\",
]
CHARS = "()'\",=<>!+-*/ 0123456789abeNOT\n\r\t\\;%_.:{}[]é😀\u202e\u0301\x00\x07"
_SETTINGS = settings(
    max_examples=250, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@pytest.fixture(scope="module")
def schema(sample_store):
    return schema_of(sample_store)


def outcome(text: str, schema) -> Node | RuleError:
    """Parse and check the contract: a tree, or a one-line RuleError positioned in the text."""
    try:
        return parse_rule(text, schema)
    except RuleError as err:  # any other exception fails the test
        message = str(err)
        assert message and "\n" not in message and "\r" not in message, repr(message)
        if err.line is not None or err.col is not None:
            lines = text.split("\n")
            assert 1 <= err.line <= len(lines), (text, message)
            assert 1 <= err.col <= len(lines[err.line - 1]) + 1, (text, message)
        return err


# ---------------------------------------------------------------------- property tests
@_SETTINGS
@given(text=st.text(max_size=80))
def test_random_text_is_a_tree_or_a_rule_error(schema, text):
    outcome(text, schema)


@_SETTINGS
@given(tokens=st.lists(st.sampled_from(TOKENS), min_size=1, max_size=20))
def test_random_tokens_are_a_tree_or_a_rule_error(schema, tokens):
    outcome(" ".join(tokens), schema)


def _char_mutation(data, text: str) -> str:
    chars = list(text)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["insert", "delete", "swap"]))
        i = data.draw(st.integers(0, len(chars)))
        if op == "insert":
            chars.insert(i, data.draw(st.sampled_from(CHARS)))
        elif chars and op == "delete":
            del chars[min(i, len(chars) - 1)]
        elif len(chars) > 1:
            j = data.draw(st.integers(0, len(chars) - 1))
            i = min(i, len(chars) - 1)
            chars[i], chars[j] = chars[j], chars[i]
    return "".join(chars)


def _token_mutation(data, text: str) -> str:
    parts = re.findall(r"'[^']*'|\w+|=>|[<>!]=|\S", text)
    for _ in range(data.draw(st.integers(1, 3))):
        op = data.draw(st.sampled_from(["insert", "delete", "swap", "replace"]))
        i = data.draw(st.integers(0, max(len(parts) - 1, 0)))
        if op == "insert":
            parts.insert(i, data.draw(st.sampled_from(TOKENS)))
        elif op == "delete" and parts:
            del parts[i]
        elif op == "replace" and parts:
            parts[i] = data.draw(st.sampled_from(TOKENS))
        elif len(parts) > 1:
            j = data.draw(st.integers(0, len(parts) - 1))
            parts[i], parts[j] = parts[j], parts[i]
    return " ".join(parts)


@_SETTINGS
@given(data=st.data())
def test_character_mutations_of_cookbook_rules(schema, data):
    outcome(_char_mutation(data, data.draw(st.sampled_from(RULES))), schema)


@_SETTINGS
@given(data=st.data())
def test_token_mutations_of_cookbook_rules(schema, data):
    outcome(_token_mutation(data, data.draw(st.sampled_from(RULES))), schema)


# Accepted rules evaluate: building blocks with extreme values, combined at random.
ATOMS = [
    *RULES,
    "age > 9223372036854775807",
    "age * 1e308 > 1",
    "total_spent / 0 IS NULL",
    "country = '😀'",
    "city = '\u202eשלום\u202c'",
    "title LIKE '%e\u0301%'",
    "created_at > now() - interval '36500 days'",
    "subscription_end_date > today() + 36500",
    "created_at > TIMESTAMP '9999-12-31 23:59:59'",
    "created_at > DATE '0001-01-01'",
    "first_seen('charged') + interval '36500 days' > now()",
    "event_avg('charged', amount) / 0 IS NULL",
    "event_max('charged', amount) < -1e308",
    "did('charged', since => DATE '0001-01-01' - interval '36500 days')",
    "did('charged', since => TIMESTAMP '9999-12-31', until => TIMESTAMP '0001-01-01')",
    "event_periods('charged', period => '1 microsecond', within => '36500 days') > 1",
    "did_then_not('charged', 'charged', gap => '1 microsecond')",
    "did_then('*', '*', gap => '36500 days', where => amount > 1e308)",
    "coalesce(age, lead_score, 0) BETWEEN -9223372036854775807 AND 9223372036854775807",
    "lower(country) IN ('', '''', '\\\\', '%', '_')",
    "NULL",
    "NOT NULL",
    "TRUE",
]


@settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(data=st.data())
def test_accepted_random_rules_evaluate_or_raise_segcore_errors(sample_store, schema, data):
    parts = data.draw(st.lists(st.sampled_from(ATOMS), min_size=1, max_size=4))
    glue = data.draw(
        st.lists(
            st.sampled_from([" AND ", " OR ", " AND NOT ", " OR NOT "]),
            min_size=len(parts) - 1,
            max_size=len(parts) - 1,
        )
    )
    text = (
        "("
        + parts[0]
        + ")"
        + "".join(g + "(" + p + ")" for g, p in zip(glue, parts[1:], strict=True))
    )
    if data.draw(st.booleans()):
        text = _token_mutation(data, text)
    node = outcome(text, schema)
    if isinstance(node, RuleError):
        return
    try:
        n = sample_store.count(node, as_of=AS_OF)
    except SegcoreError as err:
        assert "\n" not in str(err)
    else:
        assert 0 <= n <= 1000


# ---------------------------------------------------------------------- extremes
def _bounded(text: str, schema, seconds: float = 8.0, megabytes: float = 300.0):
    tracemalloc.start()
    start = time.perf_counter()
    try:
        result = outcome(text, schema)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    elapsed = time.perf_counter() - start
    assert elapsed < seconds, f"{elapsed:.1f} s"
    assert peak < megabytes * 1e6, f"{peak / 1e6:.0f} MB"
    return result


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("(" * 10_000 + "age > 1" + ")" * 10_000, "nested too deeply"),
        ("(" * 10_000, "nested too deeply"),
        ("NOT " * 10_000 + "email_opt_in", "nested too deeply"),
        ("NOT (" * 10_000 + "email_opt_in" + ")" * 10_000, "nested too deeply"),
        ("age" + " + 1" * 5_000 + " > 3", "nested too deeply"),
        ("country = '" + "x" * 200_000 + "'", "rule is too long"),
    ],
    ids=["paren10k", "open10k", "not10k", "not_paren10k", "plus5k", "200k_chars"],
)
def test_deep_nesting_and_size_limits_are_clear_errors(schema, text, message):
    err = _bounded(text, schema)
    assert isinstance(err, RuleError)
    assert message in str(err)


@pytest.mark.parametrize(
    "text",
    [
        " AND ".join(f"age > {i}" for i in range(2_000)),
        " OR ".join(f"did('charged', within => '{i + 1} days')" for i in range(1_000)),
        "age IN (" + ",".join(str(i) for i in range(10_000)) + ")",
        "country = '" + "x" * 90_000 + "'",
    ],
    ids=["and2000", "or1000_behaviours", "in10000", "90k_string"],
)
def test_huge_rules_parse_in_bounded_time_and_memory(schema, text):
    assert isinstance(_bounded(text, schema), Node)


def test_huge_rule_evaluates(sample_store):
    text = " OR ".join(f"country = 'c{i}'" for i in range(2_000)) + " OR age > 200"
    start = time.perf_counter()
    assert sample_store.count(text, as_of=AS_OF) == 0
    assert time.perf_counter() - start < 15


@pytest.mark.parametrize(
    ("text", "message", "line", "col"),
    [
        ("age > 1\x00", "control character U+0000", 1, 8),
        ("country = 'a\x07b'", "control character U+0007", 1, 13),
        ("age > 1\n AND \x1b", "control character U+001B", 2, 6),
        ("age > 999999999999999999999999999999", "out of range", 1, 7),
        ("age > 1e400", "out of range", 1, 7),
        ("did('charged', within => '99999999999999999999 days')", "longer than 100 years", 1, 26),
        ("did('charged', within => '-3 days')", "write a number and a unit", 1, 26),
        ("did('charged', within => '0.0000001 seconds')", "finer than a microsecond", 1, 26),
        ("did('charged', within => '0 days')", "must be positive", 1, 26),
        ("created_at > now() - interval '1e10 days'", "write a number and a unit", 1, 31),
        ("did('charged', within => '3 months')", "no fixed length", 1, 26),
        ("created_at > DATE '2026-13-45'", "is not a date", 1, 19),
        ("created_at > TIMESTAMP '0000-01-01'", "is not a timestamp", 1, 24),
    ],
)
def test_control_characters_and_absurd_values_are_positioned_errors(
    schema, text, message, line, col
):
    err = outcome(text, schema)
    assert isinstance(err, RuleError)
    assert message in err.message
    assert (err.line, err.col) == (line, col)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("did()", "did() takes 1 positional argument"),
        ("did('charged', 'x', 'y')", "did() takes 1 positional argument"),
        ("event_sum('charged') > 1", "event_sum() takes 2 positional arguments"),
        ("did('charged', whithin => '3 days')", "unknown argument 'whithin' for did()"),
        ("did('charged', within => '3 days', within => '4 days')", "given twice"),
        ("did('charged', within => '3 days', since => DATE '2026-01-01')", "not both"),
        ("did(within => '3 days', 'charged')", "positional argument after named"),
        ("lower(country, city) = 'x'", "too many arguments"),
        ("coalesce(age) > 1", "coalesce() takes two or more arguments"),
        ("did_then('charged', 'charged')", "needs gap =>"),
        ("event_periods('charged') > 1", "needs period =>"),
        ("in_segment('a', 'b')", "in_segment() takes one segment name"),
        ("now(1) > created_at", "takes no arguments"),
        ("dud('charged')", "unknown function 'dud' (did you mean 'did'"),
        ("did('chargd')", "unknown event 'chargd' (did you mean 'charged'"),
        ("did(charged)", "needs the event name as a string"),
        ("event_sum('charged', page) > 1", "needs a numeric property"),
        ("has(country, 'x')", "has() needs"),
    ],
)
def test_wrong_arity_and_argument_names_are_clear_errors(schema, text, message):
    err = outcome(text, schema)
    assert isinstance(err, RuleError)
    assert message in str(err)
    assert err.line == 1


@pytest.mark.parametrize(
    "text",
    [
        "country = '😀🇺🇸'",
        "country = '\u202eSU\u202c' AND city = 'שלום'",
        "country = 'e\u0301\u0301\u0301'",
        "country IN ('日本', 'Ελλάδα', '🏳️\u200d🌈')",
        "city LIKE '%\U0001f600%'",
        "country = '''; DROP TABLE users; --'",
    ],
)
def test_unicode_string_literals_parse_and_match_nothing(sample_store, schema, text):
    assert isinstance(outcome(text, schema), Node)
    assert sample_store.count(text, as_of=AS_OF) == 0


def test_unicode_quoted_identifiers_are_columns(tiny):
    store = tiny(
        events=[("u1", "achat 🛒", "2026-06-01T10:00:00", {"prix €": 5.0})],
        users=[
            {"user_id": "u1", "名前 😀": "e\u0301", "\u05e9\u05dd": 1},
            {"user_id": "u2", "名前 😀": "x", "\u05e9\u05dd": 2},
        ],
    )
    rule = (
        '"名前 😀" = \'e\u0301\' AND "\u05e9\u05dd" < 2 AND event_sum(\'achat 🛒\', "prix €") = 5'
    )
    assert store.members(rule, as_of="2026-06-02")["user_id"].to_list() == ["u1"]
    err = outcome('"名前 😁" = 1', schema_of(store))
    assert isinstance(err, RuleError)
    assert "unknown attribute '名前 😁' (did you mean '名前 😀'?)" in err.message
    assert (err.line, err.col) == (1, 1)


# ---------------------------------------------------------------------- regressions
@pytest.mark.parametrize(
    "text",
    [
        "event_count('charged') > { = 3",
        "did { = \n -1 FALSE",
        "created_at >= now ( interval - ) '14 days'",
        "lead_score > AND > = now ( interval - + ) '14 days'",
    ],
)
def test_sqlglot_internal_attribute_error_is_a_rule_error(schema, text):
    err = outcome(text, schema)
    assert isinstance(err, RuleError)
    assert str(err).startswith("syntax error")


def test_sqlglot_fallback_warning_is_not_logged(schema, capsys):
    err = outcome("create d_at >= now() - interval '30 dys'", schema)
    assert isinstance(err, RuleError)
    assert capsys.readouterr().err == ""


def test_cli_bad_rule_prints_exactly_one_stderr_line(sample_home):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "segcore",
            "eval",
            "--home",
            str(sample_home),
            "--rule",
            "created _at >= now() - interval '30 dys'\n OR event_count('x') > { = 3",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")


@pytest.mark.parametrize(
    "text",
    [
        "age > 1 /* never closed\n OR age < 3",
        "did('charged', within => '60 da\nys')::json",
        "(age\n+\n1)::json",
    ],
)
def test_error_messages_with_newlines_in_the_text_are_one_line(schema, text):
    err = outcome(text, schema)
    assert isinstance(err, RuleError)


def test_lone_carriage_return_position_is_inside_the_text(schema):
    text = "age > 1\r AND AND"
    err = outcome(text, schema)
    assert isinstance(err, RuleError)
    assert (err.line, err.col) == (1, 14)


def test_like_with_a_column_pattern_is_a_rule_error_not_type_error(sample_store, schema):
    err = outcome("'%@company.com' LIKE email", schema)
    assert isinstance(err, RuleError)
    assert "LIKE needs its pattern written as a string" in err.message
    assert (err.line, err.col) == (1, 22)


def test_rule_of_only_a_comment_is_empty_not_a_semicolon(schema):
    err = outcome("-- age > 1", schema)
    assert isinstance(err, RuleError)
    assert err.message == "rule is empty (only a comment)"


def test_window_bound_before_year_one_is_a_rule_error(sample_store):
    with pytest.raises(RuleError, match="outside the years 1 to 9999"):
        sample_store.count(
            "did('charged', since => DATE '0001-01-01' - interval '36500 days')", as_of=AS_OF
        )


def test_null_first_seen_plus_interval_evaluates(tiny):
    store = tiny(
        events=[("u1", "charged", "2026-06-01T00:00:00")],
        users=[{"user_id": "u1"}, {"user_id": "u2"}],
    )
    rule = "first_seen('charged') + interval '10 days' > now()"
    assert store.members(rule, as_of="2026-06-05")["user_id"].to_list() == ["u1"]
    assert (
        store.count("first_seen('charged') + interval '10 days' IS NULL", as_of="2026-06-05") == 1
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NOT NULL", 0),
        ("NOT (NULL OR NULL)", 0),
        ("NOT (NULL AND NULL)", 0),
        ("(NULL OR NULL) IS NULL", 1000),
        ("NULL LIKE 'a' IS NULL", 1000),
        ("NOT NULL LIKE 'a'", 0),
        ("lower(NULL) IS NULL AND length(NULL) IS NULL", 1000),
        ("coalesce(lower(NULL), 'a') = 'a'", 1000),
        ("contains(NULL, 'a') OR has(NULL, 'a') OR starts_with(NULL, 'a')", 0),
        ("-NULL IS NULL", 1000),
        ("today() + NULL IS NULL", 1000),
        ("did('charged', where => NOT NULL)", 0),
    ],
)
def test_null_literal_operands_evaluate_as_sql_null(sample_store, text, expected):
    # the universe of the sample store at AS_OF is its 1000 users
    assert sample_store.count(text, as_of=AS_OF) == expected


def test_null_literal_or_keeps_the_other_side(sample_store):
    assert sample_store.count("NOT did('charged') OR NULL", as_of=AS_OF) == sample_store.count(
        "NOT did('charged')", as_of=AS_OF
    )


# ---------------------------------------------------------------------- command line
HOSTILE_VALUES = ["", "2026-13-45", "1e999", "'; DROP", "😀", "-5d", "100000w", "NaN"]
COMMANDS = [
    ["eval", "--rule", "TRUE", "--as-of", "{}"],
    ["eval", "--segment", "{}"],
    ["trend", "--rule", "TRUE", "--from", "{}", "--to", "2026-06-30"],
    ["trend", "--rule", "TRUE", "--from", "2026-06-01", "--to", "2026-06-30", "--every", "{}"],
    [
        "funnel",
        "--step",
        "charged",
        "--step",
        "added_to_cart",
        "--window",
        "{}",
        "--from",
        "2026-06-01",
        "--to",
        "2026-06-30",
    ],
    ["events", "--event", "charged", "--from", "2026-06-01", "--to", "2026-06-30", "--by", "{}"],
    ["sql", "--rule", "TRUE", "--dialect", "{}"],
    ["user", "{}"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: "-".join(c[:2]))
def test_cli_hostile_option_values_exit_2_with_one_line(sample_home, command, capsys):
    from segcore.cli import main

    for value in HOSTILE_VALUES:
        argv = [a.replace("{}", value) for a in command] + ["--home", str(sample_home)]
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse refusals
            code = exc.code
        err = capsys.readouterr().err
        assert code in (0, 2), (argv, err)
        if code == 2:
            assert err.startswith("error") and err.count("\n") == 1, (argv, err)


@pytest.mark.parametrize("rule", ["TRUE", "FALSE", "NULL", "NOT NULL", "TRUE OR did('charged')"])
def test_trend_of_a_constant_rule_is_not_an_internal_error(sample_store, rule):
    """Regression: a rule without columns evaluated to one value, not one per user and
    point (numpy reshape error, CLI 'internal error')."""
    df = sample_store.trend(rule, start="2026-06-28", end="2026-06-30")
    always = rule.startswith("TRUE")
    assert df["members"].to_list() == [1000 if always else 0] * 3
    assert df["entered"].to_list() == [0, 0, 0] and df["exited"].to_list() == [0, 0, 0]


# ---------------------------------------------------------------------- condition tree JSON
def _tree(t) -> dict:
    return {"version": 1, "tree": t}


def _col(name: str) -> dict:
    return {"kind": "col", "name": name}


def _lit(value, typ: str) -> dict:
    return {"kind": "lit", "value": value, "type": typ}


def _nots(n: int) -> str:
    return (
        '{"version": 1, "tree": '
        + '{"kind": "not", "arg": ' * n
        + '{"kind": "col", "name": "email_opt_in"}'
        + "}" * n
        + "}"
    )


HOSTILE_TREES = {
    "not_5000": (_nots(5000), "invalid condition tree JSON (RecursionError"),
    "not_200": (_nots(200), "nested too deeply"),
    "bad_literal_type": (_tree(_lit(1, "weird")), "must be a condition"),
    "unknown_column": (_tree(_col("nope")), "unknown attribute 'nope'"),
    "not_a_condition": (_tree(_col("age")), "must be a condition"),
    "wrong_field_types": (
        _tree({"kind": "compare", "op": "DROP", "left": 1, "right": "x"}),
        "invalid condition tree JSON",
    ),
    "unknown_function": (
        _tree({"kind": "behavior", "func": "system", "event": "charged"}),
        "unknown function 'system'",
    ),
    "bad_timestamp": (
        _tree(
            {
                "kind": "compare",
                "op": "=",
                "left": _col("created_at"),
                "right": _lit("not a date", "timestamp"),
            }
        ),
        "is not a timestamp",
    ),
    "empty_and": (_tree({"kind": "and", "args": []}), "rule is empty"),
    "int_literal_text": (
        _tree({"kind": "compare", "op": ">", "left": _col("age"), "right": _lit("abc", "int")}),
        "invalid condition tree JSON",
    ),
    "huge_within": (
        _tree({"kind": "behavior", "func": "did", "event": "charged", "within": 10**30}),
        "longer than 100 years",
    ),
    "type_mismatch": (
        _tree({"kind": "compare", "op": ">", "left": _col("country"), "right": _lit(3, "int")}),
        "type mismatch",
    ),
    "args_not_a_list": (_tree({"kind": "and", "args": 5}), "invalid condition tree JSON"),
    "column_pattern": (
        _tree({"kind": "like", "arg": _col("country"), "pattern": _col("city")}),
        "LIKE needs its pattern",
    ),
    "injected_name": (
        _tree(
            {
                "kind": "compare",
                "op": "=",
                "left": _col('x" OR 1=1 --'),
                "right": _lit("a", "string"),
            }
        ),
        "unknown attribute",
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_TREES))
def test_hostile_condition_tree_json_is_a_rule_error(sample_store, name):
    """Regression: JSON trees (API, CLI --rule '{...}') skipped the parser's checks and
    failed deep in Polars (KeyError, TypeError, ComputeError, RecursionError...)."""
    doc, message = HOSTILE_TREES[name]
    with pytest.raises(RuleError) as err:
        sample_store.count(doc, as_of=AS_OF)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_condition_tree_json_on_the_command_line(sample_home, capsys):
    import json

    from segcore.cli import main

    good = json.dumps(
        _tree({"kind": "compare", "op": ">", "left": _col("age"), "right": _lit(30, "int")})
    )
    assert (
        main(["eval", "--rule", good, "--as-of", AS_OF, "--json", "--home", str(sample_home)]) == 0
    )
    count = json.loads(capsys.readouterr().out)["count"]
    assert count == Store(sample_home).count("age > 30", as_of=AS_OF)
    bad = json.dumps(_tree({"kind": "and", "args": 5}))
    assert main(["eval", "--rule", bad, "--home", str(sample_home)]) == 2
    assert capsys.readouterr().err.startswith("error: invalid condition tree JSON")


# ---------------------------------------------------------------------- absurd dates
@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.count("age > 3", as_of="9999-12-31"),
        lambda s: s.count("did('charged', within => '7 days')", as_of="0001-01-01"),
        lambda s: s.count("age > 3", as_of="9999-12-31T23:00:00Z"),
        lambda s: s.reach("age > 3", as_of="9999-12-31"),
        lambda s: s.user("u000001", as_of="9999-12-31"),
        lambda s: s.trend("age > 3", start="2026-06-01", end="9999-12-31"),
        lambda s: s.trend("age > 3", start="9999-12-01", end="9999-12-31", every="week"),
        lambda s: s.events(["charged"], start="0001-01-01", end="0001-01-02"),
        lambda s: s.funnel(["product_viewed", "charged"], start="2026-06-01", end="9999-12-31"),
        lambda s: s.funnel(["product_viewed", "charged"], start="0001-01-01", end="2026-06-30"),
    ],
)
def test_dates_near_year_1_or_9999_are_usage_errors_not_overflows(sample_store, call):
    """Regression: as-of dates and ranges at the ends of Python's calendar overflowed
    (OverflowError: date value out of range) in windows, steps and range ends."""
    from segcore.errors import UsageError

    with pytest.raises(UsageError, match="is outside the supported years 1000 to 9000"):
        call(sample_store)


def test_dates_at_the_supported_edges_evaluate(sample_store):
    # no event exists before the year 1000; users (no history) were created in 2026
    assert sample_store.count("did('charged', within => '36500 days')", as_of="1000-01-01") == 0
    assert sample_store.count("created_at > now() - interval '36500 days'", as_of="1000-01-01") == (
        sample_store.count("created_at IS NOT NULL", as_of="1000-01-01")
    )
    far = "did_then('charged', 'charged', gap => '36500 days') OR subscription_end_date < today()"
    assert sample_store.count(far, as_of="9000-12-31") == sample_store.count(
        "did_then('charged', 'charged', gap => '36500 days') OR subscription_end_date IS NOT NULL",
        as_of="9000-12-31",
    )
    weeks = sample_store.trend("age > 3", start="9000-12-01", end="9000-12-31", every="week")
    assert weeks.height == 4  # the Sundays of December 9000


# ------------------------------------------------------------ issue 21: clear errors, no wrap
@pytest.mark.parametrize("digits", [20, 4_300, 4_301, 5_000, 60_000])
def test_integer_literals_of_any_length_are_out_of_range_errors(schema, digits):
    text = "age > " + "7" * digits
    err = outcome(text, schema)
    assert isinstance(err, RuleError)
    assert str(err).startswith("number 7777777777777777...77777777 (") or digits == 20
    assert "is out of range (integers go up to 9223372036854775807)" in str(err)
    assert "\n" not in str(err) and len(str(err)) < 200
    assert (err.line, err.col) == (1, 7)


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    from segcore.cli import main

    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refusals
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"age > 1\xff", "is not valid UTF-8 text (byte 8 is 0xff); save it as UTF-8"),
        (b"\xff\xfea\x00g\x00e", "is not valid UTF-16 text (byte 7); save it as UTF-8"),
        ("age > 30".encode("utf-16-le"), "holds NUL bytes (UTF-16 without a BOM?); save it as UTF-8"),
        (b"", "is empty"),
        (b" \n\t\n", "is empty"),
        (b"x" * 400_005, "is too long (a rule has at most 100,000 characters)"),
    ],
    ids=["bad-utf8", "bad-utf16", "utf16-no-bom", "empty", "blank", "huge"],
)
def test_bad_rule_files_are_one_line_errors(sample_home, tmp_path, capsys, content, message):
    path = tmp_path / "rule.txt"
    path.write_bytes(content)
    code, out, err = _cli(["eval", "--home", str(sample_home), "--rule-file", str(path)], capsys)
    assert code == 2 and out == ""
    assert err == f"error: rule file {str(path)!r} {message}\n"


@pytest.mark.parametrize(
    ("path", "message"), [(".", "is a folder, not a file"), ("/dev/null", "is empty")]
)
def test_folder_and_dev_null_as_rule_file(sample_home, capsys, path, message):
    code, _, err = _cli(["eval", "--home", str(sample_home), "--rule-file", path], capsys)
    assert code == 2 and err == f"error: rule file {path!r} {message}\n"


@pytest.mark.parametrize(
    "encode",
    [
        lambda t: b"\xef\xbb\xbf" + t.encode(),  # UTF-8 with a BOM (Windows editors)
        lambda t: t.encode("utf-16"),  # UTF-16 with its BOM
        lambda t: t.encode(),
    ],
    ids=["utf8-bom", "utf16-bom", "utf8"],
)
def test_rule_files_with_a_bom_evaluate_like_plain_text(sample_home, tmp_path, capsys, encode):
    rule = "age > 30 AND did('charged')"
    path = tmp_path / "rule.txt"
    path.write_bytes(encode(rule))
    code, out, err = _cli(
        ["eval", "--home", str(sample_home), "--rule-file", str(path), "--as-of", AS_OF, "--json"],
        capsys,
    )
    assert code == 0 and err == ""
    import json

    assert json.loads(out)["count"] == Store(sample_home).count(rule, as_of=AS_OF)


def test_invalid_utf8_on_stdin_is_one_line(sample_home):
    proc = subprocess.run(
        [sys.executable, "-m", "segcore", "eval", "--home", str(sample_home), "--rule", "-"],
        input=b"age > 1 \xc3\x28",
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.decode() == (
        "error: the rule on stdin is not valid UTF-8 text (byte 9 is 0xc3); save it as UTF-8\n"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "--rule", "TRUE", "--limit", "-5"],
        ["eval", "--rule", "TRUE", "--limit", "1" * 30],
        ["eval", "--rule", "TRUE", "--limit", "9" * 5000],
        ["reach", "--rule", "TRUE", "--channel", "email", "--limit", "100000000000000000000"],
        ["user", "u000001", "--events", "-3"],
        ["user", "u000001", "--events", "99999999999999999999"],
        ["sample", "--users", "1000000000"],
        ["sample", "--days", "99999999999"],
        ["profile", "--rule", "TRUE", "--bins", "0"],
        [
            "events",
            "--event",
            "charged",
            "--from",
            "2026-06-01",
            "--to",
            "2026-06-30",
            "--top",
            "-1",
        ],
    ],
    ids=lambda a: "-".join(a[:1] + a[-2:-1]),
)
def test_absurd_numeric_flags_are_one_line_usage_errors(sample_home, tmp_path, capsys, argv):
    home = tmp_path / "new" if argv[0] == "sample" else sample_home
    code, out, err = _cli([*argv, "--home", str(home)], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"error: segcore {argv[0]}: argument ")
    assert ": expected a whole number from " in err
    assert not (tmp_path / "new").exists()


def test_sample_refuses_sizes_over_its_maximum_or_the_free_memory(tmp_path, monkeypatch):
    from segcore.errors import UsageError
    from segcore.sample import generate, limits

    home = tmp_path / "s"
    with pytest.raises(
        UsageError,
        match=r"^--users 1,000,000,000 is more than the sample "
        r"generator makes \(at most 50,000,000\)$",
    ):
        generate(home, users=1_000_000_000)
    monkeypatch.setattr(limits, "available_memory", lambda: 2 * 10**9)
    with pytest.raises(
        UsageError,
        match=r"^--users 5,000,000 with --days 180 needs about "
        r"8\.9 GB of memory and this machine has 2\.0 GB available",
    ):
        generate(home, users=5_000_000, days=180)
    assert not home.exists()
    # what fits is made (the check is not in the way of ordinary sizes)
    assert generate(home, users=20, days=3, end="2026-06-30")["users"] == 20


def test_info_on_a_regular_file_is_a_store_error(tmp_path, capsys):
    f = tmp_path / "notes.txt"
    f.write_text("x")
    for command in (["info"], ["eval", "--rule", "TRUE"], ["sample", "--users", "10"]):
        code, _, err = _cli([*command, "--home", str(f)], capsys)
        assert code == 2
        assert err == f"error: {f} is a file, not a store folder: give --home a folder\n"
    assert f.read_text() == "x"


def test_funnel_over_time_from_long_before_the_data(sample_home, capsys):
    from segcore.analytics.funnel import funnel_over_time

    argv = [
        "funnel",
        "--home",
        str(sample_home),
        "--step",
        "added_to_cart",
        "--step",
        "charged",
        "--from",
        "1000-01-01",
        "--to",
        "2026-06-30",
        "--over-time",
        "day",
    ]
    code, out, err = _cli(argv, capsys)
    assert code == 0 and err == ""
    table = funnel_over_time(
        Store(sample_home),
        ["added_to_cart", "charged"],
        "1d",
        "1000-01-01",
        "2026-06-30",
        every="day",
    )
    last = table.row(-1, named=True)
    assert table.height > 300_000 and table["conversion"].head(1000).null_count() == 1000
    assert f"| {last['period']} | {last['entered']}" in out.replace("  ", " ")


BIG = 2**63 - 1
INTS = [0, 1, -1, 7, 3_037_000_499, 3_037_000_500, 2**62, -(2**62), BIG, -BIG - 1]


def _exact(op: str, a: int, b: int) -> int | None:
    r = {"+": a + b, "-": a - b, "*": a * b}[op]
    return r if -(2**63) <= r <= BIG else None


@pytest.mark.parametrize("op", ["+", "-", "*"])
def test_integer_overflow_is_null_never_a_wrapped_number(tiny, op):
    """Every pair of extreme 64-bit values: the exact result, or NULL when it does not fit."""
    users = [
        {"user_id": f"u{i:03d}", "a": a, "b": b}
        for i, (a, b) in enumerate((a, b) for a in INTS for b in INTS)
    ]
    store = tiny(users=users)
    expected_null = sorted(u["user_id"] for u in users if _exact(op, u["a"], u["b"]) is None)
    assert expected_null  # the fixture does overflow
    got = store.members(f"a {op} b IS NULL", as_of=AS_OF)["user_id"].to_list()
    assert sorted(got) == expected_null
    for bound in (0, 2**62, -(2**62)):
        want = sorted(
            u["user_id"]
            for u in users
            if (r := _exact(op, u["a"], u["b"])) is not None and r > bound
        )
        got = store.members(
            f"a {op} b > {bound}" if bound >= 0 else f"a {op} b > -{-bound}", as_of=AS_OF
        )["user_id"].to_list()
        assert sorted(got) == want, bound


def test_negation_and_chained_overflow_are_null(tiny):
    store = tiny(users=[{"user_id": "u1", "n": -BIG - 1}, {"user_id": "u2", "n": 5}])
    assert store.members("-n IS NULL", as_of=AS_OF)["user_id"].to_list() == ["u1"]
    assert store.count("(n * 3000000000) * 3000000000 IS NULL", as_of=AS_OF) == 2
    assert store.count("n * 9223372036854775807 > 0", as_of=AS_OF) == 0  # not wrapped
    assert store.members("n * 2 = 10", as_of=AS_OF)["user_id"].to_list() == ["u2"]
