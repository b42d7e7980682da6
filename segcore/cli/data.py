"""``segcore sample`` (make the demo store) and ``segcore info`` (describe a store)."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable

from segcore.cli.output import fmt_int, print_json, store_from, whole_number
from segcore.errors import StoreError
from segcore.sample.limits import MAX_DAYS, MAX_USERS


def register(sub, common: argparse.ArgumentParser) -> None:
    """Add the ``sample`` and ``info`` commands."""
    p = sub.add_parser(
        "sample",
        parents=[common],
        help="write the deterministic demo store",
        description="Write the deterministic demo data set (docs/architecture.md, Sample data) into the store.",
    )
    p.add_argument(
        "--users", type=whole_number(1, MAX_USERS), default=10_000,
        help=f"number of users (default 10000, at most {MAX_USERS:,})",
    )
    p.add_argument(
        "--days", type=whole_number(1, MAX_DAYS), default=180,
        help=f"days of events (default 180, at most {MAX_DAYS:,})",
    )
    p.add_argument("--end", help="last day of data, YYYY-MM-DD (default: today, UTC)")
    p.add_argument("--seed", type=whole_number(0, 2**63 - 1), default=42, help="random seed (default 42)")
    p.add_argument("--force", action="store_true", help="replace a store that has data")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser(
        "info",
        parents=[common],
        help="describe the store",
        description="Users, events, date range, event names and columns of the store.",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)


def _progress_printer() -> Callable[[float, str], None] | None:
    """A percentage line updated in place on a terminal; nothing otherwise."""
    if not sys.stderr.isatty():
        return None

    def show(fraction: float, message: str) -> None:
        end = "\n" if fraction >= 1.0 else ""
        sys.stderr.write(f"\rgenerating: {fraction:4.0%}  {message}\x1b[K{end}")
        sys.stderr.flush()

    return show


def cmd_sample(args) -> int:
    """Generate the demo store (refuses to overwrite data without ``--force``)."""
    from segcore.sample import generate

    store = store_from(args, must_exist=False)
    if not store.is_empty() and not args.force:
        raise StoreError(
            f"{store.home} already holds data; add --force to replace it with sample data"
        )
    summary = generate(
        store.home,
        users=args.users,
        days=args.days,
        end=args.end,
        seed=args.seed,
        progress=_progress_printer() if args.users >= 50_000 else None,
    )
    if args.json:
        print_json(summary)
    else:
        print(
            f"wrote {fmt_int(summary['users'])} users and {fmt_int(summary['events'])} events "
            f"({summary['first_day']} to {summary['last_day']}) to {summary['home']} in "
            f"{summary['seconds']:.1f} s ({fmt_int(summary['events_per_second'] or 0)} events/s)"
        )
    return 0


def cmd_info(args) -> int:
    """Print a summary of the store."""
    store = store_from(args, must_exist=False)  # a missing store is "empty": how to fill it
    info = store.info()
    if args.json:
        print_json(info)
        return 0
    if info["users"] == 0 and info["events"] == 0:
        print(
            f"the store at {store.home} is empty: run `segcore sample` for demo data "
            "or `segcore ingest` to import your own"
        )
        return 0
    first = (info["first_event"] or "-")[:10]
    last = (info["last_event"] or "-")[:10]
    print(f"store       {info['home']}")
    print(f"users       {fmt_int(info['users'])}")
    print(f"events      {fmt_int(info['events'])}  ({fmt_int(info['users_with_events'])} users)")
    print(f"date range  {first} to {last}")
    _section("events by name", [(e["event"], fmt_int(e["count"])) for e in info["event_names"]])
    _section("event columns", [(k, _short(v)) for k, v in info["event_columns"].items()])
    _section("user columns", [(k, _short(v)) for k, v in info["user_columns"].items()])
    return 0


def _short(dtype: str) -> str:
    """``Datetime(time_unit='us', time_zone='UTC')`` -> ``Datetime(us, UTC)``."""
    return re.sub(r"\w+='([^']*)'", r"\1", dtype)


def _section(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n{title}:")
    if not rows:
        print("  (none)")
        return
    width = max(len(k) for k, _ in rows)
    right = title.startswith("events")
    vwidth = max(len(v) for _, v in rows)
    for k, v in rows:  # ok-loop: one line per column or event name
        print(f"  {k:<{width}}  {v:>{vwidth}}" if right else f"  {k:<{width}}  {v}")
