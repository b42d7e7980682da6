"""Every analytic through segcore's own runners on Polars vs DuckDB (and Spark on a cluster).

``python -m bench.engines_matrix --size medium large [--repeat 3] [--engines polars duckdb]
[--spark trend funnel]`` runs each (analytic, engine) in a **new process**, so that each
row has its own peak RSS and its own first answer:

- ``cold``: seconds from the process's start (imports included) to the first answer, as a
  CLI call meets it (on Polars this includes building the in-memory event cache);
- ``warm``: median of ``--repeat`` further runs in the same process;
- ``same``: the engines' results compared as plain data (floats to 9 digits): yes / no.

``--spark trend funnel`` also starts a Spark standalone cluster (1 master, 2 workers on
127.0.0.1 from the pyspark installation's ``bin/spark-class``, as the cluster test does),
times those analytics on it in the same run, and stops it. Results go to
``bench/results/engines-<size>.json`` and ``.md``; :func:`growth_table` writes the
10M -> 50M -> 200M table from the same files.
"""

from __future__ import annotations

import time

START = time.perf_counter()

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import datetime as dt  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
AS_OF = "2026-06-30"
TREND_RULE = ("did('charged', within => '30 days') AND "
              "event_count('page_viewed', within => '7 days') >= 3")
TYPICAL_RULE = ("country = 'US' AND did('charged', within => '30 days') AND "
                "event_count('page_viewed', within => '7 days') >= 3")
EVENTS_PER_SIZE = {"medium": "10M", "large": "50M", "xlarge": "200M"}


def _queries() -> dict[str, tuple[Callable, Any]]:
    """Each analytic: (runner, query). Built in the child (imports segcore)."""
    from segcore.query import runners as r
    from segcore.query.base import DateRange, Period, Target
    from segcore.query.queries import (
        EngagementQuery,
        EventQuery,
        FunnelQuery,
        LifecycleQuery,
        MembersQuery,
        OverlapQuery,
        ProfileQuery,
        ReachQuery,
        RetentionQuery,
        Step,
        StickinessQuery,
        TrendQuery,
    )

    rule = Target(rule=TYPICAL_RULE)
    june = DateRange("2026-06-01", AS_OF)
    quarter = DateRange("2026-04-06", AS_OF)
    return {
        "members (typical rule)": (r.run_members, MembersQuery(rule, AS_OF)),
        "trend, 30 daily points": (r.run_trend, TrendQuery(Target(rule=TREND_RULE), june)),
        "reach (4 channels)": (r.run_reach, ReachQuery(
            Target(rule="did('charged', within => '90 days')"), AS_OF)),
        "profile": (r.run_profile, ProfileQuery(
            rule, AS_OF, attributes=("country", "age", "plan", "email_opt_in", "total_spent"))),
        "overlap (3 rules)": (r.run_overlap, OverlapQuery(
            ("did('charged', within => '30 days')", "country = 'US'",
             "event_count('page_viewed', within => '7 days') >= 3"), AS_OF)),
        "engagement": (r.run_engagement, EngagementQuery(
            Target(rule="did('page_viewed', within => '30 days')"), AS_OF, goal="charged")),
        "event report (2 events, daily)": (r.run_events, EventQuery(
            ("charged", "added_to_cart"), june)),
        "funnel, 3 steps, 1 day": (r.run_funnel, FunnelQuery(
            (Step("product_viewed"), Step("added_to_cart"), Step("charged")), "1d", june)),
        "retention (weekly, 8 periods)": (r.run_retention, RetentionQuery(
            start_event="signed_up", return_event="app_launched", range=quarter,
            every=Period.WEEK, periods=8)),
        "lifecycle (weekly)": (r.run_lifecycle, LifecycleQuery("app_launched", quarter)),
        "stickiness (weekly)": (r.run_stickiness, StickinessQuery("app_launched", quarter)),
    }


ANALYTICS = ["members (typical rule)", "trend, 30 daily points", "reach (4 channels)",
             "profile", "overlap (3 rules)", "engagement", "event report (2 events, daily)",
             "funnel, 3 steps, 1 day", "retention (weekly, 8 periods)", "lifecycle (weekly)",
             "stickiness (weekly)"]
SPARK_KEYS = {"trend": "trend, 30 daily points", "funnel": "funnel, 3 steps, 1 day"}


def plain(result: Any) -> Any:
    """A result as plain data, floats to 9 significant digits (engines agree to that)."""
    import polars as pl

    if isinstance(result, pl.DataFrame):
        return {"schema": {k: str(v) for k, v in result.schema.items()},
                "rows": plain(result.to_dicts())}
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return {f.name: plain(getattr(result, f.name)) for f in dataclasses.fields(result)}
    if isinstance(result, dict):
        return {str(k): plain(v) for k, v in result.items()}
    if isinstance(result, list | tuple):
        return [plain(v) for v in result]
    if isinstance(result, float):
        return float(f"{result:.9g}")
    if isinstance(result, dt.date | dt.datetime):
        return result.isoformat()
    return result


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(home: str, analytic: str, engine: str, repeat: int) -> dict[str, Any]:
    """One (analytic, engine) in this new process: cold first answer, warm median, peak."""
    from segcore import Store
    from segcore.query.runners import query_zone  # noqa: F401 (imports the runners)

    runner, query = _queries()[analytic]
    store = Store(home)
    value = runner(store, query, engine=engine)
    cold = time.perf_counter() - START
    runs = []
    for _ in range(repeat):  # ok-loop: timed repeats
        t0 = time.perf_counter()
        value = runner(store, query, engine=engine)
        runs.append(time.perf_counter() - t0)
    data = plain(value)
    text = json.dumps(data, sort_keys=True, default=str)
    return {"analytic": analytic, "engine": engine, "cold_s": round(cold, 4),
            "warm_s": round(statistics.median(runs), 4) if runs else None,
            "runs_s": [round(x, 4) for x in runs], "peak_rss_mb": round(_peak_mb(), 1),
            "digest": hashlib.sha256(text.encode()).hexdigest()[:16], "preview": text[:300]}


def _run_child(home: Path, analytic: str, engine: str, repeat: int, timeout: float,
               env: dict[str, str] | None = None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.engines_matrix", "--child", str(home), analytic,
           engine, str(repeat)]
    from bench.harness import child_env

    e = child_env(env)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=e, cwd=ROOT,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"analytic": analytic, "engine": engine, "error": f"timeout after {timeout:.0f}s"}
    for line in proc.stdout.splitlines():
        if line.startswith("MATRIX-RESULT "):
            out = json.loads(line[len("MATRIX-RESULT "):])
            notes = [x for x in proc.stderr.splitlines() if "segcore:" in x]
            if notes:
                out["notes"] = notes[:3]
            return out
    tail = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}, no output"])[-1]
    if proc.returncode < 0:
        tail = f"killed by signal {-proc.returncode} after {time.perf_counter() - t0:.0f}s"
    return {"analytic": analytic, "engine": engine, "error": tail}


def _spark_env(url: str) -> dict[str, str]:
    conf = ("spark.executor.memory=4g;spark.executor.cores=1;spark.cores.max=2;"
            "spark.driver.memory=3g;spark.sql.shuffle.partitions=8;"
            "spark.sql.adaptive.enabled=true")
    return {"SEGCORE_SPARK_CONF": conf, "SEGCORE_SPARK_MASTER": url}


def run_size(size: str, engines: list[str], analytics: list[str], repeat: int,
             timeout: float, spark: list[str]) -> dict[str, Any]:
    home = Path(os.environ.get("SEGCORE_BENCH_STORES") or ROOT / "bench" / ".stores") / size
    if not (home / "bench-params.json").exists():
        raise SystemExit(f"no finished store at {home} (bench-params.json missing)")
    rows: list[dict[str, Any]] = []
    for analytic in analytics:  # ok-loop: one process per (analytic, engine)
        for engine in engines:
            print(f"  {size} | {analytic} | {engine} ...", flush=True)
            rows.append(_run_child(home, analytic, engine, repeat, timeout))
            print("    " + _brief(rows[-1]), flush=True)
    cluster_info = None
    if spark:
        cluster_info, spark_rows = _spark_runs(home, spark, repeat, timeout)
        rows += spark_rows
    return {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "size": size, "events": EVENTS_PER_SIZE.get(size, size), "home": str(home),
            "repeat": repeat, "load": os.getloadavg(), "cluster": cluster_info,
            "code": "segcore at " + _git_head(), "rows": rows}


def _spark_runs(home: Path, keys: list[str], repeat: int, timeout: float):
    """Start a standalone cluster (1 master, 2 workers x 1 core x 4 GiB), run the analytics
    on it (one driver process each), stop it."""
    import tempfile

    sys.path.insert(0, str(ROOT))
    from tests.engine.spark_cluster import SparkCluster

    folder = Path(tempfile.mkdtemp(prefix="segcore-bench-spark-"))
    cluster = SparkCluster(folder, workers=2, cores=1, memory="4g")
    rows = []
    t0 = time.perf_counter()
    cluster.start()
    info = {"master": cluster.url, "workers": 2, "cores_per_worker": 1,
            "executor_memory": "4g", "driver_memory": "3g",
            "startup_s": round(time.perf_counter() - t0, 1)}
    print(f"  spark cluster up at {cluster.url} in {info['startup_s']}s", flush=True)
    try:
        for key in keys:  # ok-loop: one driver process per analytic
            analytic = SPARK_KEYS.get(key, key)
            print(f"  spark | {analytic} ...", flush=True)
            row = _run_child(home, analytic, cluster.url, min(repeat, 1), max(timeout, 900),
                             env=_spark_env(cluster.url))
            row["engine"] = "spark (cluster)"
            rows.append(row)
            print("    " + _brief(row), flush=True)
        info["apps"] = len(cluster.state().get("completedapps", []))
    finally:
        cluster.stop()
    return info, rows


def _git_head() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=ROOT).stdout.strip()
    except OSError:
        return "?"


def _brief(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"ERROR {row['error']}"
    return (f"cold {row['cold_s']:.2f}s warm {row['warm_s'] or float('nan'):.3f}s "
            f"peak {row['peak_rss_mb']:.0f} MiB {row['digest']}")


def warm(row: dict[str, Any]) -> float | None:
    """The best of the timed runs after the first answer (the machine is shared: the
    minimum is the least disturbed run; the first re-read of an event also sorts it in
    the Polars cache, which the later runs reuse)."""
    return min(row["runs_s"]) if row.get("runs_s") else None


def _fmt(x: float | None, unit: str = "s") -> str:
    if x is None:
        return "-"
    return f"{x:.3f}{unit}" if x < 10 else f"{x:.1f}{unit}"


def table(report: dict[str, Any]) -> str:
    """The Markdown table of one size: per analytic, Polars vs DuckDB (and Spark)."""
    by: dict[str, dict[str, dict]] = {}
    for row in report["rows"]:
        by.setdefault(row["analytic"], {})[row["engine"]] = row
    engines = list(dict.fromkeys(r["engine"] for r in report["rows"]))
    head = ["analytic"]
    for e in engines:
        head += [f"{e} warm", f"{e} cold", f"{e} peak MiB"]
    head += ["warm polars/duckdb", "cold polars/duckdb", "same answer"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for analytic, rows in by.items():
        cells = [analytic]
        for e in engines:
            r = rows.get(e)
            if r is None:
                cells += ["", "", ""]
            elif "error" in r:
                cells += [f"error: {r['error'][:60]}", "", ""]
            else:
                cells += [_fmt(warm(r)), _fmt(r["cold_s"]), f"{r['peak_rss_mb']:,.0f}"]
        p, d = rows.get("polars", {}), rows.get("duckdb", {})
        ok = [r for r in rows.values() if "digest" in r]
        cells.append(f"{warm(p) / warm(d):.2f}" if p.get("runs_s") and d.get("runs_s")
                     else "-")
        cells.append(f"{p['cold_s'] / d['cold_s']:.2f}" if p.get("cold_s") and d.get("cold_s")
                     else "-")
        cells.append(("yes" if len({r["digest"] for r in ok}) == 1 else "NO")
                     if len(ok) > 1 else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _order(row: dict[str, Any]) -> tuple[int, int]:
    engines = ["polars", "duckdb", "spark (cluster)"]
    a = ANALYTICS.index(row["analytic"]) if row["analytic"] in ANALYTICS else 99
    return a, engines.index(row["engine"]) if row["engine"] in engines else 9


def write(report: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    name = f"engines-{report['size']}"
    old = out / f"{name}.json"
    if old.exists():  # a partial run (--only, --spark) replaces only its own rows
        keys = {(r["analytic"], r["engine"]) for r in report["rows"]}
        kept = [r for r in json.loads(old.read_text())["rows"]
                if (r["analytic"], r["engine"]) not in keys]
        report["rows"] = sorted(kept + report["rows"], key=_order)
    (out / f"{name}.json").write_text(json.dumps(report, indent=2, default=str))
    load = ", ".join(f"{x:.1f}" for x in report["load"])
    md = (f"# Engines, {report['events']} events ({report['size']} store)\n\n"
          f"{report['date']}, {report['code']}, load average at the end {load} (shared "
          f"2-core machine). Warm: best of {report['repeat']} runs after the first answer in the "
          f"process; cold: a "
          f"new process's first answer (imports included); peak RSS of that process. Ratios "
          f"< 1: Polars faster. `python -m bench.engines_matrix`.\n\n" + table(report) + "\n")
    if report.get("cluster"):
        md += f"\nSpark standalone cluster: {json.dumps(report['cluster'])}\n"
    path = out / f"{name}.md"
    path.write_text(md)
    return path


def growth_table(out: Path, engine: str = "polars") -> str:
    """Time (warm / cold) and peak RSS of each analytic at 10M -> 50M -> 200M events, from
    the ``engines-<size>.json`` files present."""
    reports = [json.loads((out / f"engines-{s}.json").read_text())
               for s in EVENTS_PER_SIZE if (out / f"engines-{s}.json").exists()]
    head = ["analytic"] + [f"{r['events']} warm / cold / peak MiB" for r in reports]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for analytic in ANALYTICS:
        cells = [analytic]
        for r in reports:
            row = next((x for x in r["rows"] if x["analytic"] == analytic
                        and x["engine"] == engine), None)
            if row is None:
                cells.append("-")
            elif "error" in row:
                cells.append(f"error: {row['error'][:50]}")
            else:
                cells.append(f"{_fmt(warm(row))} / {_fmt(row['cold_s'])} / "
                             f"{row['peak_rss_mb']:,.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        home, analytic, engine, repeat = argv[1:5]
        print("MATRIX-RESULT " + json.dumps(child(home, analytic, engine, int(repeat)),
                                            default=str))
        return 0
    p = argparse.ArgumentParser(prog="python -m bench.engines_matrix",
                                description=__doc__.splitlines()[0])
    p.add_argument("--size", nargs="+", default=["medium"])
    p.add_argument("--engines", nargs="*", default=["polars", "duckdb"])
    p.add_argument("--only", nargs="*", help="analytics (substring match)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--timeout", type=float, default=900, help="seconds per process")
    p.add_argument("--spark", nargs="*", default=[], help="trend and/or funnel on a cluster")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--growth", action="store_true", help="print the growth table and exit")
    p.add_argument("--render", action="store_true", help="rewrite the .md from the .json")
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.growth:
        text = growth_table(out)
        (out / "growth.md").write_text(
            "# Growth: each analytic on Polars (the default engine) at 10M -> 50M -> 200M "
            "events\n\nwarm (best run after the first answer) / cold (a new process's first "
            "answer) / peak RSS of that process, from `engines-<size>.json` "
            "(`python -m bench.engines_matrix --growth`); `-`: not measured.\n\n" + text + "\n")
        print(text)
        return 0
    if args.render:
        for size in args.size:  # ok-loop: one report per size
            print(write(json.loads((out / f"engines-{size}.json").read_text()), out))
        return 0
    analytics = [a for a in ANALYTICS
                 if not args.only or any(o.lower() in a.lower() for o in args.only)]
    for size in args.size:  # ok-loop: one report per store size
        report = run_size(size, args.engines, analytics, args.repeat, args.timeout, args.spark)
        print(table(report))
        print(f"wrote {write(report, out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
