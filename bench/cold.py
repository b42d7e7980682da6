"""The first answer in a new process: ``python -m bench.cold <job.json>`` answers one
question (segcore or a peer, as the job says) and prints ``COLD-RESULT {json}``.

The time runs from before the imports to the answer, as a user meets it in a CLI call
or a fresh notebook; peak RSS is this process's. ``seconds_imports`` is the part spent
before the job's own work: the engine's import (segcore: polars, the rule parser and the
evaluator, which its answer would import anyway).

The ``polars-floor`` job answers :data:`FLOOR_RULE` with a query written by hand in
Polars (no segcore, no parser, no planning): the least any Polars-based answer can cost
in a new process, a reference for the cold rows, not a competitor.
"""

from __future__ import annotations

import time

START = time.perf_counter()

import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

FLOOR_RULE = ("country = 'US' AND did('charged', within => '30 days') AND "
              "event_count('page_viewed', within => '7 days') >= 3")
IMPORTED: list[float] = []  # seconds from START to the end of the engine's imports


def polars_floor(home: Path, as_of: str) -> int:
    """:data:`FLOOR_RULE` at the end of day ``as_of`` (UTC), written by hand in Polars."""
    import datetime as dt

    import polars as pl

    IMPORTED.append(time.perf_counter() - START)
    T = dt.datetime.fromisoformat(as_of).replace(tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
    ev = pl.scan_parquet(home / "events" / "*.parquet")

    def window(name: str, days: int) -> pl.LazyFrame:
        return ev.filter((pl.col("event") == name) & (pl.col("ts") >= T - dt.timedelta(days=days))
                         & (pl.col("ts") < T))

    users = (pl.scan_parquet(home / "users" / "*.parquet")
             .filter(pl.col("country") == "US").select("user_id"))
    charged = window("charged", 30).select("user_id")
    viewed = (window("page_viewed", 7).group_by("user_id").agg(pl.len())
              .filter(pl.col("len") >= 3))
    return (users.join(charged, on="user_id", how="semi").join(viewed, on="user_id", how="semi")
            .select(pl.len()).collect().item())


def answer(job: dict) -> object:
    home, kind, engine = Path(job["home"]), job["kind"], job["engine"]
    if engine == "polars-floor":
        return polars_floor(home, job["as_of"])
    if engine == "duckdb":
        import duckdb

        IMPORTED.append(time.perf_counter() - START)
        con = duckdb.connect()
        con.sql("SET TimeZone = 'UTC'")
        con.sql(f"CREATE VIEW ev AS SELECT * FROM read_parquet('{home}/events/*.parquet', "
                f"union_by_name = true)")
        con.sql(f"CREATE VIEW users AS SELECT * FROM read_parquet('{home}/users/*.parquet', "
                f"union_by_name = true)")
        return con.sql(job["sql"]).fetchall()[0][0]
    if engine == "chdb":
        from bench.bench_funnel import chdb_funnel

        return chdb_funnel(home, job["steps"], 86_400, job["start"], job["end"], False)
    from segcore import Store

    if kind == "rule":  # what its answer imports anyway (the parser, the evaluator)
        import segcore.engine.polars.evaluate  # noqa: F401
        import segcore.lang.parser  # noqa: F401
    IMPORTED.append(time.perf_counter() - START)
    store = Store(home)
    if kind == "rule":
        return store.count(job["rule"], as_of=job["as_of"])
    if kind == "trend":
        from segcore.analytics.trend import trend

        return trend(store, job["rule"], start=job["start"], end=job["end"])["members"].to_list()
    from segcore.analytics.funnel import funnel

    res = funnel(store, job["steps"], window="1d", start=job["start"], end=job["end"])
    return [s["users"] for s in res["steps"]]


def main() -> int:
    job = json.loads(Path(sys.argv[1]).read_text())
    value = answer(job)
    out = {"seconds": time.perf_counter() - START, "value": value,
           "seconds_imports": IMPORTED[0] if IMPORTED else None,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    print("COLD-RESULT " + json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
