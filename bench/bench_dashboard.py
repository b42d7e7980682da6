"""Benchmark: time to a fully rendered dashboard page on a ~1M-event sample store.

Usage::

    python bench/bench_dashboard.py [--users 4300] [--days 180] [--repeat 3]

Generates (once) a sample store under ``bench/.stores/dashboard-<users>x<days>/`` with
the example segments, then, for each page, times ``AppTest.run()``: the first render
in a fresh session (cold caches: ``st.cache_data`` and ``st.cache_resource`` cleared) and a cached rerun
(the same page again, the median of ``--repeat``), and on the builder the live preview
of new rules typed in the editor (first time, then again). Prints a table (seconds).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PREVIEW_RULES = [
    "country = 'US' AND age >= 30",
    "event_count('charged', within => '90 days') >= 3",
    "did_then_not('added_to_cart', 'charged', gap => '10 minutes', within => '30 days')",
]
PAGES = ["overview", "segments", "builder", "segment", "funnels", "events", "user", "data"]


def _store(users: int, days: int) -> Path:
    from segcore import Store
    from segcore.sample import generate
    from segcore.sample.examples import seed_examples

    home = ROOT / "bench" / ".stores" / f"dashboard-{users}x{days}"
    if not (home / "events").exists():
        generate(home, users=users, days=days, end="2026-06-30", seed=42)
    seed_examples(Store(home))
    return home


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=4300)
    ap.add_argument("--days", type=int, default=180)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--home", help="an existing store to use instead (example segments added)")
    ap.add_argument("--pages", nargs="*", default=PAGES, help="pages to time (default: all)")
    args = ap.parse_args()
    if args.home:
        from segcore import Store
        from segcore.sample.examples import seed_examples

        home = Path(args.home).resolve()
        seed_examples(Store(home))
    else:
        home = _store(args.users, args.days)
    os.environ["SEGCORE_HOME"] = str(home)
    os.environ.pop("SEGCORE_PASSWORD", None)

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from segcore import Store

    app = str(ROOT / "dashboard" / "app.py")
    # the first page in a new process (what a user meets first: no event read yet);
    # later pages are timed with the Python imports warm
    t0 = time.perf_counter()
    first_app = AppTest.from_file(app, default_timeout=300).run()
    assert not first_app.exception, first_app.exception
    print(f"first page in a new process: {time.perf_counter() - t0:.2f} s")
    info = Store(home).info()
    uid = Store(home).scan_users().select("user_id").head(1).collect().item()
    print(f"store {home.name}: {info['users']:,} users, {info['events']:,} events")
    print(f"{'page':<10} {'first render (s)':>17} {'cached rerun (s)':>17}")
    for page in args.pages:
        st.cache_data.clear()
        st.cache_resource.clear()
        at = AppTest.from_file(app, default_timeout=300)
        if page == "user":
            at.session_state["ul_id"] = uid
        t0 = time.perf_counter()
        at.switch_page(f"app_pages/{page}.py").run()
        first = time.perf_counter() - t0
        assert not at.exception, (page, at.exception)
        assert not at.error, (page, [e.value for e in at.error])
        reruns = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            at.run()
            reruns.append(time.perf_counter() - t0)
        assert not at.exception, (page, at.exception)
        print(f"{page:<10} {first:>17.2f} {statistics.median(reruns):>17.2f}")
        if page == "builder":
            for rule in PREVIEW_RULES:
                t0 = time.perf_counter()
                at.text_area(key="b_text").input(rule).run()
                first = time.perf_counter() - t0
                assert not at.exception and not at.error, (rule, at.exception, at.error)
                t0 = time.perf_counter()
                at.run()
                again = time.perf_counter() - t0
                print(f"  preview: {rule[:48]:<48} {first:>6.2f} {again:>6.2f}")


if __name__ == "__main__":
    main()
