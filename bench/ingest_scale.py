"""``segcore ingest`` at scale: time and peak RSS of the CLI importing a few million events,
into an empty store and into a copy of a big store (the deduplication by ``event_id``
reads what is stored, so the second shows how the cost grows with the store).

Run: ``python -m bench.ingest_scale [--rows 5000000] [--into large]``: the rows are the
first rows of the shared ``xlarge`` (else ``large``) bench store, written as 1M-row
Parquet files with fresh ``event_id``s; each import is one ``python -m segcore ingest``
process. Results: ``bench/results/ingest-scale.json`` / ``.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def _stores() -> Path:
    return Path(os.environ.get("SEGCORE_BENCH_STORES") or ROOT / "bench" / ".stores")


def _inputs(folder: Path, rows: int, source: Path) -> list[Path]:
    import polars as pl

    lf = pl.scan_parquet(source / "events" / "*.parquet").head(rows)
    df = lf.with_columns(("new-" + pl.col("event_id")).alias("event_id")).collect()
    files = []
    for i, start in enumerate(range(0, df.height, 1_000_000)):  # ok-loop: 1M-row files
        f = folder / f"in-{i:03d}.parquet"
        df.slice(start, 1_000_000).write_parquet(f)
        files.append(f)
    return files


def _ingest(home: Path, files: list[Path]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "segcore", "ingest", "--home", str(home),
                           "events", *map(str, files)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=1800)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"seconds": round(seconds, 2), "ok": proc.returncode == 0,
            "peak_rss_mb": round(peak / 1024, 1) if peak > before else None,
            "said": (proc.stdout + proc.stderr).strip().splitlines()[-2:]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ingest_scale")
    p.add_argument("--rows", type=int, default=5_000_000)
    p.add_argument("--into", default="large", help="bench store copied as the existing store")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    stores = _stores()
    source = stores / ("xlarge" if (stores / "xlarge" / "bench-params.json").exists()
                       else "large")
    tmp = Path(tempfile.mkdtemp(prefix="segcore-bench-ingest-"))
    rows = []
    try:
        files = _inputs(tmp, args.rows, source)
        empty = tmp / "empty"
        shutil.copytree(stores / args.into / "users", empty / "users")
        rows.append({"into": "empty store (users only)", **_ingest(empty, files)})
        full = tmp / "full"
        shutil.copytree(stores / args.into, full)
        import polars as pl

        stored = pl.scan_parquet(stores / args.into / "events" / "*.parquet").select(
            pl.len()).collect().item()
        rows.append({"into": f"copy of the {args.into} store ({stored:,} events)",
                     **_ingest(full, files)})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "rows": args.rows, "files": len(files), "load": os.getloadavg(), "runs": rows}
    for r in rows:  # ok-loop: a few rows
        r["rows_per_s"] = round(args.rows / r["seconds"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ingest-scale.json").write_text(json.dumps(report, indent=2))
    md = [f"# `segcore ingest`, {args.rows:,} events ({len(files)} Parquet files)\n",
          f"{report['date']}, load {', '.join(f'{x:.1f}' for x in report['load'])} "
          "(shared 2-core machine); one CLI process per import.\n",
          "| into | seconds | rows/s | peak RSS MiB | ok |", "|---|---|---|---|---|"]
    md += [f"| {r['into']} | {r['seconds']} | {r['rows_per_s']:,} | {r['peak_rss_mb']} | "
           f"{r['ok']} |" for r in rows]
    (out / "ingest-scale.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
