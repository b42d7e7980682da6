"""``segcore funnel`` and ``segcore events`` (docs/analytics.md, Funnels and Event reports).

Step numbers on the command line are 1-based (``--step-where 2:...``,
``--exclude E:1-3``, ``--after-step 1``).
"""

from __future__ import annotations

import argparse
import re
from typing import Any

import polars as pl

from segcore.cli.output import fmt_int, print_json, print_table, store_from
from segcore.errors import UsageError


def register(sub, common: argparse.ArgumentParser) -> None:
    """Add the ``funnel`` and ``events`` commands."""
    p = sub.add_parser(
        "funnel",
        parents=[common],
        help="conversion funnel over ordered steps",
        description="Users reaching each step of a funnel (docs/analytics.md, Funnels).",
    )
    p.add_argument(
        "--step",
        action="append",
        required=True,
        metavar="EVENT",
        help="a step's event name (repeat, in order)",
    )
    p.add_argument(
        "--step-where",
        action="append",
        default=[],
        metavar="N:FILTER",
        help='filter of step N (1-based) over event columns, e.g. "3:amount > 500"',
    )
    p.add_argument(
        "--window", default="1d", help="conversion window, e.g. 30m, 12h, 1d (default 1d)"
    )
    p.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
    p.add_argument("--to", dest="end", required=True, help="last day (included), YYYY-MM-DD")
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
    p.add_argument("--after-step", type=int, metavar="N", help="step number for --save-dropoffs")
    p.add_argument("--json", action="store_true", help="print JSON")
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
    p.add_argument("--top", type=int, default=10, help="property values kept by --by (default 10)")
    p.add_argument("--where", metavar="FILTER", help="filter over event columns")
    p.add_argument("--json", action="store_true", help="print JSON")
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


def cmd_funnel(args) -> int:
    """Run a funnel and print it (JSON with ``--json``)."""
    from segcore.analytics.funnel import funnel, funnel_over_time, save_dropoffs

    store = store_from(args)
    steps = funnel_steps(args.step, args.step_where)
    options: dict[str, Any] = {
        "exclusions": funnel_exclusions(args.exclude, len(steps)),
        "hold": args.hold,
        "order": "any" if args.any_order else "ordered",
    }
    result = funnel(
        store,
        steps,
        window=args.window,
        start=args.start,
        end=args.end,
        strict=args.strict,
        segments=args.segment or None,
        **options,
    )
    if args.over_time:
        table = funnel_over_time(
            store,
            steps,
            args.window,
            args.start,
            args.end,
            every=args.over_time,
            strict=args.strict,
            **options,
        )
        result["over_time"] = table.to_dicts()
    if args.save_dropoffs:
        if args.after_step is None:
            raise UsageError("--save-dropoffs needs --after-step N")
        result["saved"] = save_dropoffs(
            store,
            args.save_dropoffs,
            steps,
            args.window,
            args.start,
            args.end,
            args.strict,
            after_step=args.after_step,
            **options,
        )
    elif args.after_step is not None:
        raise UsageError("--after-step goes with --save-dropoffs NAME")
    if args.json:
        print_json(result)
        return 0
    print(
        f"funnel {result['from'][:10]} .. {args.end}, window {args.window}"
        + (", strict" if args.strict else "")
        + (", any order" if args.any_order else "")
    )
    if "segments" in result:
        for name, part in result["segments"].items():
            print(f"\nsegment {name} ({fmt_int(part['members'])} members)")
            print_table(_steps_table(part["steps"]))
    else:
        print_table(_steps_table(result["steps"]))
    if args.over_time:
        print()
        print_table(pl.DataFrame(result["over_time"]))
    if args.save_dropoffs:
        saved = result["saved"]
        print(
            f"saved {fmt_int(saved['members'])} users who dropped off after step "
            f"{args.after_step} as static segment {saved['name']!r}"
        )
    return 0


def cmd_events(args) -> int:
    """Run an event report and print it (JSON with ``--json``)."""
    from segcore.analytics.event_report import event_report

    store = store_from(args)
    df = event_report(
        store,
        args.event,
        start=args.start,
        end=args.end,
        every=args.every,
        segments=args.segment or None,
        by=args.by,
        top=args.top,
        where=args.where,
    )
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
