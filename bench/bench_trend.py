"""Benchmark: one-pass segment trends vs one evaluation and vs the per-point loop.

Usage::

    python bench/bench_trend.py [--users 42000] [--days 180] [--repeat 3] [--naive-points 30]

Generates (once) a sample store under ``bench/.stores/trend-<users>-<days>/`` with
``segcore.sample.generate`` (about 10M events with the defaults), then for a few
representative rules times, as the median of ``--repeat`` runs after one warm-up:
one evaluation (the count at the end date), the trend with 30 and with 180 daily
points, and the naive per-point loop for 30 points. Prints the ratios to one
evaluation (targets: 30 points <= 5x, 180 points <= 10x) and checks that the
one-pass trend equals the naive loop.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from pathlib import Path

import polars as pl

from segcore import Store
from segcore.analytics.trend import trend, trend_naive
from segcore.engine.polars.evaluate import count
from segcore.sample import generate

END = "2026-06-30"
RULES = {
    "did 30d": "did('charged', within => '30 days')",
    "count+attr": "event_count('page_viewed', where => page = 'pricing') > 2 AND country = 'US'",
    "stopped": "did('charged', since => now() - interval '60 days', until => now() - "
    "interval '30 days') AND NOT did('charged', within => '30 days')",
    "cart abandon": "did_then_not('added_to_cart', 'charged', gap => '10 minutes', "
    "within => '7 days')",
    "inactive (NOT)": "NOT did('app_launched', within => '14 days')",
    "sum+today": "event_sum('charged', 'amount', within => '90 days') > 300 OR "
    "subscription_end_date = today() + 6",
    "periods": "event_periods('app_launched', period => 'week', within => '8 weeks') >= 5",
    "distinct": "event_distinct('product_viewed', 'category', within => '30 days') >= 3",
    "max sliding": "event_max('product_viewed', 'price', within => '30 days') > 1500",
}


def timed(fn, repeat: int) -> tuple[float, object]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=42_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--naive-points", type=int, default=30)
    parser.add_argument("--rules", nargs="*", help="names of the rules to run (default: all)")
    args = parser.parse_args()

    home = Path(__file__).parent / ".stores" / f"trend-{args.users}-{args.days}"
    if not (home / "events").exists():
        t0 = time.perf_counter()
        summary = generate(home, users=args.users, days=args.days, end=END, seed=1)
        print(f"generated {summary['events']:,} events in {time.perf_counter() - t0:.1f} s")
    store = Store(home)
    n_events = store.scan_events().select(pl.len()).collect().item()
    print(f"store {home}: {n_events:,} events")
    end = dt.date.fromisoformat(END)

    def start(points: int) -> str:
        return (end - dt.timedelta(days=points - 1)).isoformat()

    results = {}
    for name, rule in RULES.items():
        if args.rules and name not in args.rules:
            continue
        one, n = timed(lambda rule=rule: count(store, rule, as_of=END), args.repeat)
        t30, fast30 = timed(lambda rule=rule: trend(store, rule, start(30), END), args.repeat)
        t180, _ = timed(lambda rule=rule: trend(store, rule, start(180), END), args.repeat)
        pts = args.naive_points
        tn, naive = timed(lambda rule=rule, p=pts: trend_naive(store, rule, start(p), END), 1)
        same = pts != 30 or naive.equals(fast30)
        results[name] = {
            "members": n,
            "one_eval_s": round(one, 3),
            "trend30_s": round(t30, 3),
            "trend180_s": round(t180, 3),
            f"naive{pts}_s": round(tn, 3),
            "ratio30": round(t30 / one, 2),
            "ratio180": round(t180 / one, 2),
            f"naive{pts}_ratio": round(tn / one, 2),
            "equal_to_naive": same,
        }
        print(
            f"{name:15s} members {n:>6,}  one {one:6.3f}s  trend30 {t30:6.3f}s "
            f"({t30 / one:4.1f}x)  trend180 {t180:6.3f}s ({t180 / one:4.1f}x)  "
            f"naive{pts} {tn:6.3f}s ({tn / one:4.1f}x)  equal={same}"
        )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
