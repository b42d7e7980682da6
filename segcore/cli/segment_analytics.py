"""CLI: ``trend``, ``reach``, ``profile``, ``overlap`` and ``engagement``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from segcore.cli.output import (
    AS_OF_HELP,
    MAX_ROWS_SHOWN,
    add_engine,
    engine_from,
    fmt_int,
    print_json,
    print_table,
    store_from,
    whole_number,
)
from segcore.cli.segments import target
from segcore.errors import UsageError
from segcore.query import (
    DateRange,
    EngagementQuery,
    EngagementTrendQuery,
    OverlapQuery,
    ProfileQuery,
    ReachQuery,
    Target,
    TrendQuery,
    reach_actors,
    run_engagement,
    run_engagement_trend,
    run_overlap,
    run_profile,
    run_reach,
    run_trend,
    trend_actors,
)
from segcore.store.files import atomic_path
from segcore.store.outputs import check_output_path


def _add_target(p, *, many: bool = False) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--rule", help="rule text (use - to read it from stdin)")
    g.add_argument("--rule-file", help="file holding the rule text")
    g.add_argument("--segment", help="name of a saved segment")
    if many:
        g.add_argument(
            "--segments", nargs="+", metavar="NAME", help="several saved segments side by side"
        )


def _write_csv(store, frame: pl.DataFrame, out: Path) -> None:
    check_output_path(store, out, "--out")
    if out.suffix.lower() != ".csv":
        raise UsageError(f"--out must end in .csv, got {out.name!r}")
    with atomic_path(out) as tmp:
        frame.write_csv(tmp)


def _pinned(cmd):
    """Run ``cmd(args, store)`` on one consistent set of the store's files."""

    def run(args) -> int:
        store = store_from(args)
        with store.pinned():
            return cmd(args, store)

    return run


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


# --------------------------------------------------------------------------- trend
def cmd_trend(args, store) -> int:
    if args.out:  # refused before any work
        check_output_path(store, args.out, "--out")
    rng = DateRange.of(args.start, args.end, "a trend needs a start and an end date")
    if args.segments:
        if args.entered or args.exited:
            raise UsageError("--entered/--exited need one rule or segment, not --segments")
        results = {
            name: run_trend(store, TrendQuery(Target(segment=name), rng, args.every),
                            engine=engine_from(args))
            for name in args.segments
        }
        payload: dict[str, Any] = {
            "segments": {name: r.to_dict() for name, r in results.items()}
        }
        if args.json:
            print_json(payload)
        else:
            df = pl.concat([r.points.select(pl.lit(name).alias("segment"), pl.all())
                            for name, r in results.items()])
            print_table(df, max_rows=1000)
        return 0
    rule, segment = target(args)
    query = TrendQuery(Target(rule, segment), rng, args.every)
    result = run_trend(store, query, engine=engine_from(args))
    df = result.points
    payload = result.to_dict()
    lists = []
    for which in ("entered", "exited"):
        day = getattr(args, which)
        if day:
            ids = trend_actors(store, query, day, which, engine=engine_from(args))
            lists.append(ids.with_columns(pl.lit(which).alias("change"), pl.lit(day).alias("date")))
            payload[which] = {
                "date": day,
                "count": ids.height,
                "user_ids": ids["user_id"].to_list(),
            }
    if args.out:
        if not lists:
            raise UsageError("--out writes the --entered/--exited lists: give one of them")
        _write_csv(store, pl.concat(lists), Path(args.out))
        payload["out"] = args.out
    if args.json:
        print_json(payload)
        return 0
    print_table(df, max_rows=1000)
    for which in ("entered", "exited"):
        if which in payload:
            info = payload[which]
            print(f"{which} on {info['date']}: {fmt_int(info['count'])}")
            if info["user_ids"]:
                print("  " + ", ".join(info["user_ids"]))
    if args.out:
        print(f"wrote {args.out}")
    return 0


# --------------------------------------------------------------------------- reach
def cmd_reach(args, store) -> int:
    rule, segment = target(args)
    query = ReachQuery(Target(rule, segment), args.as_of)
    if args.channel:
        df = reach_actors(store, query, args.channel, engine=engine_from(args))
        if args.json:
            print_json({"channel": args.channel, "count": df.height, "members": df.to_dicts()})
        else:
            print_table(df, max_rows=args.limit)
        return 0
    out = run_reach(store, query, engine=engine_from(args)).to_dict()
    if args.json:
        print_json(out)
        return 0
    n = out["members"]
    print(f"{fmt_int(n)} members as of {out['as_of']}")
    rows = [
        {"channel": k, "count": v["count"], "share": _pct(v["share"]), "note": v.get("error", "")}
        for k, v in out["channels"].items()
    ]
    rows += [
        {
            "channel": "(any)",
            "count": out["any"],
            "share": _pct(out["any_share"]),
            "note": "",
        },
        {
            "channel": "(none)",
            "count": out["none"],
            "share": _pct(out["none_share"]),
            "note": "",
        },
    ]
    print_table(pl.DataFrame(rows))
    if out["combinations"]:
        print("combinations (exactly these channels):")
        print_table(
            pl.DataFrame(
                [
                    {"channels": " + ".join(c["channels"]) or "(none)", "count": c["count"]}
                    for c in out["combinations"]
                ]
            )
        )
    return 0


# --------------------------------------------------------------------------- profile
def cmd_profile(args, store) -> int:
    rule, segment = target(args)
    attrs = None if args.attribute is None else tuple(args.attribute)
    query = ProfileQuery(Target(rule, segment), args.as_of, attrs, args.top, args.bins)
    out = run_profile(store, query, engine=engine_from(args)).to_dict()
    if args.json:
        print_json(out)
        return 0
    print(f"{fmt_int(out['members'])} members of {fmt_int(out['all'])} users as of {out['as_of']}")
    for name, body in out["attributes"].items():
        rows = body.get("values") or body.get("bins") or body.get("months") or []
        extra = ""
        if body["kind"] == "numeric" and body.get("mean") is not None:
            extra = (
                f" (mean {body['mean']:.4g} vs {body['all_mean']:.4g}, "
                f"median {body['median']:.4g} vs {body['all_median']:.4g})"
            )
        print(f"\n{name} [{body['kind']}]{extra}")
        if rows:
            print_table(
                pl.DataFrame(
                    [
                        {
                            "value": str(r["value"]),
                            "count": r["count"],
                            "share": _pct(r["share"]),
                            "all": r["all_count"],
                            "all share": _pct(r["all_share"]),
                            "lift": "" if r["lift"] is None else f"{r['lift']:.2f}",
                        }
                        for r in rows
                    ]
                ),
                max_rows=200,
            )
    return 0


# --------------------------------------------------------------------------- overlap
def cmd_overlap(args, store) -> int:
    out = run_overlap(store, OverlapQuery(tuple(args.names), args.as_of),
                      engine=engine_from(args)).to_dict()
    if args.json:
        print_json(out)
        return 0
    print(f"as of {out['as_of']}: union {fmt_int(out['union'])}")
    print_table(pl.DataFrame([{"segment": k, "members": v} for k, v in out["sizes"].items()]))
    print("regions (exactly these segments):")
    print_table(
        pl.DataFrame(
            [{"segments": " & ".join(r["segments"]), "count": r["count"]} for r in out["regions"]]
        )
        if out["regions"]
        else pl.DataFrame({"segments": [], "count": []})
    )
    print("pairs:")
    print_table(pl.DataFrame([{**p, "jaccard": round(p["jaccard"], 4)} for p in out["pairs"]]))
    return 0


# --------------------------------------------------------------------------- engagement
def cmd_engagement(args, store) -> int:
    rule, segment = target(args)
    if (args.start is None) != (args.end is None):
        raise UsageError("give both --from and --to (or neither)")
    if args.start:
        trend_q = EngagementTrendQuery(Target(rule, segment), DateRange(args.start, args.end),
                                       args.every, args.goal, args.goal_within)
        df = run_engagement_trend(store, trend_q, engine=engine_from(args)).rows
        if args.json:
            print_json({"points": df.with_columns(pl.col("date").cast(pl.String)).to_dicts()})
        else:
            print_table(df, max_rows=1000)
        return 0
    query = EngagementQuery(Target(rule, segment), args.as_of, args.goal, args.goal_within)
    out = run_engagement(store, query, engine=engine_from(args)).to_dict()
    if args.json:
        print_json(out)
        return 0
    print(f"{fmt_int(out['members'])} members as of {out['as_of']}")
    for key, label in (
        ("active_7d", "active in the last 7 days"),
        ("active_30d", "active in the last 30 days"),
    ):
        print(f"  {label}: {fmt_int(out[key]['count'])} ({_pct(out[key]['share'])})")
    if out["goal"]:
        g = out["goal"]
        print(
            f"  did {g['event']} within {g['within']}: {fmt_int(g['count'])} ({_pct(g['share'])})"
        )
    return 0


def register(sub, common) -> None:
    """Add the ``trend``, ``reach``, ``profile``, ``overlap`` and ``engagement`` commands."""
    p = sub.add_parser("trend", parents=[common], help="segment size over time, entries, exits")
    _add_target(p, many=True)
    p.add_argument("--from", dest="start", required=True, help="first date YYYY-MM-DD")
    p.add_argument("--to", dest="end", required=True, help="last date YYYY-MM-DD")
    p.add_argument("--every", choices=("day", "week"), default="day")
    p.add_argument("--entered", metavar="DATE", help="also list who entered at that point")
    p.add_argument("--exited", metavar="DATE", help="also list who exited at that point")
    p.add_argument("--out", metavar="FILE.csv", help="write the --entered/--exited lists to CSV")
    p.add_argument("--json", action="store_true")
    add_engine(p)
    p.set_defaults(func=_pinned(cmd_trend))

    p = sub.add_parser("reach", parents=[common], help="members reachable per channel")
    _add_target(p)
    p.add_argument("--as-of", help=AS_OF_HELP)
    p.add_argument("--channel", help="list the members reachable by this channel")
    p.add_argument("--limit", type=whole_number(0, MAX_ROWS_SHOWN), default=50, help="rows shown with --channel")
    p.add_argument("--json", action="store_true")
    add_engine(p)
    p.set_defaults(func=_pinned(cmd_reach))

    p = sub.add_parser("profile", parents=[common], help="attribute distributions vs all users")
    _add_target(p)
    p.add_argument("--as-of", help=AS_OF_HELP)
    p.add_argument(
        "--attribute",
        action="append",
        metavar="NAME",
        help="attribute to profile (repeat; default: a standard set)",
    )
    p.add_argument(
        "--top", type=whole_number(1, 100_000), default=10,
        help="top values per categorical attribute",
    )
    p.add_argument("--bins", type=whole_number(1, 10_000), default=10, help="histogram bins for numbers")
    p.add_argument("--json", action="store_true")
    add_engine(p)
    p.set_defaults(func=_pinned(cmd_profile))

    p = sub.add_parser("overlap", parents=[common], help="overlap of 2 to 5 segments")
    p.add_argument("names", nargs="+", metavar="NAME", help="saved segment names (or rules)")
    p.add_argument("--as-of", help=AS_OF_HELP)
    p.add_argument("--json", action="store_true")
    add_engine(p)
    p.set_defaults(func=_pinned(cmd_overlap))

    p = sub.add_parser(
        "engagement",
        parents=[common],
        help="share of members active and converting, now or over time",
    )
    _add_target(p)
    p.add_argument("--as-of", help=AS_OF_HELP)
    p.add_argument("--goal", metavar="EVENT", help="goal event name")
    p.add_argument("--goal-within", default="30 days", help="goal window (default 30 days)")
    p.add_argument("--from", dest="start", help="first date (over time)")
    p.add_argument("--to", dest="end", help="last date (over time)")
    p.add_argument("--every", choices=("day", "week"), default="day")
    p.add_argument("--json", action="store_true")
    add_engine(p)
    p.set_defaults(func=_pinned(cmd_engagement))
