"""Differential tests: Polars, DuckDB, ClickHouse (chdb) and Spark give the same members.

Rules come from a seeded random generator over the sample store's schema (attributes,
every behavioural function with within/since/until/where, sequences, NOT/AND/OR,
IN/BETWEEN/LIKE/IS NULL, arithmetic, dates), plus the cookbook rules, plus tiny
hand-made stores for the window edges.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
import sqlite3

import polars as pl
import pytest

from segcore import Store
from segcore.engine.polars.evaluate import members, schema_of
from segcore.engine.sql import compile_sql
from segcore.engine.sql.engines import count_members, run_members, run_sql
from segcore.lang.parser import parse_rule
from segcore.lang.tree import to_json
from segcore.sample.examples import EXAMPLES
from tests.docs.test_cookbook import COOKBOOK as DOC_COOKBOOK

AS_OFS = ["2026-06-30", "2026-06-12T14:30:00Z", "2026-04-20", "2026-03-10T08:15:30.5Z"]
RULES_PER_AS_OF = 45

COOKBOOK = [
    "subscription_end_date = today() + 6",
    "department IN ('Product', 'Engineering') AND (title LIKE '%Junior%' OR title LIKE '%Associate%')",
    "email_opt_in",
    "event_count('page_viewed', where => page = 'pricing') > 2",
    "event_count('charged') >= 5 OR total_spent > 5000",
    "country = 'US' AND did('charged', within => '30 days') "
    "AND did('email_opened', within => '30 days')",
    "has(tags, 'VIP') AND did('charged', within => '30 days')",
    "total_spent > 10000 AND NOT did('charged', within => '90 days')",
    "lead_score >= 80 AND did('form_submitted', within => '14 days')",
    "did('charged', since => now() - interval '90 days', until => now() - interval '30 days') "
    "AND NOT did('app_launched', within => '14 days')",
    "did_then_not('added_to_cart', 'charged', gap => '1 hour', within => '7 days')",
    "event_count('charged', within => '30 days') >= 3",
    "event_count('app_launched', since => now() - interval '90 days', "
    "until => now() - interval '30 days') >= 10 AND NOT did('app_launched', within => '30 days')",
    "did('charged', within => '10 days', where => product LIKE '%TV%')",
    "did('page_viewed', within => '30 days') AND NOT did('page_viewed', within => '7 days')",
    "did_then_not('added_to_cart', 'charged', gap => '10 minutes')",
    "did_then('added_to_cart', 'charged', gap => '10 minutes', within => '30 days')",
    "event_count('charged') >= 3 AND event_sum('charged', amount) > 700",
    "first_seen('charged', where => amount > 500) >= now() - interval '7 days'",
    "event_periods('app_launched', period => 'week', within => '7 weeks') >= 5",
]

# every cookbook rule of the docs (tests/docs/test_cookbook.py) and of the demo examples too
COOKBOOK += [
    r
    for r in [c["rule"] for c in DOC_COOKBOOK] + [e["rule"] for e in EXAMPLES]
    if r not in COOKBOOK
]

# --------------------------------------------------------------------------- generator
STRINGS = {
    "country": ["US", "DE", "IN", "BR", "GB", "FR", "JP", "XX"],
    "plan": ["free", "trial", "pro", "enterprise"],
    "gender": ["female", "male", "non-binary", "unspecified"],
    "os": ["iOS", "Android", "Windows", "macOS", "Linux"],
    "department": ["Product", "Engineering", "Sales", "Finance"],
    "title": ["Junior", "Associate", "Senior", "Head", "Lead"],
    "email": ["company.com", "gmail"],
    "browser": ["Chrome", "Safari", "Firefox"],
}
EVENTS = {  # event -> {property: kind}
    "page_viewed": {"page": "s", "url": "s"},
    "product_viewed": {"product": "s", "category": "s", "price": "f"},
    "added_to_cart": {"product": "s", "category": "s", "price": "f", "quantity": "i"},
    "charged": {
        "amount": "f",
        "product": "s",
        "category": "s",
        "quantity": "i",
        "payment_method": "s",
    },
    "email_opened": {"campaign": "s"},
    "email_clicked": {"campaign": "s"},
    "form_submitted": {"form": "s"},
    "conversation_started": {"channel": "s"},
    "app_launched": {},
    "signed_up": {},
    "appointment_booked": {},
}
PROP_VALUES = {
    "page": ["pricing", "home", "docs", "blog"],
    "category": ["Fashion", "Audio", "TV & Video", "Books", "Phones"],
    "product": ["TV", "Laptop", "Phone", "Cookbook", "Smart"],
    "payment_method": ["card", "paypal", "apple_pay"],
    "campaign": ["summer_sale", "weekly_digest", "tv_week"],
    "form": ["demo_request", "contact"],
    "channel": ["chat", "email", "whatsapp"],
    "url": ["pricing", "docs", "shop"],
}


class RuleGen:
    """Seeded random rule texts over the sample store's schema."""

    def __init__(self, seed: int):
        self.r = random.Random(seed)

    def pick(self, xs):
        return self.r.choice(xs)

    def num(self, lo: float, hi: float) -> str:
        # three decimals: never within float rounding of a sum of cents
        return f"{self.r.uniform(lo, hi):.2f}5"

    def duration(self) -> str:
        return self.pick(
            [
                "1 day",
                "3 days",
                "7 days",
                "14 days",
                "30 days",
                "45 days",
                "12 hours",
                "90 days",
                "2 weeks",
            ]
        )

    def instant(self) -> str:
        return self.pick(
            [
                f"now() - interval '{self.r.randint(1, 80)} days'",
                f"today() - interval '{self.r.randint(1, 40)} days'",
                "DATE '2026-05-01'",
                "TIMESTAMP '2026-06-01 12:00:00'",
                "'2026-04-15'",
                f"now() - interval '{self.r.randint(1, 72)} hours'",
                "today()",
            ]
        )

    def window(self) -> list[str]:
        k = self.r.random()
        if k < 0.35:
            return []
        if k < 0.7:
            return [f"within => '{self.duration()}'"]
        out = []
        if self.r.random() < 0.7:
            out.append(f"since => {self.instant()}")
        if self.r.random() < 0.6 or not out:
            out.append(f"until => {self.instant()}")
        return out

    def event_where(self, event: str, force: bool = False) -> str | None:
        props = EVENTS.get(event, {})
        if not props or (not force and self.r.random() < 0.5):
            return None
        p = self.pick(sorted(props))
        kind = props[p]
        if kind == "s":
            v = self.pick(PROP_VALUES[p])
            return self.pick(
                [
                    f"{p} = '{v}'",
                    f"{p} LIKE '%{v}%'",
                    f"{p} IS NULL",
                    f"{p} IN ('{v}', '{self.pick(PROP_VALUES[p])}')",
                    f"NOT ({p} = '{v}')",
                    f"contains({p}, '{v[:3]}')",
                    f"lower({p}) ILIKE '{v[:2].upper()}%'",
                ]
            )
        if kind == "f":
            return self.pick(
                [
                    f"{p} > {self.num(10, 900)}",
                    f"{p} BETWEEN 50 AND 500",
                    f"{p} * 2 < {self.num(100, 1500)}",
                ]
            )
        return self.pick([f"{p} >= 2", f"{p} = 1", f"{p} IN (1, 3)"])

    def event_args(self, event: str) -> str:
        parts = self.window()
        w = self.event_where(event)
        if w:
            parts.append(f"where => {w}")
        return "".join(", " + p for p in parts)

    def any_event(self) -> str:
        return self.pick(sorted(EVENTS) + ["*"])

    def behaviour(self) -> str:
        f = self.pick(
            [
                "did",
                "not_did",
                "count",
                "sum",
                "avg",
                "minmax",
                "distinct",
                "first",
                "last",
                "periods",
                "seq",
                "count0",
            ]
        )
        if f in ("did", "not_did"):
            e = self.any_event()
            text = f"did('{e}'{self.event_args(e)})"
            return text if f == "did" else f"NOT {text}"
        if f in ("count", "count0"):
            e = self.any_event()
            op = self.pick([">", ">=", "=", "<", "!="])
            n = 0 if f == "count0" else self.r.randint(0, 12)
            return f"event_count('{e}'{self.event_args(e)}) {op} {n}"
        if f in ("sum", "avg", "minmax"):
            e = self.pick(["charged", "added_to_cart", "product_viewed"])
            numeric = [p for p, k in EVENTS[e].items() if k in "fi"]
            p = self.pick(numeric)
            func = {"sum": "event_sum", "avg": "event_avg"}.get(
                f, self.pick(["event_min", "event_max"])
            )
            hi = 3000 if f == "sum" else 700
            if f == "minmax" and self.r.random() < 0.3:  # string min/max
                sp = self.pick([p for p, k in EVENTS[e].items() if k == "s"])
                return f"{func}('{e}', {sp}{self.event_args(e)}) >= '{self.pick(PROP_VALUES[sp])}'"
            cmp = self.pick([">", "<", ">="])
            extra = self.pick(["", " IS NULL", " IS NOT NULL"]) if f != "sum" else ""
            if extra:
                return f"{func}('{e}', {p}{self.event_args(e)}){extra}"
            return f"{func}('{e}', {p}{self.event_args(e)}) {cmp} {self.num(1, hi)}"
        if f == "distinct":
            e = self.pick([e for e, ps in EVENTS.items() if any(k == "s" for k in ps.values())])
            p = self.pick([p for p, k in EVENTS[e].items() if k == "s"])
            return f"event_distinct('{e}', {p}{self.event_args(e)}) >= {self.r.randint(1, 4)}"
        if f in ("first", "last"):
            e = self.any_event()
            func = "first_seen" if f == "first" else "last_seen"
            form = self.r.random()
            if form < 0.2:
                return f"{func}('{e}'{self.event_args(e)}) IS NULL"
            op = self.pick([">=", "<", ">"])
            return f"{func}('{e}'{self.event_args(e)}) {op} {self.instant()}"
        if f == "periods":
            e = self.any_event()
            period = self.pick(["week", "day", "3 days"])
            within = self.pick(["7 weeks", "30 days", "10 days", "4 weeks"])
            w = self.event_where(e)
            wtxt = f", where => {w}" if w else ""
            return (
                f"event_periods('{e}', period => '{period}', within => '{within}'{wtxt}) "
                f">= {self.r.randint(1, 6)}"
            )
        a = self.pick(["added_to_cart", "product_viewed", "page_viewed", "app_launched", "*"])
        b = self.pick(["charged", "added_to_cart", "email_opened", "product_viewed"])
        func = self.pick(["did_then", "did_then_not"])
        gap = self.pick(["10 minutes", "1 hour", "1 day", "3 days", "30 seconds"])
        args = self.event_args(a)
        if self.r.random() < 0.4:
            tw = self.event_where(b, force=True)
            if tw:
                args += f", then_where => {tw}"
        text = f"{func}('{a}', '{b}', gap => '{gap}'{args})"
        return text if self.r.random() < 0.8 else f"NOT {text}"

    def attribute(self) -> str:
        k = self.pick(
            ["str", "str", "int", "float", "bool", "date", "ts", "list", "null", "arith", "func"]
        )
        if k == "str":
            c = self.pick(sorted(STRINGS))
            v = self.pick(STRINGS[c])
            return self.pick(
                [
                    f"{c} = '{v}'",
                    f"{c} != '{v}'",
                    f"{c} IN ('{v}', '{self.pick(STRINGS[c])}')",
                    f"{c} NOT IN ('{v}', NULL)",
                    f"{c} IN ('{v}', NULL)",
                    f"{c} NOT IN ('{v}')",
                    f"{c} LIKE '%{v}%'",
                    f"{c} NOT LIKE '{v}%'",
                    f"{c} ILIKE '%{v.lower()}%'",
                    f"{c} BETWEEN 'B' AND 'M'",
                ]
            )
        if k == "int":
            c = self.pick(["age", "lead_score"])
            return self.pick(
                [
                    f"{c} > {self.r.randint(16, 90)}",
                    f"{c} BETWEEN 20 AND 45",
                    f"{c} NOT BETWEEN 30 AND 60",
                    f"{c} IN (25, 30, 35, 40)",
                    f"{c} <= {self.r.randint(0, 100)}",
                ]
            )
        if k == "float":
            return self.pick(
                [
                    f"total_spent > {self.num(0, 8000)}",
                    "total_spent = 0",
                    f"total_spent BETWEEN 100 AND {self.num(200, 9000)}",
                ]
            )
        if k == "bool":
            c = self.pick(["email_opt_in", "sms_opt_in", "push_opt_in", "whatsapp_opt_in"])
            return self.pick(
                [
                    c,
                    f"NOT {c}",
                    f"{c} IS TRUE",
                    f"{c} IS NOT TRUE",
                    f"{c} IS FALSE",
                    f"{c} IS NOT FALSE",
                    f"{c} = FALSE",
                    f"{c} IS NULL",
                ]
            )
        if k == "date":
            return self.pick(
                [
                    f"subscription_end_date = today() + {self.r.randint(-10, 10)}",
                    f"subscription_end_date < today() - {self.r.randint(0, 90)}",
                    "subscription_end_date BETWEEN today() AND today() + 60",
                    "subscription_end_date > now()",
                    "subscription_end_date + interval '12 hours' > now()",
                    "subscription_end_date < '2026-09-01'",
                    "subscription_end_date - 30 >= DATE '2026-06-01'",
                    "subscription_end_date >= created_at + interval '300 days'",
                ]
            )
        if k == "ts":
            return self.pick(
                [
                    f"created_at >= now() - interval '{self.r.randint(1, 200)} days'",
                    "created_at < DATE '2026-01-01'",
                    "created_at BETWEEN '2026-01-01' AND now()",
                    "created_at + interval '90 days' > now()",
                    "created_at > TIMESTAMP '2026-03-01 10:30:00'",
                    "coalesce(created_at, now()) < today()",
                ]
            )
        if k == "list":
            t = self.pick(["VIP", "Customer", "Newsletter", "Churn risk", "B2B", "Nope"])
            return self.pick(
                [
                    f"has(tags, '{t}')",
                    f"NOT has(tags, '{t}')",
                    f"length(tags) >= {self.r.randint(0, 3)}",
                    "length(tags) = 0",
                    "tags IS NULL",
                    "tags IS NOT NULL",
                    "NOT (length(tags) > 0)",
                    f"has(tags, '{t}') OR tags IS NULL",
                    "has(tags, country)",
                    "length(coalesce(tags, tags)) < 2",
                ]
            )
        if k == "null":
            c = self.pick(
                ["email", "phone", "push_token", "department", "title", "whatsapp_opt_in"]
            )
            return self.pick([f"{c} IS NULL", f"{c} IS NOT NULL"])
        if k == "arith":
            return self.pick(
                [
                    "age * 2 + lead_score > 120",
                    "total_spent / age > 20.5",
                    "lead_score / (age - age) IS NULL",
                    "age / 3 > 10",
                    "-age < -40",
                    "total_spent - 100 * lead_score > 0",
                    "lead_score / 7 * 7 = lead_score",
                    "age * 0.1 > 3",
                    "(age + lead_score) / 2 BETWEEN 30 AND 50",
                ]
            )
        return self.pick(
            [
                "lower(country) = 'us'",
                "upper(plan) IN ('PRO', 'ENTERPRISE')",
                "length(title) > 20",
                "contains(email, 'company')",
                "starts_with(title, 'Senior')",
                "ends_with(email, '.com')",
                "coalesce(department, 'none') = 'none'",
                "coalesce(whatsapp_opt_in, FALSE)",
                "length(city) < 6",
                "contains(title, '%')",
                "starts_with(name, 'A') OR ends_with(name, 'n')",
            ]
        )

    def condition(self, depth: int = 0) -> str:
        k = self.r.random()
        if depth >= 2 or k < 0.45:
            return self.behaviour() if self.r.random() < 0.55 else self.attribute()
        if k < 0.55:
            return f"NOT ({self.condition(depth + 1)})"
        op = self.pick(["AND", "OR", "AND"])
        n = self.r.randint(2, 3)
        return f" {op} ".join(f"({self.condition(depth + 1)})" for _ in range(n))


def generated_rules(seed: int, n: int) -> list[str]:
    gen = RuleGen(seed)
    return [gen.condition() for _ in range(n)]


def _polars(store, rule, as_of=None, segment=None) -> list[str]:
    return members(store, rule, as_of=as_of, segment=segment)["user_id"].to_list()


def _engine(store, rule, as_of=None, engine="duckdb", segment=None) -> list[str]:
    if engine == "polars":
        return sorted(_polars(store, rule, as_of, segment))
    return run_members(store, rule, as_of=as_of, engine=engine, segment=segment)[
        "user_id"
    ].to_list()


def _diff(store, rules, as_of, engines=("duckdb", "clickhouse")) -> list[str]:
    schema = schema_of(store)
    problems = []
    for text in rules:  # ok-loop: one test case per rule
        tree = parse_rule(text, schema)
        expected = _polars(store, tree, as_of)
        for eng in engines:
            got = _engine(store, tree, as_of, eng)
            if got != expected:
                extra = sorted(set(got) - set(expected))[:5]
                missing = sorted(set(expected) - set(got))[:5]
                problems.append(
                    f"{eng} @ {as_of}: {text}\n  polars={len(expected)} "
                    f"{eng}={len(got)} extra={extra} missing={missing}"
                )
    return problems


# --------------------------------------------------------------------------- the store
@pytest.fixture(scope="module")
def diff_store(sample_home, tmp_path_factory) -> Store:
    """The sample store with list NULL-ness mixed in: every 9th user has NULL tags, every
    13th (not 9th) has a NULL element appended, and the sample's own empty lists stay."""
    home = tmp_path_factory.mktemp("diff_store")
    shutil.copytree(sample_home, home, dirs_exist_ok=True)
    store = Store(home)
    for f in store.user_files():  # ok-loop: one rewrite per users file
        users = pl.read_parquet(f).with_row_index("__i")
        i = pl.col("__i")
        tags = (
            pl.when(i % 9 == 0)
            .then(pl.lit(None, dtype=pl.List(pl.String)))
            .when(i % 13 == 0)
            .then(pl.col("tags").list.concat(pl.lit([None], dtype=pl.List(pl.String))))
            .otherwise(pl.col("tags"))
        )
        users.with_columns(tags.alias("tags")).drop("__i").write_parquet(f)
    store = Store(home)
    tags = pl.concat([pl.read_parquet(f, columns=["tags"]) for f in store.user_files()])["tags"]
    assert tags.null_count() > 50
    assert (tags.list.len() == 0).sum() > 20
    assert tags.list.eval(pl.element().is_null().any()).explode().sum() > 30
    return store


# --------------------------------------------------------------------------- tests
def test_generator_covers_the_language(sample_store):
    rules = [r for i in range(len(AS_OFS)) for r in generated_rules(i, RULES_PER_AS_OF)]
    text = "\n".join(rules)
    for needle in (
        "did(",
        "event_count(",
        "event_sum(",
        "event_avg(",
        "event_min(",
        "event_max(",
        "event_distinct(",
        "first_seen(",
        "last_seen(",
        "event_periods(",
        "did_then(",
        "did_then_not(",
        "within =>",
        "since =>",
        "until =>",
        "where =>",
        "then_where =>",
        " NOT ",
        " OR ",
        " IN (",
        "BETWEEN",
        "LIKE",
        "ILIKE",
        "IS NULL",
        "IS TRUE",
        "has(",
        " / ",
        "today()",
    ):
        assert needle in text, needle
    schema = schema_of(sample_store)
    for r in rules:  # every generated rule is valid
        parse_rule(r, schema)
    assert len(rules) >= 150


@pytest.mark.parametrize("seed,as_of", list(enumerate(AS_OFS)))
def test_generated_rules_same_members(diff_store, seed, as_of):
    rules = generated_rules(seed, RULES_PER_AS_OF)
    problems = _diff(diff_store, rules, as_of)
    assert not problems, "\n".join(problems)


def test_generated_rules_are_not_trivial(diff_store):
    """Most generated rules have members and most are not everyone."""
    rules = generated_rules(0, RULES_PER_AS_OF)
    sizes = [len(_polars(diff_store, r, AS_OFS[0])) for r in rules]
    assert sum(1 for s in sizes if 0 < s < 1000) >= len(rules) // 2


@pytest.mark.parametrize("as_of", ["2026-06-30", "2026-06-12T14:30:00Z"])
def test_cookbook_same_members(diff_store, as_of):
    problems = _diff(diff_store, COOKBOOK, as_of)
    assert not problems, "\n".join(problems)


def test_cookbook_rules_have_members(sample_store):
    empty = [r for r in COOKBOOK if not _polars(sample_store, r, "2026-06-30")]
    assert not empty


def test_count_members_and_duckdb_sql(sample_store):
    rule = "did('charged', within => '30 days') AND country = 'US'"
    n = len(_polars(sample_store, rule, "2026-06-30"))
    assert n > 0
    assert count_members(sample_store, rule, as_of="2026-06-30", engine="duckdb") == n
    assert count_members(sample_store, rule, as_of="2026-06-30", engine="chdb") == n
    sql = compile_sql(sample_store, rule, dialect="duckdb", as_of="2026-06-30")
    assert run_sql(sql, "duckdb")["user_id"].to_list() == _polars(sample_store, rule, "2026-06-30")


ODD_RULES = [
    "has(tags, NULL)",
    "has(tags, country)",
    "NOT has(tags, country)",
    "has(NULL, 'VIP') IS NULL",
    "length(NULL) IS NULL",
    "length(tags) = 0",
    "tags IS NULL AND did('charged')",
    "NOT (tags IS NOT NULL OR age > 50)",
    "coalesce(tags, NULL) IS NULL",
    "tags = NULL",
    "NOT has(tags, 'VIP') AND NOT has(tags, 'Customer')",
    "length(tags) BETWEEN 1 AND 2 OR length(tags) IS NULL",
    "coalesce(subscription_end_date, created_at) > now()",
    "coalesce(age, total_spent) > 30.5",
    "-total_spent < -100",
    "age - -3 > 20",
    "NOT NOT email_opt_in",
    "email_opt_in = (age > 30)",
    "(age > 30) IS NOT FALSE",
    "country = NULL",
    "NULL IS NULL",
    "today() = DATE '2026-06-30'",
    "now() > created_at + interval '1 week'",
    "lower(NULL) IS NULL",
    "subscription_end_date - 3 = today()",
    "3 + subscription_end_date > today()",
    "interval '1 day' + created_at > now()",
    "contains(email, '')",
    "starts_with(email, NULL)",
    "email LIKE NULL",
    "country IN (NULL)",
    "age IN (30, 31.0)",
    "created_at IN ('2026-01-01')",
    "subscription_end_date IN (now(), today())",
    "subscription_end_date BETWEEN now() - interval '30 days' AND '2026-08-01'",
    "event_min('charged', ts) > now() - interval '5 days'",
    "event_max('charged', payment_method) = 'paypal'",
    "event_avg('charged', quantity) > 1.5",
    "event_sum('charged', quantity) = 0",
    "did('*', where => amount IS NOT NULL AND quantity > 1)",
    "last_seen('*') > first_seen('*') + interval '10 days'",
    "event_sum('charged', amount) / event_count('charged') > 100",
    "event_count('charged') / 0 IS NULL",
    "age / 2 = 20",
    "total_spent * 1.1 > 1000",
    "event_periods('charged', period => '36 hours', since => DATE '2026-06-01') >= 2",
    "did('charged', since => today(), until => now())",
    "did('charged', until => DATE '2026-01-01')",
    "did('charged', since => now() + interval '1 day')",
    "first_seen('page_viewed', where => page = 'pricing' OR url LIKE '%docs%') IS NOT NULL",
    "did('*', where => NOT (event = 'page_viewed'))",
    "event_count('*', where => ts >= TIMESTAMP '2026-06-29 12:00:00') > 2",
    "event_distinct('charged', amount) >= 2",
    "event_distinct('*', event) >= 8",
    "upper(name) LIKE '%Ä%' OR lower(city) LIKE 's_o%'",
    "name ILIKE '%müller%' OR city ILIKE '%ZÜRICH%'",
    "length(name) > 14",
]


def test_odd_constructs_same_members(diff_store):
    """NULL literals, mixed date/timestamp, unary minus, booleans compared, unicode
    case folding, empty substrings, windows in the future or before the data, NULL lists
    and NULL list elements."""
    problems = _diff(diff_store, ODD_RULES, "2026-06-30")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- saved segments
def test_in_segment_static_and_dynamic(writable_sample):
    store = writable_sample
    schema = schema_of(store)
    base = parse_rule("did('charged', within => '30 days')", schema)
    store.catalog.create("buyers", rule_text=str(base), rule_json=to_json(base))
    ids = _polars(store, "country = 'DE'", "2026-06-30")[:40] + ["nobody", "u999999"]
    store.catalog.create("picked", kind="static", members=ids)
    store.catalog.create("empty_list", kind="static", members=[])
    outer = parse_rule(
        "in_segment('buyers') AND NOT in_segment('picked') AND age > 30", schema_of(store)
    )
    store.catalog.create("outer", rule_text=str(outer), rule_json=to_json(outer))
    rules = [
        "in_segment('buyers')",
        "in_segment('picked')",
        "NOT in_segment('picked')",
        "in_segment('empty_list') OR in_segment('outer')",
        "in_segment('outer') AND in_segment('buyers')",
    ]
    assert not _diff(store, rules, "2026-06-30")
    for seg in ("outer", "picked", "buyers"):
        expected = _polars(store, None, "2026-06-30", segment=seg)
        assert expected
        for eng in ("duckdb", "clickhouse"):
            assert _engine(store, None, "2026-06-30", eng, segment=seg) == expected
    # a static segment's members are the stored ids that are in the universe at T
    assert _polars(store, None, "2026-06-30", segment="picked") == sorted(ids[:40])


def test_in_segment_cycle_is_a_rule_error(writable_sample):
    from segcore.errors import RuleError

    store = writable_sample
    a = parse_rule("age > 30", schema_of(store))
    store.catalog.create("a", rule_text=str(a), rule_json=to_json(a))
    b = parse_rule("in_segment('a')", schema_of(store))
    store.catalog.create("b", rule_text=str(b), rule_json=to_json(b))
    # make a cycle behind the catalog's back (the catalog refuses it): a -> b -> a
    cyc = parse_rule("in_segment('b')", schema_of(store))
    with pytest.raises(RuleError, match="segment cycle: a -> b -> a"):
        store.catalog.edit("a", rule_text=str(cyc), rule_json=to_json(cyc))
    con = sqlite3.connect(store.catalog_path)
    con.execute("UPDATE segments SET rule_text = ?, rule_json = ? WHERE name = 'a'",
                (str(cyc), to_json(cyc)))
    con.commit()
    con.close()
    with pytest.raises(RuleError, match="segment cycle"):
        compile_sql(store, segment="a", as_of="2026-06-30")


# --------------------------------------------------------------------------- edge stores
T = dt.datetime(2026, 6, 2)  # as of 2026-06-01 (a date: the end of that day)


def _edges(tiny):
    ev = [
        ("a", "buy", T - dt.timedelta(days=7), {"amount": 10.0, "sku": "x"}),  # exactly T-W
        ("a", "buy", T - dt.timedelta(microseconds=1), {"amount": 5.0, "sku": None}),
        ("b", "buy", T - dt.timedelta(days=7, microseconds=1), {"amount": 1.0, "sku": "y"}),
        ("b", "buy", T, {"amount": 100.0, "sku": "z"}),  # exactly T: does not exist yet
        ("c", "cart", T - dt.timedelta(minutes=10), {}),  # a + gap == T
        ("d", "cart", T - dt.timedelta(minutes=20), {}),
        ("d", "buy", T - dt.timedelta(minutes=10), {"amount": 2.0}),  # b == a + gap
        ("e", "cart", T - dt.timedelta(minutes=30), {}),
        ("e", "buy", T - dt.timedelta(minutes=30), {"amount": 3.0}),  # b == a: not after
        ("f", "buy", T - dt.timedelta(days=20), {"amount": None}),  # only in events
    ]
    users = [
        {
            "user_id": "a",
            "country": "US",
            "age": 30,
            "vip": True,
            "tags": ["x"],
            "joined": dt.date(2026, 5, 26),
        },
        {"user_id": "b", "country": None, "age": None, "vip": None, "tags": [], "joined": None},
        {
            "user_id": "c",
            "country": "DE",
            "age": 40,
            "vip": False,
            "tags": ["y"],
            "joined": dt.date(2026, 6, 1),
        },
        {
            "user_id": "d",
            "country": "US",
            "age": 0,
            "vip": True,
            "tags": ["x", "y"],
            "joined": dt.date(2026, 1, 1),
        },
        {
            "user_id": "e",
            "country": "FR",
            "age": 5,
            "vip": False,
            "tags": [],
            "joined": dt.date(2026, 6, 2),
        },
        {
            "user_id": "z",
            "country": "US",
            "age": 50,
            "vip": None,
            "tags": ["x"],
            "joined": None,
        },  # no events at all
    ]
    return tiny(events=ev, users=users)


EDGE_CASES = [
    ("did('buy', within => '7 days')", ["a", "d", "e"]),
    ("event_count('buy', within => '7 days') = 2", ["a"]),
    ("event_count('buy') = 0", ["c", "z"]),
    ("event_sum('buy', amount, within => '7 days') = 15", ["a"]),
    ("event_sum('buy', amount) = 0", ["c", "f", "z"]),
    ("event_avg('buy', amount) IS NULL", ["c", "f", "z"]),
    ("event_max('buy', amount) < 4", ["b", "d", "e"]),
    ("event_distinct('buy', sku) = 1", ["a", "b"]),
    ("did_then('cart', 'buy', gap => '10 minutes')", ["d"]),
    ("did_then_not('cart', 'buy', gap => '10 minutes')", ["e"]),
    ("did_then_not('cart', 'buy', gap => '9 minutes')", ["c", "d", "e"]),
    ("last_seen('buy') = TIMESTAMP '2026-06-01 23:59:59.999999'", ["a"]),
    ("country = 'US'", ["a", "d", "z"]),
    ("NOT (country = 'US')", ["c", "e"]),
    ("country NOT IN ('US', NULL)", []),
    ("country IN ('DE', NULL)", ["c"]),
    ("age / age = 1", ["a", "c", "e", "z"]),
    ("age / 0 IS NULL", ["a", "b", "c", "d", "e", "f", "z"]),
    ("vip IS NOT TRUE", ["b", "c", "e", "f", "z"]),
    ("NOT vip", ["c", "e"]),
    ("has(tags, 'x')", ["a", "d", "z"]),
    ("NOT has(tags, 'x')", ["b", "c", "e"]),
    ("joined >= today() - 6", ["a", "c", "e"]),
    ("joined + interval '1 day' > now()", ["e"]),
    ("joined + interval '1 day' >= now()", ["c", "e"]),
    # periods are [T-(k+1)P, T-kP): a's events at T-7d and T-1us are both in period 0
    ("event_periods('buy', period => 'week', within => '3 weeks') = 2", []),
    ("event_periods('buy', period => 'week', within => '3 weeks') = 1", ["a", "b", "d", "e", "f"]),
    ("event_periods('buy', period => '1 minute', within => '3 weeks') = 2", ["a"]),
    ("event_periods('*', period => 'day', within => '8 days') >= 1 AND country IS NULL", ["b"]),
    ("first_seen('buy') < DATE '2026-05-20'", ["f"]),
    ("coalesce(country, 'none') = 'none'", ["b", "f"]),
    # rules on the key itself (regression: Polars returned no one / a duplicate column)
    ("user_id IN ('f', 'z', 'q')", ["f", "z"]),
    ("user_id >= 'e' AND country IS NULL", ["f"]),
    ("user_id LIKE '_'", ["a", "b", "c", "d", "e", "f", "z"]),
]


@pytest.mark.parametrize("rule,expected", EDGE_CASES)
def test_edge_store(tiny, rule, expected):
    store = _edges(tiny)
    assert _polars(store, rule, "2026-06-01") == expected
    for eng in ("duckdb", "clickhouse"):
        assert _engine(store, rule, "2026-06-01", eng) == expected, eng


def test_empty_store_and_users_only(tiny):
    only_users = tiny(users=[{"user_id": "u1", "age": 3}])
    for eng in ("duckdb", "clickhouse"):
        assert _engine(only_users, "age > 1", None, eng) == ["u1"]
    only_events = tiny(events=[("u9", "x", "2026-01-01T00:00:00", {})])
    for eng in ("duckdb", "clickhouse"):
        assert _engine(only_events, "did('x')", "2026-01-01", eng) == ["u9"]
        assert _engine(only_events, "did('x')", "2025-12-31", eng) == []


def _two_files(tiny):
    store = tiny(
        events=[("a", "buy", "2026-01-01T10:00:00", {"amount": 5.0})],
        users=[{"user_id": "a", "age": 1}, {"user_id": "b", "age": 2}],
    )
    pl.DataFrame(
        {
            "user_id": ["b", "b"],
            "event": ["buy", "view"],
            "ts": [dt.datetime(2026, 1, 2), dt.datetime(2026, 1, 3)],
            "page": ["p", "q"],
        }
    ).with_columns(pl.col("ts").dt.replace_time_zone("UTC")).write_parquet(
        store.events_dir / "part-1.parquet"
    )
    return store


TWO_FILE_CASES = [
    ("did('buy', where => amount IS NULL)", ["b"]),
    ("event_sum('buy', amount) > 1", ["a"]),
    ("did('view', where => page = 'q')", ["b"]),
    ("NOT did('view')", ["a"]),
]


def test_files_with_different_columns(tiny):
    """Several event files whose columns differ (union by name, NULL where missing)."""
    store = _two_files(tiny)
    for rule, expected in TWO_FILE_CASES:
        assert _polars(store, rule, "2026-01-05") == expected
        for eng in ("duckdb", "clickhouse"):
            assert _engine(store, rule, "2026-01-05", eng) == expected, (eng, rule)


# --------------------------------------------------------------------------- spark
SPARK_RULES = COOKBOOK[:6] + generated_rules(99, 9)


def test_spark_local_same_members(diff_store, tiny, tz_store):
    """One test, so that one JVM serves every Spark check (also under pytest-xdist)."""
    from segcore.lang.dates import report_zone

    # report zones: Spark's to_utc_timestamp for dates compared with instants
    for zone in ("America/New_York", "Australia/Lord_Howe"):
        with report_zone(zone):
            for as_of in _tz_as_ofs(zone)[:2]:
                tz_problems = _diff(tz_store, TZ_RULES[:9], as_of, engines=("spark",))
                assert not tz_problems, "\n".join(tz_problems)
    problems = _diff(diff_store, SPARK_RULES[:12], "2026-06-30", engines=("spark",))
    problems += _diff(diff_store, SPARK_RULES[12:], "2026-06-12T14:30:00Z", engines=("spark",))
    assert not problems, "\n".join(problems)
    # window edges: a + gap == T, b == a + gap, b == a, NULL IN lists
    store = _edges(tiny)
    for rule, expected in EDGE_CASES[8:12] + EDGE_CASES[15:17]:
        assert _engine(store, rule, "2026-06-01", "spark") == expected, rule
    # several event files with different columns: one UNION ALL branch per file
    store = _two_files(tiny)
    for rule, expected in TWO_FILE_CASES:
        assert _engine(store, rule, "2026-01-05", "spark") == expected, rule
    # NULL lists, empty lists, NULL elements (issue 13)
    store = _three_users(tiny)
    for rule, expected in THREE_USERS:
        assert _engine(store, rule, "2026-01-01", "spark") == expected, rule
    store = _lists(tiny)
    for rule, expected in LIST_CASES:
        assert _engine(store, rule, "2026-01-01", "spark") == expected, rule
    store = _ages(tiny)  # integer overflow is NULL (issue 21)
    for rule, expected in OVERFLOW:
        assert _engine(store, rule, "2026-01-01", "spark") == expected, rule


# --------------------------------------------------------------------------- overflow
def _ages(tiny):
    """Ages 0, 1, 2, -1 and NULL: products and sums with 2^63 - 1 leave 64 bits."""
    return tiny(
        events=[("a", "x", "2026-01-01T00:00:00")],
        users=[{"user_id": u, "age": a} for u, a in
               [("a", 0), ("b", 1), ("c", 2), ("d", -1), ("e", None)]],
    )


OVERFLOW = [  # hand-computed: NULL outside -2^63 .. 2^63-1, never a wrapped number
    ("age * 9223372036854775807 > 0", ["b"]),
    ("age * 9223372036854775807 IS NULL", ["c", "e"]),
    ("age + 9223372036854775807 > 0", ["a", "d"]),
    ("-(age - 9223372036854775807 - 1) > 0", ["b", "c"]),
    ("age - 9223372036854775807 - 2 IS NULL", ["a", "d", "e"]),
    ("(age * 4611686018427387904) * 2 IS NULL", ["b", "c", "e"]),
    ("age * 3 + 1 = 7", ["c"]),
]


def test_integer_overflow_is_null_on_every_engine(tiny):
    """Issue 21: DuckDB used to stop, ClickHouse to wrap (Spark: in the Spark test)."""
    store = _ages(tiny)
    for rule, expected in OVERFLOW:
        for eng in ("polars", "duckdb", "clickhouse"):
            assert _engine(store, rule, "2026-01-01", eng) == expected, (eng, rule)


# --------------------------------------------------------------------------- NULL lists
def _three_users(tiny):
    """The users of issue 13: tags ['VIP'], [] and NULL."""
    return tiny(
        users=pl.DataFrame(
            {"user_id": ["vip", "empty", "none"], "tags": [["VIP"], [], None]},
            schema={"user_id": pl.String, "tags": pl.List(pl.String)},
        )
    )


THREE_USERS = [
    ("NOT has(tags, 'VIP')", ["empty"]),
    ("length(tags) = 0", ["empty"]),
    ("tags IS NULL", ["none"]),
]


def test_issue_13_three_users(tiny):
    """ClickHouse once read the NULL list as [] (Spark: in the Spark test)."""
    store = _three_users(tiny)
    for rule, expected in THREE_USERS:
        for eng in ("polars", "duckdb", "clickhouse"):
            assert _engine(store, rule, "2026-01-01", eng) == expected, (eng, rule)


def _lists(tiny):
    """Users with tags ['VIP'], [], NULL and ['B2B', NULL]; 'ghost' has events only;
    each user's event has a list property ``items``; saved segment ``no_tags``."""
    users = pl.DataFrame(
        {
            "user_id": ["vip", "empty", "none", "holey"],
            "tags": [["VIP"], [], None, ["B2B", None]],
            "label": ["VIP", None, "VIP", None],
        },
        schema={"user_id": pl.String, "tags": pl.List(pl.String), "label": pl.String},
    )
    events = pl.DataFrame(
        {
            "user_id": ["vip", "empty", "none", "holey", "ghost"],
            "event": ["x"] * 5,
            "ts": [dt.datetime(2026, 1, 1, 12)] * 5,
            "event_id": [f"e{i}" for i in range(5)],
            "items": [["p"], [], None, ["p", None], None],
        },
        schema_overrides={"items": pl.List(pl.String)},
    ).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    store = tiny(events=events, users=users)
    tree = parse_rule("tags IS NULL", schema_of(store))
    store.catalog.create("no_tags", rule_text=str(tree), rule_json=to_json(tree))
    return store


LIST_CASES = [
    ("NOT has(tags, 'VIP')", ["empty", "holey"]),
    ("has(tags, 'B2B')", ["holey"]),
    ("NOT has(tags, 'B2B')", ["empty", "vip"]),  # a NULL element never matches
    ("length(tags) = 0", ["empty"]),
    ("length(tags) = 2", ["holey"]),  # a NULL element is counted
    ("tags IS NULL", ["ghost", "none"]),
    ("tags IS NOT NULL", ["empty", "holey", "vip"]),
    ("NOT (tags IS NULL) AND NOT has(tags, 'VIP')", ["empty", "holey"]),
    ("has(tags, 'VIP') OR tags IS NULL", ["ghost", "none", "vip"]),
    ("has(tags, label)", ["vip"]),  # a NULL value gives NULL, even beside a NULL element
    ("NOT has(tags, label)", []),
    ("length(coalesce(tags, tags)) >= 0", ["empty", "holey", "vip"]),
    ("coalesce(tags, NULL) IS NULL", ["ghost", "none"]),
    ("tags = NULL", []),
    ("did('x', where => has(items, 'p'))", ["holey", "vip"]),
    ("did('x', where => NOT has(items, 'q'))", ["empty", "holey", "vip"]),
    ("did('x', where => items IS NULL)", ["ghost", "none"]),
    ("did('x', where => length(items) = 0)", ["empty"]),
    ("NOT did('x', where => items IS NOT NULL)", ["ghost", "none"]),
    ("in_segment('no_tags') OR length(tags) = 0", ["empty", "ghost", "none"]),
    ("NOT in_segment('no_tags') AND NOT has(tags, 'VIP')", ["empty", "holey"]),
]


@pytest.mark.parametrize("rule,expected", LIST_CASES)
def test_null_lists(tiny, rule, expected):
    """Hand-computed members with NULL lists, empty lists and NULL elements."""
    store = _lists(tiny)
    for eng in ("polars", "duckdb", "clickhouse"):
        assert _engine(store, rule, "2026-01-01", eng) == expected, eng


def test_clickhouse_null_list_flags_in_the_sql(tiny):
    """Over Parquet files the ClickHouse SQL reads a companion file of the rows whose list
    is NULL (none is written when a column has no NULL list); over a named table a list is
    never NULL (ClickHouse cannot store one), except for a user without a users row."""
    store = _lists(tiny)
    sql = compile_sql(store, "tags IS NULL", dialect="clickhouse", as_of="2026-01-01")
    assert "_row_number IN (" in sql and ".cache/list-nulls/" in sql
    assert run_sql(sql, "clickhouse")["user_id"].to_list() == ["ghost", "none"]
    # a store folder where the cache cannot be written: the companion goes to a temp folder
    blocked = _lists(tiny)
    (blocked.home / ".cache").write_text("not a folder")
    sql = compile_sql(blocked, "tags IS NULL", dialect="clickhouse", as_of="2026-01-01")
    assert "segcore-list-nulls/" in sql
    assert run_sql(sql, "clickhouse")["user_id"].to_list() == ["ghost", "none"]
    plain = tiny(users=[{"user_id": "a", "tags": ["x"]}, {"user_id": "b", "tags": []}])
    sql = compile_sql(plain, "length(tags) = 0", dialect="clickhouse", as_of="2026-01-01")
    assert "_row_number" not in sql
    assert run_sql(sql, "clickhouse")["user_id"].to_list() == ["b"]


def test_clickhouse_null_lists_over_named_tables(tiny):
    """A plain ClickHouse table (tags Array(String)) needs no companion column."""
    from chdb import session

    sess = session.Session()
    try:
        sess.query("CREATE DATABASE IF NOT EXISTS sc_t")
        sess.query("CREATE TABLE sc_t.users (user_id String, tags Array(String)) ENGINE = Memory")
        sess.query("INSERT INTO sc_t.users VALUES ('vip', ['VIP']), ('empty', [])")
        sess.query(
            "CREATE TABLE sc_t.events (user_id String, event String, "
            "ts DateTime64(6, 'UTC')) ENGINE = Memory"
        )
        sess.query("INSERT INTO sc_t.events VALUES ('ghost', 'x', '2025-12-01 00:00:00')")
        store = _lists(tiny)  # the schema; the rows come from the tables
        got = {}
        for rule in ("NOT has(tags, 'VIP')", "tags IS NULL", "length(tags) = 0"):
            sql = compile_sql(
                store, rule, dialect="clickhouse", as_of="2026-01-01",
                events_table="sc_t.events", users_table="sc_t.users",
            )
            got[rule] = sess.query(sql, "CSV").data().split()
        assert got == {
            "NOT has(tags, 'VIP')": ['"empty"'],
            "tags IS NULL": ['"ghost"'],
            "length(tags) = 0": ['"empty"'],
        }
    finally:
        sess.close()


def test_division_by_a_constant_is_ieee_division(tiny):
    """Regression: Polars divided by a scalar via its reciprocal (29 / 7 * 7 != 29 in IEEE,
    but 5 / 7 * 7 == 5); every engine must agree with Python's float division."""
    users = [{"user_id": f"u{x:03d}", "n": x} for x in range(101)]
    store = tiny(users=users)
    expected = [f"u{x:03d}" for x in range(101) if x / 7 * 7 == x]
    assert len(expected) == 98
    rule = "n / 7 * 7 = n"
    assert _polars(store, rule, "2026-01-01") == expected
    for eng in ("duckdb", "clickhouse"):
        assert _engine(store, rule, "2026-01-01", eng) == expected


# --------------------------------------------------------------------------- boundaries
def _grid_store(tiny, seed: int):
    """Events on whole hours before T = 2026-06-02T00:00Z, so windows and gaps of whole
    hours and days hit events exactly at their boundaries (T - W, a + gap, T)."""
    r = random.Random(seed)
    T0 = dt.datetime(2026, 6, 2)
    events = []
    for i in range(30):
        for _ in range(r.randint(0, 12)):
            hours = r.choice([0, 1, 2, 3, 6, 12, 24, 25, 48, 72, 168, 169, 336, 720])
            ts = T0 - dt.timedelta(hours=hours)  # hours == 0: exactly T (does not exist)
            events.append(
                (
                    f"g{i:02d}",
                    r.choice(["a", "b", "c"]),
                    ts,
                    {
                        "n": r.choice([None, 1, 2, 5]),
                        "k": r.choice([None, "x", "y"]),
                        "l": r.choice([None, [], ["x"], ["x", None], [None]]),
                    },
                )
            )
    users = [
        {
            "user_id": f"g{i:02d}",
            "tier": r.choice([None, 1, 2, 3]),
            "labs": r.choice([None, [], ["x"], ["y", None], ["x", "y"]]),
        }
        for i in range(0, 34, 2)
    ]
    return tiny(events=events, users=users)


def _grid_rules(seed: int, n: int) -> list[str]:
    r = random.Random(seed)
    durations = [
        "1 hour",
        "2 hours",
        "12 hours",
        "1 day",
        "2 days",
        "3 days",
        "1 week",
        "2 weeks",
        "30 days",
    ]
    out = []
    for _ in range(n):  # ok-loop: building test rules
        e = r.choice(["a", "b", "c", "*"])
        win = r.choice(
            [
                "",
                f", within => '{r.choice(durations)}'",
                f", since => now() - interval '{r.choice(durations)}'",
                f", until => now() - interval '{r.choice(durations)}'",
            ]
        )
        where = r.choice(
            [
                "",
                ", where => n >= 2",
                ", where => k = 'x'",
                ", where => k IS NULL",
                ", where => has(l, 'x')",
                ", where => NOT has(l, 'x')",
                ", where => l IS NULL",
                ", where => length(l) = 0",
                ", where => has(l, k)",
            ]
        )
        term = r.choice(
            [
                f"did('{e}'{win}{where})",
                f"event_count('{e}'{win}{where}) >= {r.randint(1, 4)}",
                f"event_sum('{e}', n{win}{where}) = {r.randint(0, 8)}",
                f"event_distinct('{e}', k{win}) = 1",
                f"event_periods('{e}', period => '{r.choice(durations)}'{win or ', within => ' + repr(r.choice(durations))}) = {r.randint(1, 3)}",
                f"last_seen('{e}'{where}) >= now() - interval '{r.choice(durations)}'",
                f"first_seen('{e}'{win}) < now() - interval '{r.choice(durations)}'",
                f"{r.choice(['did_then', 'did_then_not'])}('{e}', '{r.choice('abc')}', "
                f"gap => '{r.choice(durations)}'{win})",
            ]
        )
        if r.random() < 0.3:
            term = r.choice(
                [
                    f"NOT {term}",
                    f"{term} OR tier = 2",
                    f"{term} AND tier IS NULL",
                    f"{term} OR NOT has(labs, 'x')",
                    f"{term} AND labs IS NULL",
                    f"NOT ({term} OR length(labs) = 0)",
                ]
            )
        out.append(term)
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_boundary_grid_same_members(tiny, seed):
    store = _grid_store(tiny, seed)
    rules = _grid_rules(seed, 40)
    problems = _diff(store, rules, "2026-06-01")
    assert not problems, "\n".join(problems)
    sizes = [len(_polars(store, rule, "2026-06-01")) for rule in rules]
    assert sum(1 for s in sizes if s) >= len(rules) // 3


# --------------------------------------------------------------------------- CASE WHEN
CASE_RULES = [
    "CASE WHEN country = 'US' THEN 'a' WHEN plan = 'pro' THEN 'b' ELSE 'c' END = 'b'",
    "CASE WHEN total_spent > 1000 THEN total_spent ELSE lead_score END > 500",
    "CASE plan WHEN 'pro' THEN 1 WHEN 'free' THEN 2 END = 2",
    "CASE plan WHEN 'pro' THEN 1 END IS NULL",
    "CASE WHEN event_count('charged') > 3 THEN 'many' ELSE 'few' END = 'many'",
    "CASE WHEN NULL THEN 1 ELSE 2 END = 2 AND country = 'DE'",
    "did('charged', where => CASE WHEN amount > 100 THEN product ELSE 'x' END LIKE '%a%')",
    "CASE WHEN country = 'US' THEN subscription_end_date ELSE now() - interval '400 days' END "
    "> '2026-01-01'",
]


def test_case_when_same_members(sample_store):
    """CASE WHEN (searched and simple forms, mixed number types, dates with timestamps,
    behaviour inside, NULL conditions) gives the same members in every engine."""
    problems = _diff(sample_store, CASE_RULES, "2026-06-30")
    assert not problems, "\n".join(problems)
    counts = [len(_polars(sample_store, r, "2026-06-30")) for r in CASE_RULES]
    users = sample_store.scan_users().select(pl.len()).collect().item()
    assert all(0 < c < users for c in counts), counts


# --------------------------------------------------------------------------- time zones
# each zone with its clock changes in 2026 (Kolkata has none: +05:30 all year)
TZ_CHANGES = {
    "America/New_York": ["2026-03-08", "2026-11-01"],
    "Europe/Berlin": ["2026-03-29", "2026-10-25"],
    "Asia/Kolkata": ["2026-03-29"],
    "Australia/Lord_Howe": ["2026-04-05", "2026-10-04"],
}
TZ_ZONES = list(TZ_CHANGES)
TZ_DAYS = sorted({d for days in TZ_CHANGES.values() for d in days})
TZ_RULES = [
    "renews = today()",
    "renews = today() + 1",
    "renews < today()",
    "renews >= today() - 1 AND renews <= today() + 1",
    "now() > renews",
    "now() - interval '1 hour' > renews",
    "renews + interval '30 minutes' > now()",
    "seen_at >= renews",
    "seen_at < renews + 1",
    "did('x', since => today())",
    "did('x', since => today() - 1, until => today())",
    "event_count('x', since => today() - 1) >= 2",
    "did('x', within => '1 day')",
    "did('x', within => '24 hours') AND NOT did('x', since => today())",
    "first_seen('x') >= today()",
    "last_seen('x') < today()",
    "coalesce(renews, today()) > now() - interval '2 days'",
    "CASE WHEN renews IS NULL THEN now() ELSE renews END >= now() - interval '1 day'",
    "event_periods('x', period => '1 day', within => '3 days') >= 2",
]


@pytest.fixture(scope="module")
def tz_store(tmp_path_factory) -> Store:
    """Users whose date attribute and events fall on every hour around each clock change
    of the four zones (and of their days before and after)."""
    from tests.conftest import make_store

    events, users = [], []
    for day in TZ_DAYS:  # ok-loop: building the fixture
        d = dt.date.fromisoformat(day)
        start = dt.datetime.combine(d - dt.timedelta(days=2), dt.time())
        for h in range(0, 24 * 4, 2):
            ts = start + dt.timedelta(hours=h, minutes=(h * 7) % 60)
            uid = f"{day}-{h:03d}"
            events.append((uid, "x", ts))
            if h % 3 == 0:
                events.append((uid, "x", ts + dt.timedelta(hours=5)))
            users.append({"user_id": uid, "renews": (start + dt.timedelta(hours=h)).date()
                          if h % 5 else None,
                          "seen_at": ts + dt.timedelta(minutes=30)})
    home = tmp_path_factory.mktemp("tz_store")
    frame = pl.DataFrame(users).with_columns(
        pl.col("seen_at").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"))
    return make_store(home, events, frame)


def _tz_as_ofs(zone: str) -> list[str]:
    return [a for day in TZ_CHANGES[zone] for a in (day, f"{day}T07:30:00Z")]


@pytest.mark.parametrize("zone", TZ_ZONES)
def test_time_zones_same_members(tz_store, zone):
    """Every engine counts the days of the report zone the same way (DuckDB's
    AT TIME ZONE, ClickHouse's toDateTime64 with a zone, literals computed once)."""
    from segcore.lang.dates import report_zone

    with report_zone(zone):
        problems = []
        for as_of in _tz_as_ofs(zone):  # ok-loop: one case per as-of
            problems += _diff(tz_store, TZ_RULES, as_of)
    assert not problems, "\n".join(problems[:20])


def test_time_zones_change_the_members(tz_store):
    """The zone is not a no-op: today() at a date as-of differs from UTC's day."""
    from segcore.lang.dates import report_zone

    utc = _polars(tz_store, "renews = today()", "2026-03-08")
    for zone in TZ_ZONES:
        with report_zone(zone):
            assert _polars(tz_store, "did('x', since => today())", "2026-03-08") != \
                _polars(tz_store, "did('x', since => today())", "2026-03-08T00:00:00Z")
    assert utc


def test_time_zone_sql_uses_the_dialects_functions(tz_store):
    from segcore.engine.sql import compile_sql

    rule = "now() > renews"
    assert "AT TIME ZONE 'Europe/Berlin'" in compile_sql(tz_store, rule, "duckdb",
                                                         "2026-03-29", tz="Europe/Berlin")
    assert "AT TIME ZONE" not in compile_sql(tz_store, rule, "duckdb", "2026-03-29")
    ch = compile_sql(tz_store, rule, "clickhouse", "2026-03-29", tz="Asia/Kolkata")
    assert "toDateTime64(a.renews, 6, 'Asia/Kolkata')" in ch.replace('"', "")
    sp = compile_sql(tz_store, rule, "spark", "2026-03-29", tz="America/New_York",
                     events_table="e", users_table="u")
    assert "TO_UTC_TIMESTAMP(CAST(" in sp.upper() and "'America/New_York'" in sp
    for d in ("trino", "bigquery", "snowflake", "postgres"):
        text = compile_sql(tz_store, rule, d, "2026-03-29", tz="Australia/Lord_Howe",
                           events_table="e", users_table="u")
        assert "'Australia/Lord_Howe'" in text, d


@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
def test_local_dates_of_events_agree(tz_store, engine):
    """``dialects.local_date`` (the day an event counts for in a SQL report) is Polars'
    ``local_day`` in every zone, on events around every clock change."""
    from sqlglot import exp

    from segcore.engine.polars.expressions import local_day
    from segcore.engine.sql.dialects import dialect_of
    from segcore.lang.dates import report_zone

    D = dialect_of(engine)
    files = tz_store.event_files()
    for zone in TZ_ZONES:  # ok-loop: one query per zone
        day = D.local_date(exp.column("ts"), zone)
        uid = exp.Concat(expressions=[exp.column("user_id"), exp.Literal.string("|"),
                                      exp.Cast(this=exp.column("ts"), to=exp.DataType.build("TEXT")),
                                      exp.Literal.string("|"),
                                      exp.Cast(this=day, to=exp.DataType.build("TEXT"))])
        select = exp.select(uid.as_("user_id")).from_(D.parquet_table(files))
        select = D.settings(select)
        got = sorted(s.split("|", 1)[0] + "|" + s.rsplit("|", 1)[1]
                     for s in run_sql(select.sql(dialect=engine), engine)["user_id"])
        with report_zone(zone):
            want = tz_store.scan_events().select(
                pl.col("user_id") + "|" + local_day(pl.col("ts")).cast(pl.String)
            ).collect().to_series().sort().to_list()
        assert got == want, zone
