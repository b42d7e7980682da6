"""Time ``segcore.ingest`` on ~1M generated events (CSV and Parquet); prints rows/s.

Run: ``python bench/bench_ingest.py [--rows N] [--repeat 3]`` (median of the runs,
each into a fresh store).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from segcore import Store
from segcore.ingest import ingest


def make_events(n: int, seed: int = 7) -> pl.DataFrame:
    """``n`` events: 50k users, 6 event names, a year of timestamps, two properties."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2026-01-01T00:00:00", "us").astype(np.int64)
    ts = start + rng.integers(0, 365 * 86400 * 1_000_000, n)
    names = np.array(
        ["app_opened", "product_viewed", "added_to_cart", "charged", "login", "search"]
    )
    return pl.DataFrame(
        {
            "user_id": pl.Series(rng.integers(0, 50_000, n)).cast(pl.String).str.zfill(6),
            "event": names[rng.integers(0, len(names), n)],
            "ts": pl.Series(ts).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
            "event_id": pl.int_range(0, n, eager=True).cast(pl.String),
            "amount": rng.integers(1, 500, n),
            "category": np.array(["books", "toys", "food", "garden"])[rng.integers(0, 4, n)],
        }
    )


def time_import(src: Path, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as home:
            t0 = time.perf_counter()
            res = ingest(Store(home), "events", [src])
            times.append(time.perf_counter() - t0)
            assert res["rows_imported"] == res["rows_read"]
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    df = make_events(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        csv, parquet = Path(tmp) / "events.csv", Path(tmp) / "events.parquet"
        df.with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")).write_csv(csv)
        df.write_parquet(parquet)
        for label, src in (("csv", csv), ("parquet", parquet)):
            show(f"events {label}", args.rows, time_import(src, args.repeat))
        show("events re-import (all duplicates)", args.rows, time_reimport(parquet, args.repeat))
        users = Path(tmp) / "users.parquet"
        n_users = max(args.rows // 5, 1)
        make_users(n_users).write_parquet(users)
        show("users upsert (into same users)", n_users, time_reimport(users, args.repeat, "users"))


def show(label: str, rows: int, times: list[float]) -> None:
    med = statistics.median(times)
    runs = ", ".join(f"{t:.2f}" for t in times)
    print(
        f"{label:34s} {rows:>10,} rows  median {med:6.2f} s  "
        f"{rows / med:>12,.0f} rows/s  (runs: {runs})"
    )


def make_users(n: int, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "user_id": pl.int_range(0, n, eager=True).cast(pl.String).str.zfill(6),
            "country": np.array(["FR", "DE", "US", "BR"])[rng.integers(0, 4, n)],
            "age": rng.integers(18, 80, n),
            "email_opt_in": rng.random(n) < 0.5,
        }
    )


def time_reimport(src: Path, repeat: int, kind: str = "events") -> list[float]:
    """Import ``src`` into a store that already holds it (dedup / upsert path)."""
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as home:
            ingest(Store(home), kind, [src])
            t0 = time.perf_counter()
            ingest(Store(home), kind, [src])
            times.append(time.perf_counter() - t0)
    return times


if __name__ == "__main__":
    main()
