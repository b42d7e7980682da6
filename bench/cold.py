"""The first answer in a new process: ``python -m bench.cold <job.json>`` answers one
question (segcore or a peer, as the job says) and prints ``COLD-RESULT {json}``.

The time runs from before the imports to the answer, as a user meets it in a CLI call
or a fresh notebook; peak RSS is this process's.
"""

from __future__ import annotations

import time

START = time.perf_counter()

import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402


def answer(job: dict) -> object:
    home, kind, engine = Path(job["home"]), job["kind"], job["engine"]
    if engine == "duckdb":
        import duckdb

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
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    print("COLD-RESULT " + json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
