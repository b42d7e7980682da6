"""Benchmark: the dashboard's first page in a real browser, on the shared bench stores.

Usage::

    SEGCORE_BENCH_STORES=/work/benchstores python -m bench.dashboard_first_page \
        [--sizes medium large] [--repeat 3]

For each size, a private store home under ``bench/.stores/dashfirst-<size>/`` holds the bench
store's event and user files as hard links (nothing is copied or changed in the shared store),
a copy of its event statistics and a fresh catalog with the example segments (what a user who
saved segments meets). Each run starts a new ``streamlit run dashboard/app.py`` process on a
loopback port, waits until it answers its health check (not timed), then times headless
Chromium (Playwright, ``/usr/bin/chromium``) from ``page.goto`` until the Overview shows its
first numbers (the store's metrics and the saved segments' list) and until it is complete
(every segment's size and last 30 days: no spinner, skeleton or running indicator left). Sizes are interleaved, the medians of ``--repeat`` runs are printed with
the load average, and the server is stopped after each run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
DONE = "Click a row to open its segment"  # drawn after the last segment's numbers
BUSY = ('[data-testid="stStatusWidget"], [data-testid="stSkeleton"], '
        '[data-testid="stSpinner"]')


def private_home(size: str) -> Path:
    """The bench store ``size`` as hard links plus its own catalog with example segments."""
    from segcore import Store
    from segcore.sample.examples import seed_examples
    from segcore.store.stats import STATS_FILE

    src = Path(os.environ.get("SEGCORE_BENCH_STORES", ROOT / "bench" / ".stores")) / size
    home = ROOT / "bench" / ".stores" / f"dashfirst-{size}"
    if not (home / "events").exists():
        home.mkdir(parents=True, exist_ok=True)
        for sub in ("events", "users"):  # ok-loop: two folders
            shutil.copytree(src / sub, home / sub, copy_function=os.link)
        if (src / STATS_FILE).exists():
            shutil.copy2(src / STATS_FILE, home / STATS_FILE)
    seed_examples(Store(home))
    return home


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(home: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "SEGCORE_HOME": str(home), "PYTHONPATH": str(ROOT)}
    env.pop("SEGCORE_PASSWORD", None)
    env.pop("SEGCORE_ENGINE", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"),
         "--server.port", str(port), "--server.headless", "true",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("streamlit did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def first_page(browser, url: str, pid: int, timeout: float = 900) -> list[float]:
    """Seconds from opening ``url`` until the Overview shows its first numbers (the store's
    metrics and the list of saved segments) and until it is complete (every segment's
    size and last 30 days: nothing running, no spinner, for half a second), and the server
    process's CPU seconds over each (less dependent on the machine's load)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        c0 = cpu_seconds(pid)
        t0 = time.perf_counter()
        page.goto(url)
        table = page.locator('[data-testid="stDataFrame"] canvas')
        metrics = page.locator('[data-testid="stMetricValue"]')
        first = first_cpu = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if first is None and page.get_by_text("Saved segments").count() \
                    and table.count() and metrics.count() >= 4:
                first = time.perf_counter() - t0
                first_cpu = cpu_seconds(pid) - c0
            if first is not None and page.get_by_text(DONE).count() \
                    and not page.locator(BUSY).count():
                done = time.perf_counter() - t0
                done_cpu = cpu_seconds(pid) - c0
                page.wait_for_timeout(500)  # settled: still nothing running
                if not page.locator(BUSY).count():
                    return [first, done, first_cpu, done_cpu]
            time.sleep(0.05)
        raise TimeoutError(f"{url}: the first page did not settle in {timeout} s")
    finally:
        page.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["medium", "large"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    homes = {size: private_home(size) for size in args.sizes}
    runs: dict[str, list[list[float]]] = {size: [] for size in args.sizes}
    loads = [os.getloadavg()[0]]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            for run in range(args.repeat):  # ok-loop: interleaved runs
                for size, home in homes.items():  # ok-loop: one server per run
                    proc, url = start(home)
                    try:
                        got = first_page(browser, url, proc.pid)
                    finally:
                        stop(proc)
                    runs[size].append(got)
                    loads.append(os.getloadavg()[0])
                    print(f"run {run + 1} {size}: first numbers {got[0]:.2f} s (server CPU "
                          f"{got[2]:.2f} s), complete {got[1]:.2f} s (CPU {got[3]:.2f} s) "
                          f"(load {loads[-1]:.1f})", flush=True)
        finally:
            browser.close()
    names = ("first_numbers_s", "complete_s", "first_numbers_cpu_s", "complete_cpu_s")
    out: dict = {size: {f"median_{name}": statistics.median(r[i] for r in got)
                        for i, name in enumerate(names)} | {"runs": got}
                 for size, got in runs.items()}
    out["load"] = {"min": min(loads), "max": max(loads)}
    print(json.dumps(out, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
