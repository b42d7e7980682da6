"""Timing protocol, stores and machine description shared by every workload."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
STORES = ROOT / ".stores"
RESULTS = ROOT / "results"

# users per size: ~236 events per user over 180 days in the sample generator
SIZES: dict[str, dict[str, Any]] = {
    "small": {"users": 5_000, "days": 180, "end": "2026-06-30", "seed": 1},
    "medium": {"users": 42_000, "days": 180, "end": "2026-06-30", "seed": 1},
    "large": {"users": 212_000, "days": 180, "end": "2026-06-30", "seed": 1},
    "xlarge": {"users": 848_000, "days": 180, "end": "2026-06-30", "seed": 1},  # ~200M
}
AS_OF = "2026-06-30"
T_SQL = "TIMESTAMP '2026-07-01 00:00:00'"


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a new measured process: this repository first on the path, and
    bytecode written and reused as on a user's machine (``PYTHONDONTWRITEBYTECODE`` would
    make every new process compile segcore again)."""
    env = {**os.environ, **(extra or {}),
           "PYTHONPATH": str(ROOT.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def store_home(size: str) -> Path:
    """The generated store of a size, created on first use and kept between runs."""
    from segcore.sample import generate
    from segcore.store.events import EVENT_ROW_GROUP, EVENT_SORT

    params = SIZES[size]
    home = Path(os.environ.get("SEGCORE_BENCH_STORES") or STORES) / size
    marker = home / "bench-params.json"
    wanted = {**params, "layout": list(EVENT_SORT), "row_group": EVENT_ROW_GROUP}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return home
    print(f"generating the {size} store ({params['users']:,} users)...", flush=True)
    generate(home, **params)  # replaces events and users atomically
    marker.write_text(json.dumps(wanted))
    return home


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Timing:
    """Median of ``runs`` after a warm-up, and the value the last run returned."""

    runs: list[float] = field(default_factory=list)
    value: Any = None

    @property
    def median(self) -> float:
        return statistics.median(self.runs) if self.runs else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"median_s": round(self.median, 5), "runs_s": [round(r, 5) for r in self.runs]}


def measure(fn: Callable[[], Any], repeat: int, warmup: int = 1) -> Timing:
    """Run ``fn`` ``warmup`` times untimed, then ``repeat`` times timed."""
    t = Timing()
    for _ in range(warmup):
        t.value = fn()
    for _ in range(repeat):
        start = time.perf_counter()
        t.value = fn()
        t.runs.append(time.perf_counter() - start)
    return t


def machine() -> dict[str, Any]:
    """A short description of the machine the numbers come from."""
    import polars as pl

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "polars": pl.__version__,
    }
    try:
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        info["memory_gib"] = round(int(mem) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    for mod in ("duckdb", "chdb"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:  # peer missing: the report says so
            info[mod] = None
    return info
