"""``segcore retention``, ``segcore lifecycle`` and ``segcore stickiness``
(docs/analytics.md, Retention, Lifecycle and Stickiness).

Each prints its table (JSON with ``--json``); ``--users`` lists the users of one cell
or bar instead, ``--export FILE`` writes them as CSV and ``--save-users NAME`` saves
them as a static segment.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import polars as pl

from segcore.cli.output import (
    add_engine,
    engine_from,
    fmt_int,
    print_json,
    print_table,
    store_from,
    whole_number,
)
from segcore.errors import UsageError
from segcore.query import (
    DateRange,
    LifecycleQuery,
    RetentionQuery,
    StickinessQuery,
    lifecycle_actors,
    retention_actors,
    run_lifecycle,
    run_retention,
    run_stickiness,
    save_actors,
    stickiness_actors,
)

STEPS = ["day", "week", "month"]


def _common(p: argparse.ArgumentParser, users_help: str) -> None:
    p.add_argument("--every", choices=STEPS, default="week",
                   help="period: day, week (named by its Monday) or month (default week)")
    p.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
    p.add_argument("--to", dest="end", required=True, help="last day (included), YYYY-MM-DD")
    add_engine(p)
    p.add_argument("--users", metavar="CELL", help=users_help)
    p.add_argument("--export", metavar="FILE", help="with --users: write them to a CSV file")
    p.add_argument("--save-users", metavar="NAME",
                   help="with --users: save them as a new static segment")
    p.add_argument("--json", action="store_true", help="print JSON")


def register(sub, common: argparse.ArgumentParser) -> None:
    """Add the ``retention``, ``lifecycle`` and ``stickiness`` commands."""
    p = sub.add_parser(
        "retention", parents=[common], help="cohort retention table",
        description="Cohorts by the period of a start event (or of entering a segment) and "
                    "who came back with the return event in each later period "
                    "(docs/analytics.md, Retention).")
    p.add_argument("--start-event", metavar="E", help="the event that puts users in a cohort")
    p.add_argument("--entered", metavar="SEGMENT",
                   help="cohorts by the period users entered this saved segment instead")
    p.add_argument("--return-event", metavar="F", required=True, help="the event of coming back")
    p.add_argument("--periods", type=whole_number(1, 400), default=8, metavar="N",
                   help="periods after the cohort's (default 8): retained[0..N]")
    p.add_argument("--recurring", action="store_true",
                   help="a cohort per period the user did the start event in (default: the "
                        "first time ever only)")
    p.add_argument("--on-or-after", action="store_true",
                   help="retained in period k = came back in period k or later")
    p.add_argument("--segment", action="append", default=[], metavar="NAME",
                   help="a cohort table per saved segment, side by side (repeat)")
    p.add_argument("--population", metavar="NAME", help="only the members of this saved segment")
    p.add_argument("--breakdown", metavar="NAME", help="with --users: the --segment of the cell")
    _common(p, "the users of a cell: COHORT_DAY[:K] (no K: the whole cohort)")
    p.set_defaults(func=cmd_retention)

    p = sub.add_parser(
        "lifecycle", parents=[common], help="new, returning, resurrecting, dormant users",
        description="New, returning, resurrecting and dormant users per period "
                    "(docs/analytics.md, Lifecycle).")
    p.add_argument("--event", required=True, metavar="E", help="the event that makes a user active")
    p.add_argument("--segment", metavar="NAME", help="only the members of this saved segment")
    _common(p, "the users of a bar: PERIOD_DAY:STATUS (new, returning, resurrecting, dormant)")
    p.set_defaults(func=cmd_lifecycle)

    p = sub.add_parser(
        "stickiness", parents=[common], help="users by number of active days per period",
        description="How many users did the event on exactly 1, 2, ... days of each period "
                    "(docs/analytics.md, Stickiness).")
    p.add_argument("--event", required=True, metavar="E", help="the event that makes a day active")
    p.add_argument("--segment", metavar="NAME", help="only the members of this saved segment")
    _common(p, "the users of a bar: PERIOD_DAY:DAYS")
    p.set_defaults(func=cmd_stickiness)


def _cell(text: str, what: str) -> tuple[str, str | None]:
    day, sep, rest = text.partition(":")
    if not day.strip() or (sep and not rest.strip()):
        raise UsageError(f"--users {text!r}: write {what}")
    return day.strip(), rest.strip() if sep else None


def _number(text: str, what: str) -> int:
    if not text.isdigit():
        raise UsageError(f"{what}: expected a whole number, got {text!r}")
    return int(text)


def _users_out(store, args, users: pl.DataFrame, label: str) -> int:
    payload: dict[str, Any] = {"cell": label, "count": users.height,
                               "users": users["user_id"].to_list()}
    if args.export:
        users.write_csv(Path(args.export))
        payload["exported"] = args.export
    if args.save_users:
        payload["saved"] = save_actors(store, users, args.save_users, f"users of {label}")
    if args.json:
        print_json(payload)
        return 0
    print(f"{fmt_int(users.height)} users in {label}")
    if args.export:
        print(f"written to {args.export}")
    if args.save_users:
        print(f"saved as static segment {payload['saved']['name']!r}")
    if not args.export and not args.save_users:
        print("\n".join(payload["users"]))
    return 0


def _drill_flags(args) -> None:
    if args.users is None and (args.export or args.save_users):
        raise UsageError("--export and --save-users go with --users CELL")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def cmd_retention(args) -> int:
    """Print the cohort table (JSON with ``--json``) or one cell's users."""
    _drill_flags(args)
    store = store_from(args)
    query = RetentionQuery(
        start_event=args.start_event, return_event=args.return_event,
        range=DateRange(args.start, args.end), every=args.every, periods=args.periods,
        recurring=args.recurring, on_or_after=args.on_or_after, entered=args.entered,
        segment=args.population, compare=tuple(args.segment))
    if args.users is not None:
        day, k = _cell(args.users, "COHORT_DAY[:K]")
        kk = None if k is None else _number(k, "--users K")
        if args.segment and args.breakdown is None:
            raise UsageError("with several --segment tables, say whose cell: --breakdown NAME")
        users = retention_actors(store, query, day, kk, args.breakdown)
        label = f"cohort {day}" + ("" if kk is None else f", period {kk}")
        return _users_out(store, args, users, label)
    if args.breakdown:
        raise UsageError("--breakdown goes with --users CELL")
    result = run_retention(store, query, engine_from(args)).to_dict()
    if args.json:
        print_json(result)
        return 0
    parts = result.get("segments") or [{"segment": None, **result}]
    for part in parts:
        if part["segment"] is not None:
            print(f"\nsegment {part['segment']}")
        rows = {"cohort": [c["period"] for c in part["cohorts"]],
                "size": [fmt_int(c["size"]) for c in part["cohorts"]]}
        for k in range(args.periods + 1):
            rows[str(k)] = [_pct(c["shares"][k]) for c in part["cohorts"]]
        rows["cohort"].append("average")
        rows["size"].append(fmt_int(part["average"][0]["size"]))
        for k in range(args.periods + 1):
            rows[str(k)].append(_pct(part["average"][k]["share"]))
        print_table(pl.DataFrame(rows), max_rows=len(rows["cohort"]))
    return 0


def cmd_lifecycle(args) -> int:
    """Print the lifecycle per period (JSON with ``--json``) or one bar's users."""
    _drill_flags(args)
    store = store_from(args)
    query = LifecycleQuery(args.event, DateRange(args.start, args.end), args.every, args.segment)
    if args.users is not None:
        day, status = _cell(args.users, "PERIOD_DAY:STATUS")
        if status is None:
            raise UsageError(f"--users {args.users!r}: write PERIOD_DAY:STATUS")
        users = lifecycle_actors(store, query, day, status)
        return _users_out(store, args, users, f"{status} in {day}")
    result = run_lifecycle(store, query, engine_from(args))
    if args.json:
        print_json(result.to_dict())
        return 0
    print_table(result.table, max_rows=max(50, result.table.height))
    return 0


def cmd_stickiness(args) -> int:
    """Print users by active days per period (JSON with ``--json``) or one bar's users."""
    _drill_flags(args)
    store = store_from(args)
    query = StickinessQuery(args.event, DateRange(args.start, args.end), args.every, args.segment)
    if args.users is not None:
        day, n = _cell(args.users, "PERIOD_DAY:DAYS")
        if n is None:
            raise UsageError(f"--users {args.users!r}: write PERIOD_DAY:DAYS")
        users = stickiness_actors(store, query, day, _number(n, "--users DAYS"))
        return _users_out(store, args, users, f"{n} active days in {day}")
    result = run_stickiness(store, query, engine_from(args))
    if args.json:
        print_json(result.to_dict())
        return 0
    wide = result.table.filter(pl.col("users") > 0)
    print_table(wide, max_rows=max(50, wide.height))
    return 0
