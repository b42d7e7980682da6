"""Example segments for the sample data (the cookbook's rules), used by the demo.

``EXAMPLES`` is plain data; :func:`seed_examples` saves those that fit the store.
"""

from __future__ import annotations

from segcore.errors import SegcoreError
from segcore.store.events import EventStore

EXAMPLES: list[dict[str, str]] = [
    {
        "name": "Frequent buyers",
        "rule": "event_count('charged', within => '90 days') >= 3",
        "description": "Bought at least three times in the last 90 days",
    },
    {
        "name": "Cart abandoners",
        "rule": "did_then_not('added_to_cart', 'charged', gap => '10 minutes', "
        "within => '30 days')",
        "description": "Added to cart in the last 30 days and did not buy within 10 minutes",
    },
    {
        "name": "Inactive loyal customers",
        "rule": "total_spent > 10000 AND NOT did('charged', within => '90 days')",
        "description": "Spent more than 10,000 in total but nothing in the last 90 days",
    },
    {
        "name": "Email subscribers",
        "rule": "email_opt_in",
        "description": "Opted in to e-mail",
    },
    {
        "name": "Hot leads",
        "rule": "lead_score > 70 AND created_at >= now() - interval '14 days'",
        "description": "Lead score above 70, signed up in the last 14 days",
    },
    {
        "name": "Pricing page visitors",
        "rule": "event_count('page_viewed', where => page = 'pricing') > 2",
        "description": "Visited the pricing page more than twice",
    },
    # more from the cookbook (docs/cookbook.md; checked against DuckDB in tests/docs/test_cookbook.py)
    {
        "name": "Junior product and engineering staff",
        "rule": "department IN ('Product', 'Engineering') AND (contains(title, 'Junior') OR contains(title, 'Associate'))",
        "description": "Department is Product or Engineering and the title includes Junior or Associate.",
    },
    {
        "name": "High-value customers",
        "rule": "event_count('charged') >= 3 OR event_sum('charged', amount) > 1000",
        "description": "Several purchases (three or more) or more than 1,000 spent in total.",
    },
    {
        "name": "VIP local shoppers",
        "rule": "city = 'New York' AND did('charged', within => '30 days') AND did('email_opened', within => '30 days')",
        "description": "Lives in New York, bought something and opened an e-mail in the last 30 days.",
    },
    {
        "name": "Abandoned carts",
        "rule": "did('added_to_cart', within => '7 days') AND NOT did('charged', within => '7 days')",
        "description": "Added something to the cart in the last 7 days and bought nothing in that time.",
    },
    {
        "name": "High spenders",
        "rule": "event_sum('charged', amount, within => '90 days') > 2000",
        "description": "Spent more than 2,000 in the last 90 days.",
    },
    {
        "name": "Bought a TV in the last 10 days",
        "rule": "did('charged', within => '10 days', where => product LIKE '%TV%')",
        "description": "A purchase of a product whose name contains TV in the last 10 days.",
    },
    {
        "name": "Visited last month but not last week",
        "rule": "did('page_viewed', within => '30 days') AND NOT did('page_viewed', within => '7 days')",
        "description": "Viewed a page in the last 30 days but not in the last 7 days.",
    },
    {
        "name": "Engaged with sales",
        "rule": "did('conversation_started', within => '7 days') OR did('appointment_booked') OR did('form_submitted')",
        "description": "Had a conversation in the last 7 days, booked an appointment or submitted a form.",
    },
]


def seed_examples(store: EventStore, *, skip_invalid: bool = True) -> list[str]:
    """Save the example segments that do not exist yet; return the names saved.

    Parameters
    ----------
    store
        The target store (the sample data's columns and events are expected).
    skip_invalid
        Skip an example whose rule does not fit the store (unknown column or
        event) instead of raising.
    """
    from segcore.segments import create_segment

    saved = []
    for ex in EXAMPLES:
        if store.catalog.exists(ex["name"]):
            continue
        try:
            create_segment(store, ex["name"], ex["rule"], description=ex["description"])
        except SegcoreError:
            if not skip_invalid:
                raise
            continue
        saved.append(ex["name"])
    return saved
