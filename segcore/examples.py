"""Example segments for the sample data (the cookbook's rules), used by the demo.

``EXAMPLES`` is plain data; :func:`seed_examples` saves those that fit the store.
"""

from __future__ import annotations

from segcore.errors import SegcoreError
from segcore.store import Store

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
]


def seed_examples(store: Store, *, skip_invalid: bool = True) -> list[str]:
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
