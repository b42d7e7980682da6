"""``python -m bench``: every workload against its peers, as a table, JSON and a report.

Each workload runs in its own process (so its peak memory is its own), on a generated
store kept between runs under ``bench/.stores/<size>``. Timings are medians of
``--repeat`` runs after a warm-up; ratios are segcore time / peer time (< 1: faster).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from bench.harness import RESULTS, SIZES, STORES, machine
from bench.report import print_table, targets, write_report
from bench.workloads import WORKLOADS


def _worker(*args: str, capture: bool = True) -> subprocess.CompletedProcess:
    """Run ``bench.worker`` in a fresh process (this one stays small: Linux carries the
    parent's peak RSS into an exec'd child, so the parent must never load data)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "bench.worker", *args],
                          capture_output=capture, text=True, env=env, cwd=root)


def run_one(size: str, name: str, repeat: int) -> dict:
    proc = _worker("--size", size, "--workload", name, "--repeat", str(repeat))
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH-RESULT "):
            return json.loads(line[len("BENCH-RESULT "):])
    return {"key": name, "workload": name,
            "error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per measurement")
    p.add_argument("--only", nargs="*", help="workload names (substring match)")
    p.add_argument("--out", default=str(RESULTS), help="folder for JSON and Markdown")
    p.add_argument("--list", action="store_true", help="list the workloads and exit")
    args = p.parse_args(argv)
    names = list(WORKLOADS)
    if args.list:
        print("\n".join(names))
        return 0
    if args.only:
        names = [n for n in names if any(o.lower() in n.lower() for o in args.only)]
    _worker("--size", args.size, "--prepare", capture=False)  # generate the store if needed
    import polars as pl

    home = Path(os.environ.get("SEGCORE_BENCH_STORES") or STORES) / args.size
    info = {"users": pl.scan_parquet(home / "users" / "*.parquet").select(pl.len()).collect().item(),
            "events": pl.scan_parquet(home / "events" / "*.parquet").select(pl.len()).collect().item()}
    print(f"store: {home} ({info['users']:,} users, {info['events']:,} events)")
    results = []
    for name in names:  # one process per workload
        print(f"  {name} ...", flush=True)
        results.append(run_one(args.size, name, args.repeat))
    report = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "size": args.size, "users": info["users"], "events": info["events"],
        "repeat": args.repeat, "machine": machine(), "results": results,
        "targets": targets(results),
    }
    print_table(report)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{args.size}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    md = write_report(report, out)
    print(f"\nwrote {path} and {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
