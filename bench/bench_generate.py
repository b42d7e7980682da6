"""Time the demo data generator and print events per second (median of runs).

Usage: ``python bench/bench_generate.py [--users 50000] [--days 180] [--runs 3]``
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from segcore.sample import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--end", default="2026-06-30")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rates, times, events = [], [], 0
    for i in range(args.runs):
        home = Path(tempfile.mkdtemp(prefix="segcore-bench-"))
        try:
            t0 = time.perf_counter()
            summary = generate(home, users=args.users, days=args.days, end=args.end, seed=args.seed)
            seconds = time.perf_counter() - t0
        finally:
            shutil.rmtree(home, ignore_errors=True)
        events = summary["events"]
        times.append(seconds)
        rates.append(events / seconds)
        print(
            f"run {i + 1}: {events:,} events in {seconds:.2f} s = {events / seconds:,.0f} events/s"
        )
    print(
        f"generate users={args.users:,} days={args.days}: {events:,} events, "
        f"median {statistics.median(times):.2f} s, "
        f"median {statistics.median(rates):,.0f} events/s"
    )


if __name__ == "__main__":
    main()
