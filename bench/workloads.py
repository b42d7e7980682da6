"""The workloads of the benchmark: segcore and its peers on the same Parquet files.

Each workload is a function ``(home, repeat) -> dict`` registered in ``WORKLOADS``;
it times segcore first (so the peak memory it reports is segcore's), then the peers,
checks that they agree, and returns timings in seconds (medians after a warm-up).
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from bench.cold import FLOOR_RULE
from bench.harness import AS_OF, T_SQL, child_env, measure, peak_rss_mb
from segcore import Store

WORKLOADS: dict[str, Callable[[Path, int], dict[str, Any]]] = {}

EVAL_RULES: dict[str, tuple[str, str]] = {
    "attributes only": (
        "country IN ('US', 'DE') AND age BETWEEN 25 AND 40 AND email_opt_in",
        "SELECT count(*) FROM users WHERE country IN ('US', 'DE') AND age BETWEEN 25 AND 40 "
        "AND email_opt_in",
    ),
    "windowed count": (
        "event_count('page_viewed', within => '30 days') >= 5",
        f"SELECT count(*) FROM (SELECT user_id FROM ev WHERE event = 'page_viewed' "
        f"AND ts >= {T_SQL} - INTERVAL 30 DAY AND ts < {T_SQL} GROUP BY user_id "
        f"HAVING count(*) >= 5)",
    ),
    "full-history sum": (
        "event_sum('charged', amount) > 700",
        f"SELECT count(*) FROM (SELECT user_id FROM ev WHERE event = 'charged' AND ts < {T_SQL} "
        f"GROUP BY user_id HAVING sum(amount) > 700)",
    ),
    "sequence": (
        "did_then_not('added_to_cart', 'charged', gap => '10 minutes', within => '30 days')",
        f"SELECT count(DISTINCT a.user_id) FROM ev a WHERE a.event = 'added_to_cart' "
        f"AND a.ts >= {T_SQL} - INTERVAL 30 DAY AND a.ts < {T_SQL} "
        f"AND a.ts + INTERVAL 10 MINUTE < {T_SQL} AND NOT EXISTS (SELECT 1 FROM ev b "
        f"WHERE b.user_id = a.user_id AND b.event = 'charged' AND b.ts > a.ts "
        f"AND b.ts <= a.ts + INTERVAL 10 MINUTE AND b.ts < {T_SQL})",
    ),
    "five behavioural terms": (
        "did('charged', within => '30 days') AND event_count('app_launched', within => '7 days')"
        " >= 2 AND NOT did('email_opened', within => '14 days') AND event_sum('charged', amount,"
        " within => '90 days') > 100 AND last_seen('page_viewed') >= now() - interval '3 days'",
        f"SELECT count(*) FROM (SELECT user_id FROM ev WHERE ts < {T_SQL} AND event IN "
        f"('charged', 'app_launched', 'email_opened', 'page_viewed') GROUP BY user_id HAVING "
        f"count_if(event = 'charged' AND ts >= {T_SQL} - INTERVAL 30 DAY) > 0 "
        f"AND count_if(event = 'app_launched' AND ts >= {T_SQL} - INTERVAL 7 DAY) >= 2 "
        f"AND count_if(event = 'email_opened' AND ts >= {T_SQL} - INTERVAL 14 DAY) = 0 "
        f"AND coalesce(sum(amount) FILTER (WHERE event = 'charged' AND ts >= {T_SQL} "
        f"- INTERVAL 90 DAY), 0) > 100 "
        f"AND max(ts) FILTER (WHERE event = 'page_viewed') >= {T_SQL} - INTERVAL 3 DAY)",
    ),
    "typical 3 conditions": (
        "country = 'US' AND did('charged', within => '30 days') AND "
        "event_count('page_viewed', within => '7 days') >= 3",
        f"SELECT count(*) FROM users u JOIN (SELECT user_id FROM ev WHERE ts >= {T_SQL} "
        f"- INTERVAL 30 DAY AND ts < {T_SQL} AND event IN ('charged', 'page_viewed') "
        f"GROUP BY user_id HAVING count_if(event = 'charged') > 0 AND count_if(event = "
        f"'page_viewed' AND ts >= {T_SQL} - INTERVAL 7 DAY) >= 3) e USING (user_id) "
        f"WHERE u.country = 'US'",
    ),
}


def register(name: str):
    def deco(fn):
        WORKLOADS[name] = fn
        return fn

    return deco


def duckdb_con(store: Store):
    """A DuckDB connection with views ``ev`` and ``users`` over the store's Parquet."""
    import duckdb

    con = duckdb.connect()
    con.sql("SET TimeZone = 'UTC'")
    ev = ", ".join(f"'{f}'" for f in store.event_files())
    us = ", ".join(f"'{f}'" for f in store.user_files())
    con.sql(f"CREATE VIEW ev AS SELECT * FROM read_parquet([{ev}], union_by_name = true)")
    con.sql(f"CREATE VIEW users AS SELECT * FROM read_parquet([{us}], union_by_name = true)")
    return con


def _ratio(a: float, b: float | None) -> float | None:
    return round(a / b, 3) if b else None


def _compiled_sql(store: Store, rule: str, dialect: str) -> str | None:
    try:
        from segcore.engine.sql import compile_sql
    except ImportError:
        return None
    return compile_sql(store, rule, dialect=dialect, as_of=AS_OF)


def _trend_sql(store: Store, rule: str, start: str, end: str) -> str:
    """segcore's DuckDB SQL of a daily trend (rows ``sc_j, members, entered, exited``)."""
    from segcore.analytics.trend import make_points
    from segcore.engine.sql.analytics.trend import trend_select

    pts = make_points(start, end, "day")
    return trend_select(store, rule, None, [pts.instant(j) for j in range(pts.P)],
                        "duckdb").sql(dialect="duckdb")


def _eval_workload(name: str, rule: str, hand_sql: str):
    def run(home: Path, repeat: int) -> dict[str, Any]:
        store = Store(home)
        seg = measure(lambda: store.count(rule, as_of=AS_OF), repeat)
        mem = peak_rss_mb()
        con = duckdb_con(store)
        peers: dict[str, Any] = {}
        hand = measure(lambda: con.sql(hand_sql).fetchall()[0][0], repeat)
        peers["duckdb (hand-written SQL)"] = hand
        compiled = _compiled_sql(store, rule, "duckdb")
        if compiled:
            q = f"SELECT count(*) FROM ({compiled}) AS m"
            peers["duckdb (segcore SQL)"] = measure(lambda: con.sql(q).fetchall()[0][0], repeat)
        ch = _compiled_sql(store, rule, "clickhouse")
        if ch:
            from segcore.engine.sql.engines import count_members

            peers["clickhouse/chdb (segcore SQL)"] = measure(
                lambda: count_members(store, rule, as_of=AS_OF, engine="clickhouse"), repeat)
        counts = {"segcore": seg.value, **{k: v.value for k, v in peers.items()}}
        return {
            "family": "evaluation", "workload": name, "segcore": seg.to_dict(),
            "peers": {k: v.to_dict() for k, v in peers.items()},
            "ratios": {k: _ratio(seg.median, v.median) for k, v in peers.items()},
            "result": seg.value, "agree": len(set(counts.values())) == 1, "counts": counts,
            "peak_rss_mb": round(mem, 1),
        }

    return run


for _name, (_rule, _sql) in EVAL_RULES.items():
    register(f"eval: {_name}")(_eval_workload(_name, _rule, _sql))


@register("generation")
def generation(home: Path, repeat: int) -> dict[str, Any]:
    from segcore.sample import generate

    tmp = Path(tempfile.mkdtemp(prefix="segcore-bench-gen-"))
    try:
        t = measure(lambda: generate(tmp / "s", users=20_000, days=180, end=AS_OF, seed=3),
                    repeat, warmup=0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    events = t.value["events"]
    return {"family": "data", "workload": "generation", "segcore": t.to_dict(),
            "rate_per_s": round(events / t.median), "rows": events, "peers": {}, "ratios": {},
            "agree": True, "peak_rss_mb": round(peak_rss_mb(), 1)}


@register("ingestion (CSV, 1M events)")
def ingestion(home: Path, repeat: int) -> dict[str, Any]:
    from segcore.ingest import ingest

    src = Store(home).scan_events().head(1_000_000).collect()
    tmp = Path(tempfile.mkdtemp(prefix="segcore-bench-ingest-"))
    try:
        csv = tmp / "events.csv"
        src.write_csv(csv)

        def once() -> int:
            target = Store(tmp / f"store-{dt.datetime.now().timestamp()}")
            ingest(target, "events", [csv])
            n = target.scan_events().select(pl.len()).collect().item()
            shutil.rmtree(target.home, ignore_errors=True)
            return n

        t = measure(once, repeat, warmup=0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"family": "data", "workload": "ingestion (CSV, 1M events)", "segcore": t.to_dict(),
            "rate_per_s": round(src.height / t.median), "rows": src.height, "peers": {},
            "ratios": {}, "agree": t.value == src.height, "peak_rss_mb": round(peak_rss_mb(), 1)}


TREND_RULE = "did('charged', within => '30 days') AND event_count('page_viewed', within => '7 days') >= 3"


def _trend_workload(points: int):
    def run(home: Path, repeat: int) -> dict[str, Any]:
        from segcore.analytics.trend import trend, trend_naive

        store = Store(home)
        end = dt.date.fromisoformat(AS_OF)
        start = (end - dt.timedelta(days=points - 1)).isoformat()
        seg = measure(lambda: trend(store, TREND_RULE, start=start, end=AS_OF), repeat)
        mem = peak_rss_mb()
        one = measure(lambda: store.count(TREND_RULE, as_of=AS_OF), repeat)
        cold_store = Store(home, cache_events=False)
        cold = measure(lambda: cold_store.count(TREND_RULE, as_of=AS_OF), repeat)
        peers = {"one evaluation": one, "one evaluation (Parquet, no cache)": cold}
        if points <= 30:
            peers["naive loop (one evaluation per point)"] = measure(
                lambda: trend_naive(store, TREND_RULE, start=start, end=AS_OF), max(1, repeat // 2))
        agree = int(seg.value["members"][-1]) == one.value
        if "naive loop (one evaluation per point)" in peers:
            agree = agree and seg.value.equals(peers["naive loop (one evaluation per point)"].value)
        return {"family": "size over time", "workload": f"trend, {points} daily points",
                "segcore": seg.to_dict(), "peers": {k: v.to_dict() for k, v in peers.items()},
                "ratios": {k: _ratio(seg.median, v.median) for k, v in peers.items()},
                "agree": bool(agree), "peak_rss_mb": round(mem, 1)}

    return run


register("trend: 30 daily points")(_trend_workload(30))
register("trend: 180 daily points")(_trend_workload(180))

REACH_RULE = "did('charged', within => '90 days')"
REACH_SQL = f"""
WITH m AS (SELECT DISTINCT user_id FROM ev WHERE event = 'charged'
           AND ts >= {T_SQL} - INTERVAL 90 DAY AND ts < {T_SQL})
SELECT count(*),
  count_if(email IS NOT NULL AND email_opt_in),
  count_if(phone IS NOT NULL AND sms_opt_in),
  count_if(push_token IS NOT NULL AND push_opt_in),
  count_if(phone IS NOT NULL AND whatsapp_opt_in)
FROM m LEFT JOIN users USING (user_id)"""


@register("reachability")
def reachability(home: Path, repeat: int) -> dict[str, Any]:
    from segcore.analytics.reach import reach

    tmp = Path(tempfile.mkdtemp(prefix="segcore-bench-reach-"))
    try:  # the catalog (channels) lives in the home: use a copy-free home with links
        store = Store(home)
        seg = measure(lambda: reach(store, REACH_RULE, as_of=AS_OF), repeat)
        mem = peak_rss_mb()
        con = duckdb_con(store)
        hand = measure(lambda: con.sql(REACH_SQL).fetchall()[0], repeat)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    r = seg.value
    ours = (r["members"], *(r["channels"][c]["count"] for c in ("email", "sms", "push", "whatsapp")))
    return {"family": "reachability", "workload": "reachability (4 channels)",
            "segcore": seg.to_dict(), "peers": {"duckdb (hand-written SQL)": hand.to_dict()},
            "ratios": {"duckdb (hand-written SQL)": _ratio(seg.median, hand.median)},
            "agree": tuple(ours) == tuple(hand.value), "peak_rss_mb": round(mem, 1)}


FUNNELS = {
    "funnel: 3 steps": ["product_viewed", "added_to_cart", "charged"],
    "funnel: 5 steps": ["app_launched", "page_viewed", "product_viewed", "added_to_cart",
                        "charged"],
}
FUNNEL_FROM, FUNNEL_TO = "2026-06-01", "2026-06-30"


def _funnel_workload(name: str, steps: list[str]):
    def run(home: Path, repeat: int) -> dict[str, Any]:
        from bench.bench_funnel import chdb_funnel
        from segcore.analytics.funnel import funnel

        store = Store(home)
        seg = measure(lambda: funnel(store, steps, window="1d", start=FUNNEL_FROM,
                                     end=FUNNEL_TO), repeat)
        mem = peak_rss_mb()
        ch = measure(lambda: chdb_funnel(home, steps, 86_400, FUNNEL_FROM, FUNNEL_TO, False),
                     repeat)
        ours = [s["users"] for s in seg.value["steps"]]
        return {"family": "funnels", "workload": name, "segcore": seg.to_dict(),
                "peers": {"clickhouse/chdb windowFunnel": ch.to_dict()},
                "ratios": {"clickhouse/chdb windowFunnel": _ratio(seg.median, ch.median)},
                "agree": ours == list(ch.value), "result": ours, "peak_rss_mb": round(mem, 1)}

    return run


for _name, _steps in FUNNELS.items():
    register(_name)(_funnel_workload(_name, _steps))

EVENTS_SQL = f"""
SELECT CAST(ts AS DATE) AS day, event, count(*) AS events, count(DISTINCT user_id) AS users
FROM ev WHERE event IN ('charged', 'added_to_cart')
  AND ts >= TIMESTAMP '2026-06-01 00:00:00' AND ts < {T_SQL}
GROUP BY ALL ORDER BY day, event"""


@register("event report")
def event_report_workload(home: Path, repeat: int) -> dict[str, Any]:
    from segcore.analytics.event_report import event_report

    store = Store(home)
    seg = measure(lambda: event_report(store, ["charged", "added_to_cart"], start="2026-06-01",
                                       end=AS_OF, every="day"), repeat)
    mem = peak_rss_mb()
    con = duckdb_con(store)
    hand = measure(lambda: con.sql(EVENTS_SQL).fetchall(), repeat)
    ours = seg.value.select(pl.col("events").sum(), pl.col("users").sum()).row(0)
    theirs = (sum(r[2] for r in hand.value), sum(r[3] for r in hand.value))
    return {"family": "event reports", "workload": "event report (2 events, 30 days)",
            "segcore": seg.to_dict(), "peers": {"duckdb (hand-written SQL)": hand.to_dict()},
            "ratios": {"duckdb (hand-written SQL)": _ratio(seg.median, hand.median)},
            "agree": tuple(ours) == theirs, "peak_rss_mb": round(mem, 1)}

RETENTION_FROM, RETENTION_WEEKS = "2026-04-06", 8
RETENTION_SQL = f"""
WITH firsts AS (
  SELECT user_id, min(ts) AS t FROM ev WHERE event = 'signed_up' AND ts < {T_SQL}
  GROUP BY user_id HAVING min(ts) >= TIMESTAMP '{RETENTION_FROM} 00:00:00'),
cohorts AS (SELECT user_id, date_trunc('week', CAST(t AS DATE)) AS cw FROM firsts),
back AS (SELECT DISTINCT user_id, date_trunc('week', CAST(ts AS DATE)) AS rw FROM ev
  WHERE event = 'app_launched' AND ts >= TIMESTAMP '{RETENTION_FROM} 00:00:00')
SELECT cw, -1 AS k, count(*) AS n FROM cohorts GROUP BY cw
UNION ALL
SELECT cw, datediff('week', cw, rw) AS k, count(*) AS n FROM cohorts JOIN back USING (user_id)
WHERE rw >= cw AND datediff('week', cw, rw) <= {RETENTION_WEEKS} GROUP BY ALL"""


@register("retention")
def retention_workload(home: Path, repeat: int) -> dict[str, Any]:
    """Weekly first-time retention, 13 cohorts x 9 periods, vs one hand-written DuckDB query."""
    from segcore.analytics.retention import retention

    store = Store(home)
    seg = measure(lambda: retention(store, start_event="signed_up", return_event="app_launched",
                                    every="week", periods=RETENTION_WEEKS, start=RETENTION_FROM,
                                    end=AS_OF), repeat)
    mem = peak_rss_mb()
    con = duckdb_con(store)
    hand = measure(lambda: con.sql(RETENTION_SQL).fetchall(), repeat)
    table = seg.value
    ours = (int(table.filter(pl.col("k") == 0)["size"].sum()), int(table["retained"].sum()))
    theirs = (sum(r[2] for r in hand.value if r[1] == -1),
              sum(r[2] for r in hand.value if r[1] >= 0))
    return {"family": "retention", "workload": "retention (weekly, 13 cohorts x 9 periods)",
            "segcore": seg.to_dict(), "peers": {"duckdb (hand-written SQL)": hand.to_dict()},
            "ratios": {"duckdb (hand-written SQL)": _ratio(seg.median, hand.median)},
            "agree": ours == theirs, "result": list(ours), "peak_rss_mb": round(mem, 1)}

COLD_RULE = EVAL_RULES["typical 3 conditions"][0]
if COLD_RULE != FLOOR_RULE:  # the hand-written floor in bench/cold.py answers this rule
    raise RuntimeError("bench/cold.py FLOOR_RULE must be the cold rule")
FLOOR = "polars floor: the same rule hand-written in Polars, no segcore (new process)"


def _cold_run(job: dict[str, Any]) -> dict[str, Any]:
    """One answer in a new process (``bench.cold``): seconds from start, value, peak RSS."""
    import json
    import os
    import subprocess
    import sys

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(job, f)
    root = str(Path(__file__).resolve().parents[1])
    env = child_env()
    try:
        proc = subprocess.run([sys.executable, "-m", "bench.cold", f.name], capture_output=True,
                              text=True, env=env, cwd=root, timeout=1800)
    finally:
        os.unlink(f.name)
    for line in proc.stdout.splitlines():
        if line.startswith("COLD-RESULT "):
            return json.loads(line[len("COLD-RESULT "):])
    raise RuntimeError((proc.stderr.strip().splitlines() or ["no output"])[-1])


def _cold_workload(kind: str, title: str):
    def run(home: Path, repeat: int) -> dict[str, Any]:
        import statistics

        store = Store(home)
        end = dt.date.fromisoformat(AS_OF)
        base = {"home": str(home), "kind": kind, "as_of": AS_OF, "rule": COLD_RULE}
        if kind == "trend":
            base |= {"start": (end - dt.timedelta(days=29)).isoformat(), "end": AS_OF}
        if kind == "funnel":
            base |= {"steps": FUNNELS["funnel: 3 steps"], "start": FUNNEL_FROM, "end": FUNNEL_TO}
        jobs = {"segcore": {**base, "engine": "segcore"}}
        if kind == "funnel":
            jobs["clickhouse/chdb windowFunnel (new process)"] = {**base, "engine": "chdb"}
        else:
            sql = _compiled_sql(store, COLD_RULE, "duckdb")
            jobs["duckdb, one evaluation (segcore SQL, new process)"] = {
                **base, "engine": "duckdb", "sql": f"SELECT count(*) FROM ({sql}) AS m"}
        if kind == "rule":  # the least any Polars-based answer costs: a reference
            jobs[FLOOR] = {**base, "engine": "polars-floor"}
        if kind == "trend":  # the peer: DuckDB answering the same 30-point trend
            sql = _trend_sql(store, COLD_RULE, base["start"], base["end"])
            jobs["duckdb, the same 30-point trend (segcore SQL, new process)"] = {
                **base, "engine": "duckdb",
                "sql": f"SELECT max_by(members, sc_j) FROM ({sql}) AS t"}
        runs: dict[str, list[dict]] = {k: [] for k in jobs}
        for _ in range(max(1, repeat)):  # interleaved: the same load on both sides
            for k, job in jobs.items():  # ok-loop: one process per engine
                runs[k].append(_cold_run(job))
        med = {k: statistics.median(r["seconds"] for r in rs) for k, rs in runs.items()}
        def summary(k: str) -> dict[str, Any]:
            imports = [r["seconds_imports"] for r in runs[k] if r.get("seconds_imports")]
            return {"median_s": round(med[k], 5),
                    "runs_s": [round(r["seconds"], 5) for r in runs[k]],
                    "imports_median_s": round(statistics.median(imports), 5) if imports else None}

        seg = summary("segcore")
        peers = {k: summary(k) for k in runs if k != "segcore"}
        value = runs["segcore"][-1]["value"]
        if kind == "funnel":
            agree = all(r["value"] == value for rs in runs.values() for r in rs)
        elif kind == "trend":
            agree = all(r["value"] == value[-1] for k, rs in runs.items() if k != "segcore"
                        for r in rs)
        else:
            agree = len({r["value"] for rs in runs.values() for r in rs}) == 1
        return {"family": "cold start", "workload": title, "segcore": seg, "peers": peers,
                "references": [k for k in peers if k == FLOOR],
                "ratios": {k: _ratio(med["segcore"], med[k]) for k in peers}, "agree": agree,
                "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs["segcore"]), 1),
                "peer_peak_rss_mb": {k: round(max(r["peak_rss_mb"] for r in rs), 1)
                                     for k, rs in runs.items() if k != "segcore"}}

    return run


register("cold: typical rule")(_cold_workload("rule", "cold: typical rule (new process)"))
register("cold: trend 30 points")(_cold_workload("trend", "cold: trend, 30 points (new process)"))
register("cold: funnel 3 steps")(_cold_workload("funnel", "cold: funnel, 3 steps (new process)"))

LONG_FROM = "2026-01-02"


def _long_funnel_workload(name: str, steps: list[str]):
    def run(home: Path, repeat: int) -> dict[str, Any]:
        from bench.bench_funnel import chdb_funnel
        from segcore.analytics.funnel import funnel

        store = Store(home)
        seg = measure(lambda: funnel(store, steps, window="1d", start=LONG_FROM, end=AS_OF),
                      repeat)
        mem = peak_rss_mb()
        ch = measure(lambda: chdb_funnel(home, steps, 86_400, LONG_FROM, AS_OF, False), repeat)
        ours = [s["users"] for s in seg.value["steps"]]
        return {"family": "funnels", "workload": name, "segcore": seg.to_dict(),
                "peers": {"clickhouse/chdb windowFunnel": ch.to_dict()},
                "ratios": {"clickhouse/chdb windowFunnel": _ratio(seg.median, ch.median)},
                "agree": ours == list(ch.value), "result": ours, "peak_rss_mb": round(mem, 1)}

    return run


register("funnel: 3 steps, 180 days")(
    _long_funnel_workload("funnel: 3 steps, 180 days", FUNNELS["funnel: 3 steps"]))
register("funnel: 5 steps, 180 days")(
    _long_funnel_workload("funnel: 5 steps, 180 days", FUNNELS["funnel: 5 steps"]))
