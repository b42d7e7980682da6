"""``segcore funnel`` and ``segcore events`` (docs/analytics.md, Funnels and Event reports).

Step numbers on the command line are 1-based (``--step-where 2:...``,
``--exclude E:1-3``, ``--after-step 1``).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from typing import Any

import polars as pl

from segcore.api import Store
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
    EventQuery,
    FunnelQuery,
    FunnelTrendQuery,
    run_events,
    run_funnel,
    run_funnel_trend,
    save_dropoffs,
    save_funnel,
    saved_funnel,
)


def register(sub, common: argparse.ArgumentParser) -> None:
    """Add the ``funnel`` and ``events`` commands."""
    p = sub.add_parser(
        "funnel",
        parents=[common],
        help="conversion funnel over ordered steps",
        description="Users reaching each step of a funnel (docs/analytics.md, Funnels).",
    )
    p.add_argument(
        "--saved",
        metavar="NAME",
        help="open a saved funnel (its steps, window, range and options)",
    )
    p.add_argument(
        "--step",
        action="append",
        metavar="EVENT",
        help="a step's event name (repeat, in order; required without --saved)",
    )
    p.add_argument(
        "--step-where",
        action="append",
        default=[],
        metavar="N:FILTER",
        help='filter of step N (1-based) over event columns, e.g. "3:amount > 500"',
    )
    p.add_argument(
        "--window", help="conversion window, e.g. 30m, 12h, 1d (default 1d)"
    )
    p.add_argument("--from", dest="start", help="first day, YYYY-MM-DD (required without --saved)")
    p.add_argument("--to", dest="end", help="last day (included), YYYY-MM-DD")
    p.add_argument("--strict", action="store_true", help="timestamps must strictly increase")
    p.add_argument("--any-order", action="store_true", help="steps may happen in any order")
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="EVENT[:I-J]",
        help="exclusion event between steps I and J (1-based; default first-last)",
    )
    p.add_argument("--hold", metavar="PROP", help="event property every step must share")
    p.add_argument(
        "--segment",
        action="append",
        default=[],
        metavar="NAME",
        help="break down by saved segment (repeat for side by side)",
    )
    p.add_argument(
        "--over-time",
        choices=["day", "week"],
        help="also report conversion per day or week of entry",
    )
    p.add_argument(
        "--save-dropoffs",
        metavar="NAME",
        help="save the users who dropped off after --after-step as a static segment",
    )
    p.add_argument("--after-step", type=whole_number(1, 1_000), metavar="N", help="step number for --save-dropoffs")
    p.add_argument("--save", metavar="NAME", help="save this funnel (open it again with --saved)")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_engine(p)
    p.set_defaults(func=cmd_funnel)

    p = sub.add_parser(
        "events",
        parents=[common],
        help="event counts and users per day or week",
        description="Events and distinct users per period (docs/analytics.md, Event reports).",
    )
    p.add_argument(
        "--event",
        action="append",
        required=True,
        metavar="EVENT",
        help="event name (repeat for several)",
    )
    p.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
    p.add_argument("--to", dest="end", required=True, help="last day (included), YYYY-MM-DD")
    p.add_argument(
        "--every",
        choices=["day", "week"],
        default="day",
        help="period (weeks are named by their Monday)",
    )
    p.add_argument(
        "--segment",
        action="append",
        default=[],
        metavar="NAME",
        help="restrict to / break down by saved segment (repeat for several)",
    )
    p.add_argument("--by", metavar="PROP", help="break down by an event property")
    p.add_argument("--top", type=whole_number(1, 100_000), default=10, help="property values kept by --by (default 10)")
    p.add_argument("--where", metavar="FILTER", help="filter over event columns")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_engine(p)
    p.set_defaults(func=cmd_events)


def _step_number(text: str, k: int, what: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= k:
        raise UsageError(f"{what}: step number must be 1 to {k}, got {text!r}")
    return int(text) - 1


def funnel_steps(names: list[str], wheres: list[str]) -> list[Any]:
    """``--step`` and ``--step-where N:FILTER`` options as funnel steps."""
    steps: list[Any] = list(names)
    for item in wheres:
        num, sep, text = item.partition(":")
        if not sep or not text.strip():
            raise UsageError(f"--step-where {item!r}: write N:FILTER, e.g. 2:amount > 500")
        i = _step_number(num, len(steps), f"--step-where {item!r}")
        steps[i] = {"event": names[i], "where": text.strip()}
    return steps


def funnel_exclusions(items: list[str], k: int) -> list[dict[str, Any]]:
    """``--exclude EVENT[:I-J]`` options (1-based steps) as exclusion dicts."""
    out = []
    for item in items:
        m = re.fullmatch(r"(.+):(\d+)-(\d+)", item)
        if m:
            what = f"--exclude {item!r}"
            between = [_step_number(m.group(2), k, what), _step_number(m.group(3), k, what)]
            out.append({"event": m.group(1), "between": between})
        else:
            out.append({"event": item})
    return out


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = float(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s / size:.1f}{unit}"
    return f"{s:.0f}s"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _steps_table(steps: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "step": [str(i + 1) for i in range(len(steps))],
            "event": [s["event"] + (f" [{s['where']}]" if s["where"] else "") for s in steps],
            "users": [fmt_int(s["users"]) for s in steps],
            "from first": [_pct(s["conversion_from_first"]) for s in steps],
            "from previous": [_pct(s["conversion_from_previous"]) for s in steps],
            "median time": [_duration(s["median_seconds_from_first"]) for s in steps],
        }
    )


def funnel_query(args: argparse.Namespace, store: Store) -> FunnelQuery:
    """The funnel of the command line: a saved one (``--saved``) or the given steps."""
    if args.saved:
        given = [f for f in ("step", "step_where", "exclude", "hold", "segment")
                 if getattr(args, f)] + [f for f in ("strict", "any_order") if getattr(args, f)]
        if given:
            flags = ", ".join("--" + f.replace("_", "-") for f in given)
            raise UsageError(f"--saved opens a whole funnel: drop {flags}")
        query = saved_funnel(store, args.saved)
        if args.start or args.end:
            rng = DateRange.of(args.start, args.end, "give both --from and --to (or neither)")
            query = dataclasses.replace(query, range=rng)
        if args.window:
            query = dataclasses.replace(query, window=args.window)
        return query
    missing = [f for f, v in (("--step", args.step), ("--from", args.start), ("--to", args.end))
               if not v]
    if missing:
        raise UsageError(f"the following arguments are required: {', '.join(missing)} "
                         "(or open a saved funnel with --saved NAME)")
    steps = funnel_steps(args.step, args.step_where)
    return FunnelQuery(
        steps=tuple(steps),
        window=args.window or "1d",
        range=DateRange(args.start, args.end),
        strict=args.strict,
        order="any" if args.any_order else "ordered",
        exclusions=tuple(funnel_exclusions(args.exclude, len(steps))),
        hold=args.hold,
        compare=tuple(args.segment),
    )


def cmd_funnel(args) -> int:
    """Run a funnel and print it (JSON with ``--json``)."""
    store = store_from(args)
    query = funnel_query(args, store)
    result = run_funnel(store, query, engine=engine_from(args)).to_dict()
    result.pop("overall_conversion", None)  # the CLI's JSON is the report itself
    # the trend and the drop-offs are of the whole population (no comparison)
    whole = dataclasses.replace(query, compare=())
    table = None
    if args.over_time:
        table = run_funnel_trend(store, FunnelTrendQuery(whole, args.over_time),
                                 engine=engine_from(args)).rows
        result["over_time"] = table.to_dicts()
    if args.save_dropoffs:
        if args.after_step is None:
            raise UsageError("--save-dropoffs needs --after-step N")
        result["saved"] = save_dropoffs(store, whole, args.after_step, args.save_dropoffs)
    elif args.after_step is not None:
        raise UsageError("--after-step goes with --save-dropoffs NAME")
    if args.save:
        save_funnel(store, args.save, query)
        result["saved_funnel"] = args.save
    if args.json:
        print_json(result)
        return 0
    print(
        f"funnel {result['from'][:10]} .. {query.range.end if query.range else result['to'][:10]}"
        f", window {query.window}"
        + (", strict" if query.strict else "")
        + (", any order" if query.order == "any" else "")
    )
    if "segments" in result:
        for name, part in result["segments"].items():
            print(f"\nsegment {name} ({fmt_int(part['members'])} members)")
            print_table(_steps_table(part["steps"]))
    else:
        print_table(_steps_table(result["steps"]))
    if table is not None:  # the frame itself: rebuilding it from dicts guesses types
        print()
        print_table(table)
    if args.save:
        print(f"saved funnel {args.save!r}")
    if args.save_dropoffs:
        saved = result["saved"]
        print(
            f"saved {fmt_int(saved['members'])} users who dropped off after step "
            f"{args.after_step} as static segment {saved['name']!r}"
        )
    return 0


def cmd_events(args) -> int:
    """Run an event report and print it (JSON with ``--json``)."""
    store = store_from(args)
    query = EventQuery(
        events=tuple(args.event),
        range=DateRange(args.start, args.end),
        every=args.every,
        compare=tuple(args.segment),
        by=args.by,
        top=args.top,
        where=args.where,
    )
    df = run_events(store, query, engine=engine_from(args)).rows
    if args.json:
        payload: dict[str, Any] = {
            "events": list(dict.fromkeys(args.event)),
            "from": args.start,
            "to": args.end,
            "every": args.every,
            "rows": df.to_dicts(),
        }
        if args.segment:
            payload["segments"] = list(dict.fromkeys(args.segment))
        if args.by:
            payload["by"] = args.by
            payload["top"] = args.top
        print_json(payload)
        return 0
    print_table(df, max_rows=max(50, df.height))
    return 0
