"""Benchmark: segcore funnels vs chdb ``windowFunnel`` on the same Parquet store.

Usage::

    python bench/bench_funnel.py [--events 10000000] [--users 500000] [--repeat 3]

Generates (once) a store under ``bench/.stores/funnel-<events>/`` with numpy, then
times 3-step and 5-step funnels (non-strict and strict) in segcore and in chdb,
median of ``--repeat`` runs after one warm-up, checks that the per-step counts are
equal and prints the ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from pathlib import Path

import numpy as np
import polars as pl

from segcore import Store
from segcore.analytics.funnel import funnel

NAMES = np.array(
    [
        "app_opened",
        "product_viewed",
        "search",
        "added_to_cart",
        "checkout_started",
        "payment_info",
        "charged",
        "logout",
        "review",
        "share",
    ]
)
WEIGHTS = np.array([0.22, 0.25, 0.12, 0.1, 0.07, 0.05, 0.04, 0.07, 0.04, 0.04])
START = dt.datetime(2026, 5, 1, tzinfo=dt.timezone.utc)
DAYS = 30
FUNNELS = {
    "3-step": ["product_viewed", "added_to_cart", "charged"],
    "5-step": ["app_opened", "product_viewed", "added_to_cart", "checkout_started", "charged"],
}


def generate(home: Path, n_events: int, n_users: int, seed: int = 7) -> None:
    """Write ``n_events`` random events as one Parquet file per day (sorted by ts)."""
    if (home / "events").exists():
        return
    rng = np.random.default_rng(seed)
    # skewed activity: some users do many more events
    user = (rng.pareto(1.5, n_events) * n_users / 20).astype(np.int64) % n_users
    base = int(START.timestamp() * 1_000_000)
    ts = base + rng.integers(0, DAYS * 86_400, n_events) * 1_000_000
    df = (
        pl.DataFrame(
            {
                "user_id": pl.select(
                    pl.format("u{}", pl.lit(user).cast(pl.String).str.zfill(7))
                ).to_series(),
                "event": NAMES[rng.choice(len(NAMES), n_events, p=WEIGHTS / WEIGHTS.sum())],
                "ts": pl.Series(ts).cast(pl.Datetime("us", "UTC")),
                "amount": rng.gamma(2.0, 40.0, n_events).round(2),
            }
        )
        .sort("ts")
        .with_columns(pl.int_range(pl.len()).cast(pl.String).alias("event_id"))
    )
    (home / "events").mkdir(parents=True)
    for (day,), part in df.group_by(pl.col("ts").dt.date(), maintain_order=True):
        part.write_parquet(home / "events" / f"day-{day}.parquet")


def chdb_funnel(
    home: Path, steps: list[str], window_s: int, start: str, end: str, strict: bool
) -> list[int]:
    """Per-step users by ClickHouse ``windowFunnel`` over the same Parquet files."""
    import chdb

    hi = (dt.date.fromisoformat(end) + dt.timedelta(days=1)).isoformat() + " 00:00:00"
    lo = start + " 00:00:00"
    conds = ", ".join(
        [f"event = '{steps[0]}' AND ts < toDateTime64('{hi}', 6, 'UTC')"]
        + [f"event = '{e}'" for e in steps[1:]]
    )
    names = ", ".join(f"'{e}'" for e in sorted(set(steps)))
    mode = ", 'strict_increase'" if strict else ""
    sql = f"""
        SELECT level, count() AS n FROM (
          SELECT user_id,
                 windowFunnel({window_s * 1_000_000}{mode})(
                   toUInt64(toUnixTimestamp64Micro(ts)), {conds}) AS level
          FROM file('{home}/events/*.parquet', Parquet)
          WHERE ts >= toDateTime64('{lo}', 6, 'UTC')
            AND ts < toDateTime64('{hi}', 6, 'UTC') + toIntervalSecond({window_s})
            AND event IN ({names})
          GROUP BY user_id) GROUP BY level FORMAT JSONEachRow"""
    out = chdb.query(sql).bytes().decode()
    by_level = {int(r["level"]): int(r["n"]) for r in map(json.loads, out.splitlines())}
    return [sum(n for lv, n in by_level.items() if lv >= i) for i in range(1, len(steps) + 1)]


def timed_pair(fa, fb, repeat: int) -> tuple[dict[str, float], object, dict[str, float], object]:
    """Median wall and CPU seconds of ``fa`` and ``fb`` after a warm-up, runs interleaved.

    CPU seconds (all threads of this process) are the fairer measure on a busy machine.
    """
    ra, rb = fa(), fb()
    ta: list[tuple[float, float]] = []
    tb: list[tuple[float, float]] = []
    for _ in range(repeat):
        for fn, acc in ((fa, ta), (fb, tb)):
            w0, c0 = time.perf_counter(), time.process_time()
            r = fn()
            acc.append((time.perf_counter() - w0, time.process_time() - c0))
            if fn is fa:
                ra = r
            else:
                rb = r

    def med(acc: list[tuple[float, float]]) -> dict[str, float]:
        return {
            "wall": statistics.median(a for a, _ in acc),
            "cpu": statistics.median(c for _, c in acc),
        }

    return med(ta), ra, med(tb), rb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--users", type=int, default=500_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--window", default="1d")
    args = ap.parse_args()
    home = Path(__file__).parent / ".stores" / f"funnel-{args.events}"
    t0 = time.perf_counter()
    generate(home, args.events, args.users)
    print(f"store {home} ready in {time.perf_counter() - t0:.1f}s")
    store = Store(home)
    start, end = "2026-05-01", "2026-05-30"
    window_s = 86_400 if args.window == "1d" else int(args.window.rstrip("h")) * 3600
    print(
        f"{'funnel':<8} {'mode':<7} {'segcore wall':>12} {'chdb wall':>9} {'ratio':>6} "
        f"{'segcore cpu':>11} {'chdb cpu':>8} {'ratio':>6}  counts"
    )
    for label, steps in FUNNELS.items():
        for strict in (False, True):
            t_seg, res, t_ch, want = timed_pair(
                lambda s=steps, st=strict: funnel(
                    store, s, window=args.window, start=start, end=end, strict=st
                ),
                lambda s=steps, st=strict: chdb_funnel(home, s, window_s, start, end, st),
                args.repeat,
            )
            got = [s["users"] for s in res["steps"]]
            mark = "equal" if got == want else f"DIFFERENT chdb={want}"
            mode = "strict" if strict else "default"
            print(
                f"{label:<8} {mode:<7} {t_seg['wall']:>12.3f} {t_ch['wall']:>9.3f} "
                f"{t_ch['wall'] / t_seg['wall']:>5.2f}x {t_seg['cpu']:>11.3f} "
                f"{t_ch['cpu']:>8.3f} {t_ch['cpu'] / t_seg['cpu']:>5.2f}x  {got} {mark}"
            )


if __name__ == "__main__":
    main()
