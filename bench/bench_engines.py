"""The same segments on Polars, DuckDB, ClickHouse (chdb) and optionally Spark.

For each rule family, times ``members`` on the Polars evaluator and ``run_members``
(compile to SQL + run in-process) on each SQL engine over the same Parquet store,
checks every engine returns the same members, and prints the medians.

Run: ``python bench/bench_engines.py [--size small|medium] [--repeat 3] [--spark]
[--json out.json]`` (the stores are the shared bench stores of ``bench/harness.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from bench.harness import AS_OF, machine, measure, store_home  # noqa: E402
from segcore import Store  # noqa: E402
from segcore.engine.polars.evaluate import members  # noqa: E402
from segcore.engine.sql import compile_sql  # noqa: E402
from segcore.engine.sql.engines import run_members  # noqa: E402

FAMILIES = {
    "attributes only": "country = 'US' AND age BETWEEN 25 AND 40 AND email_opt_in",
    "windowed count": "event_count('page_viewed', within => '30 days') >= 10",
    "full-history sum": "event_sum('charged', amount) > 700",
    "sequence": "did_then_not('added_to_cart', 'charged', gap => '10 minutes', "
    "within => '30 days')",
    "five terms": "did('charged', within => '30 days') AND event_count('page_viewed', "
    "where => page = 'pricing') > 2 AND NOT did('app_launched', within => '7 days') "
    "AND event_periods('*', period => 'week', within => '7 weeks') >= 3 "
    "AND first_seen('signed_up') < now() - interval '30 days'",
    "negation (universe)": "NOT did('charged', within => '90 days') OR country IS NULL",
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="small", choices=["small", "medium", "large"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--spark", action="store_true", help="also time Spark local[2]")
    ap.add_argument("--json", help="write the results to this file")
    args = ap.parse_args()
    store = Store(store_home(args.size))
    engines = ["duckdb", "clickhouse"] + (["spark"] if args.spark else [])
    rows = []
    print(
        f"{'family':22} {'members':>8} {'polars':>8} "
        + " ".join(f"{e:>10}" for e in engines)
        + "  compile"
    )
    for family, rule in FAMILIES.items():  # ok-loop: one benchmark per family
        base = measure(lambda r=rule: members(store, r, as_of=AS_OF), args.repeat)
        expected = base.value["user_id"].to_list()
        row = {"family": family, "rule": rule, "members": len(expected), "polars": base.to_dict()}
        for eng in engines:
            t = measure(
                lambda r=rule, e=eng: run_members(store, r, as_of=AS_OF, engine=e), args.repeat
            )
            same = t.value["user_id"].to_list() == expected
            row[eng] = {**t.to_dict(), "same_members": same}
            if not same:
                print(f"MISMATCH on {eng}: {family}", file=sys.stderr)
        comp = measure(
            lambda r=rule: compile_sql(store, r, dialect="duckdb", as_of=AS_OF), args.repeat
        )
        row["compile"] = comp.to_dict()
        rows.append(row)
        cells = " ".join(f"{row[e]['median_s']:>9.3f}s" for e in engines)
        print(
            f"{family:22} {len(expected):>8} {base.median:>7.3f}s {cells}  "
            f"{comp.median * 1000:.1f} ms"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": machine(), "size": args.size, "results": rows}, indent=2)
        )
    return 0 if all(r[e]["same_members"] for r in rows for e in engines) else 1


if __name__ == "__main__":
    raise SystemExit(main())
