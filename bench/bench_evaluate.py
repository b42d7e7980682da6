"""Segment evaluation time: segcore (Polars) vs DuckDB on the same Parquet files.

Generates (once) a ~10M-event sample store under ``bench/.stores/eval10m`` and,
for each rule family, times ``Store.count`` and DuckDB running an equivalent
hand-written SQL query (median of 5 runs after one warm-up, the runs of the two
engines alternating; DuckDB with its default threads), checks both give the same count and prints the ratio
segcore/DuckDB per family and the geometric mean.

Run: ``python bench/bench_evaluate.py [--users 43000] [--repeat 5] [--json out.json]``.
Targets (issue 3): the typical 3-condition rule under 0.3 s; geometric mean
ratio <= 0.7.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

import duckdb  # noqa: E402

from segcore import Store  # noqa: E402
from segcore.sample import generate  # noqa: E402

AS_OF = "2026-06-30"
T = "TIMESTAMPTZ '2026-07-01 00:00:00+00'"

# family -> (rule, hand-written DuckDB SQL giving the member count)
FAMILIES: dict[str, tuple[str, str]] = {
    "attributes only": (
        "country = 'US' AND age BETWEEN 25 AND 40 AND email_opt_in",
        "SELECT count(*) FROM users WHERE country = 'US' AND age BETWEEN 25 AND 40 "
        "AND email_opt_in",
    ),
    "windowed count": (
        "event_count('page_viewed', within => '30 days') >= 10",
        "SELECT count(*) FROM (SELECT user_id FROM events WHERE event = 'page_viewed' "
        f"AND ts >= {T} - INTERVAL 30 DAY AND ts < {T} GROUP BY user_id "
        "HAVING count(*) >= 10)",
    ),
    "full-history sum": (
        "event_sum('charged', amount) > 700",
        "SELECT count(*) FROM (SELECT user_id FROM events WHERE event = 'charged' "
        f"AND ts < {T} GROUP BY user_id HAVING sum(amount) > 700)",
    ),
    "sequence": (
        "did_then_not('added_to_cart', 'charged', gap => '10 minutes', within => '30 days')",
        "SELECT count(DISTINCT a.user_id) FROM events a WHERE a.event = 'added_to_cart' "
        f"AND a.ts >= {T} - INTERVAL 30 DAY AND a.ts < {T} "
        f"AND a.ts + INTERVAL 10 MINUTE < {T} AND NOT EXISTS (SELECT 1 FROM events b "
        "WHERE b.user_id = a.user_id AND b.event = 'charged' AND b.ts > a.ts "
        f"AND b.ts <= a.ts + INTERVAL 10 MINUTE AND b.ts < {T})",
    ),
    "five behavioural terms": (
        "did('charged', within => '30 days') "
        "AND event_count('page_viewed', where => page = 'pricing') > 2 "
        "AND NOT did('conversation_started', within => '60 days') "
        "AND event_sum('charged', amount) > 100 "
        "AND event_periods('app_launched', period => 'week', within => '7 weeks') >= 3",
        # (the one-pass GROUP BY ... HAVING count(*) FILTER (...) form is 4x slower in DuckDB)
        "SELECT count(*) FROM ("
        "SELECT user_id FROM events WHERE event = 'charged' "
        f"AND ts >= {T} - INTERVAL 30 DAY AND ts < {T} "
        "INTERSECT SELECT user_id FROM events WHERE event = 'page_viewed' AND page = 'pricing' "
        f"AND ts < {T} GROUP BY user_id HAVING count(*) > 2 "
        "INTERSECT SELECT user_id FROM events WHERE event = 'charged' "
        f"AND ts < {T} GROUP BY user_id HAVING sum(amount) > 100 "
        "INTERSECT SELECT user_id FROM events WHERE event = 'app_launched' "
        f"AND ts >= {T} - INTERVAL 49 DAY AND ts < {T} GROUP BY user_id "
        f"HAVING count(DISTINCT (date_diff('microsecond', ts, {T}) - 1) // 604800000000) >= 3 "
        "EXCEPT SELECT user_id FROM events WHERE event = 'conversation_started' "
        f"AND ts >= {T} - INTERVAL 60 DAY AND ts < {T})",
    ),
    "typical 3-condition": (
        "country = 'US' AND did('charged', within => '30 days') "
        "AND event_count('page_viewed', within => '7 days') >= 3",
        "SELECT count(*) FROM users u WHERE country = 'US' AND user_id IN "
        "(SELECT user_id FROM events WHERE event = 'charged' "
        f"AND ts >= {T} - INTERVAL 30 DAY AND ts < {T}) AND user_id IN "
        "(SELECT user_id FROM events WHERE event = 'page_viewed' "
        f"AND ts >= {T} - INTERVAL 7 DAY AND ts < {T} GROUP BY user_id "
        "HAVING count(*) >= 3)",
    ),
}
TYPICAL = "typical 3-condition"


def ensure_store(users: int, days: int = 180, seed: int = 11) -> Path:
    """The benchmark store, generated on first use and kept (git-ignored)."""
    home = ROOT / ".stores" / "eval10m"
    params = {"users": users, "days": days, "end": "2026-06-30", "seed": seed}
    marker = home / "bench-params.json"
    if not (marker.exists() and json.loads(marker.read_text()) == params):
        print(f"generating {home} ({users:,} users, {days} days)...", flush=True)
        generate(home, **params)
        marker.write_text(json.dumps(params))
    return home


def timed_pair(a, b, repeat: int) -> tuple[dict, object, dict, object]:
    """Median wall and CPU seconds of ``repeat`` runs of ``a`` and of ``b`` after one
    warm-up each, runs alternating (a, b, a, b...) so that a change of machine load hits
    both alike. CPU time is this process's (both engines run in it, on all their threads):
    on a shared, busy machine it is steadier than wall time."""
    values = [a(), b()]
    wall: list[list[float]] = [[], []]
    cpu: list[list[float]] = [[], []]
    for _ in range(repeat):
        for i, fn in enumerate((a, b)):
            c0, w0 = time.process_time(), time.perf_counter()
            values[i] = fn()
            wall[i].append(time.perf_counter() - w0)
            cpu[i].append(time.process_time() - c0)
    med = [{"wall": statistics.median(wall[i]), "cpu": statistics.median(cpu[i])} for i in (0, 1)]
    return med[0], values[0], med[1], values[1]


def duck_connection(store: Store) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    ev = ", ".join(f"'{f}'" for f in store.event_files())
    us = ", ".join(f"'{f}'" for f in store.user_files())
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet([{ev}], union_by_name = true)")
    con.execute(f"CREATE VIEW users AS SELECT * FROM read_parquet([{us}], union_by_name = true)")
    return con


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=43_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", help="run only the families whose name contains this")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args(argv)

    store = Store(ensure_store(args.users))
    n_events = store.scan_events().select("ts").collect().height
    print(
        f"store: {store.home}  events: {n_events:,}  users: "
        f"{store.scan_users().select('user_id').collect().height:,}",
        flush=True,
    )
    con = duck_connection(store)

    rows = []
    print(
        f"{'family':<24}{'segcore s':>11}{'duckdb s':>10}{'ratio':>7}{'cpu ratio':>11}{'count':>9}"
    )
    for name, (rule, sql) in FAMILIES.items():
        if args.only and args.only not in name:
            continue
        seg, seg_n, duck, duck_n = timed_pair(
            lambda rule=rule: store.count(rule, as_of=AS_OF),
            lambda sql=sql: con.execute(sql).fetchone()[0],
            args.repeat,
        )
        if seg_n != duck_n:
            print(f"COUNT MISMATCH for {name!r}: segcore {seg_n} vs DuckDB {duck_n}")
            return 1
        ratio, cpu_ratio = seg["wall"] / duck["wall"], seg["cpu"] / duck["cpu"]
        rows.append(
            {
                "family": name,
                "rule": rule,
                "segcore_s": round(seg["wall"], 4),
                "duckdb_s": round(duck["wall"], 4),
                "ratio": round(ratio, 3),
                "segcore_cpu_s": round(seg["cpu"], 4),
                "duckdb_cpu_s": round(duck["cpu"], 4),
                "cpu_ratio": round(cpu_ratio, 3),
                "count": seg_n,
            }
        )
        print(
            f"{name:<24}{seg['wall']:>11.3f}{duck['wall']:>10.3f}{ratio:>7.2f}"
            f"{cpu_ratio:>11.2f}{seg_n:>9,}",
            flush=True,
        )
    geo = math.exp(sum(math.log(r["ratio"]) for r in rows) / len(rows))
    geo_cpu = math.exp(sum(math.log(r["cpu_ratio"]) for r in rows) / len(rows))
    print(f"{'geometric mean':<45}{geo:>7.2f}{geo_cpu:>11.2f}")
    typical = next((r for r in rows if r["family"] == TYPICAL), None)
    if typical:
        ok = "meets" if typical["segcore_s"] < 0.3 else "MISSES"
        print(f"typical 3-condition rule: {typical['segcore_s']:.3f} s ({ok} the 0.3 s target)")
    print(
        f"geometric mean ratio {geo:.2f} ({'meets' if geo <= 0.7 else 'MISSES'} the 0.7 "
        f"target); CPU time {geo_cpu:.2f}"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"events": n_events, "families": rows, "geomean_ratio": round(geo, 3)}, indent=1
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
