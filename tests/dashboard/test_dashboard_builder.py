"""The visual builder's model <-> condition tree mapping (dashboard/builder.py)."""

from __future__ import annotations

import pytest

from dashboard import builder as bm
from segcore.engine.polars.evaluate import schema_of, to_tree
from segcore.errors import RuleError
from segcore.lang.printer import to_text
from segcore.sample.examples import EXAMPLES, seed_examples

AS_OF = "2026-06-30"

ROUND_TRIP = [
    *(e["rule"] for e in EXAMPLES),
    "(country = 'US' OR country = 'DE') AND age >= 30",
    "country IN ('US', 'DE') OR NOT in_segment('Hot leads')",
    "first_seen('charged') >= now() - INTERVAL '7 days'",
    "(did('charged') OR age > 60) AND NOT in_segment('Hot leads') AND plan IN ('pro')",
    "country = 'US' OR (age > 30 AND did('charged', within => '2 weeks')) OR country = 'DE'",
    "event_sum('charged', amount, within => '30 days', where => payment_method = 'card') > 100",
    "NOT did('email_opened', within => '14 days') AND phone IS NOT NULL",
    "did_then('added_to_cart', 'charged', gap => '1 hour')",
    "contains(city, 'on') AND plan NOT IN ('free')",
    "NOT email_opt_in",
]
ADVANCED = [
    "age + 1 > 30",
    "did('charged', since => '2026-01-01')",
    "event_avg('charged', amount) > 10",
    "lower(country) = 'us'",
]


@pytest.fixture(scope="module")
def schema(sample_store):
    return schema_of(sample_store, check_names=False)


@pytest.mark.parametrize("rule", ROUND_TRIP)
def test_rules_the_builder_can_show_round_trip(writable_sample, rule):
    seed_examples(writable_sample)
    schema = schema_of(writable_sample)
    tree = to_tree(writable_sample, rule)
    model = bm.from_tree(tree)
    assert model is not None
    again = bm.to_tree(model, schema)
    assert writable_sample.count(again, as_of=AS_OF) == writable_sample.count(tree, as_of=AS_OF)
    assert bm.from_tree(to_tree(writable_sample, to_text(again))) == model


@pytest.mark.parametrize("rule", ADVANCED)
def test_other_rules_are_advanced(sample_store, rule):
    assert bm.from_tree(to_tree(sample_store, rule)) is None


def test_rows_print_as_rule_text(schema):
    model = {
        "op": "or",
        "groups": [
            {
                "op": "and",
                "rows": [
                    {"kind": "attribute", "column": "age", "op": ">=", "value": "30"},
                    {
                        "kind": "attribute",
                        "column": "created_at",
                        "op": "in the last",
                        "value": "14 days",
                    },
                ],
            },
            {
                "op": "and",
                "rows": [
                    {
                        "kind": "event",
                        "did": False,
                        "event": "charged",
                        "measure": "count",
                        "cmp": ">=",
                        "amount": 2.0,
                        "prop": None,
                        "within": [90, "days"],
                        "where": "amount > 10",
                    },
                ],
            },
            {
                "op": "and",
                "rows": [
                    {
                        "kind": "sequence",
                        "then_not": True,
                        "first": "added_to_cart",
                        "then": "charged",
                        "gap": [10, "minutes"],
                        "within": [0, "days"],
                    },
                    {"kind": "first", "event": "signed_up", "within": [7, "days"]},
                    {"kind": "attribute", "column": "email_opt_in", "op": "is true", "value": ""},
                ],
            },
        ],
    }
    assert bm.to_rule_text(model, schema) == (
        "age >= 30 AND created_at >= now() - INTERVAL '2 weeks'"
        " OR NOT event_count('charged', within => '90 days', where => amount > 10) >= 2"
        " OR did_then_not('added_to_cart', 'charged', gap => '10 minutes')"
        " AND first_seen('signed_up') >= now() - INTERVAL '1 week' AND email_opt_in"
    )


def test_bad_values_name_the_attribute(schema):
    model = {
        "op": "and",
        "groups": [
            {
                "op": "and",
                "rows": [{"kind": "attribute", "column": "age", "op": ">", "value": "old"}],
            }
        ],
    }
    with pytest.raises(RuleError, match="age: 'old' is not a valid int value"):
        bm.to_tree(model, schema)


def test_new_rows_are_valid(schema):
    for kind in bm.KINDS:
        if kind == "segment":
            continue
        row = bm.new_row(kind, schema)
        if kind == "attribute":
            row.update(column="age", op=">", value="20")
        model = {"op": "and", "groups": [{"op": "and", "rows": [row]}]}
        assert bm.from_tree(bm.to_tree(model, schema)) is not None
