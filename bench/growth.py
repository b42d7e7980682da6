"""``python -m bench.growth [FOLDER]``: how each workload's time and memory grow from 10M to
50M to 200M events, from the reports ``python -m bench --size medium|large|xlarge`` wrote
in FOLDER (default ``bench/results/final``); writes ``growth.md`` there and prints it.

Per size: segcore's median time, its ratio to the workload's first peer, and the peak RSS
of the workload's process; then how much the time grew per 4-5x more events.
"""

from __future__ import annotations

import json
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any

from bench.harness import RESULTS
from bench.report import fmt_seconds

SIZES = ("medium", "large", "xlarge")


def _events(n: int) -> str:
    return f"{n / 1e6:.0f}M"


def growth(reports: list[dict[str, Any]]) -> str:
    """The Markdown table of the workloads the reports share (in the first one's order)."""
    by_size = [{r["key"]: r for r in rep["results"] if "error" not in r} for rep in reports]
    keys = list(dict.fromkeys(k for b in by_size for k in b))
    head = ["workload", *[f"{_events(r['events'])}: time (ratio), peak MiB" for r in reports],
            *[f"time x, {_events(a['events'])} -> {_events(b['events'])}"
              for a, b in pairwise(reports)]]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for key in keys:
        cells, times = [key], []
        for b in by_size:
            r = b.get(key)
            if r is None:
                cells.append("-")
                times.append(None)
                continue
            t = r["segcore"]["median_s"]
            ratio = next(iter(r.get("ratios", {}).values()), None)
            mem = r.get("peak_rss_mb")
            cells.append(f"{fmt_seconds(t)} ({ratio:.2f}), {mem:,.0f}" if ratio is not None
                         else f"{fmt_seconds(t)}, {mem:,.0f}")
            times.append(t)
        cells += [f"{b / a:.1f}" if a and b else "-" for a, b in pairwise(times)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    folder = Path(argv[0]) if argv else RESULTS / "final"
    reports = [json.loads((folder / f"{s}.json").read_text()) for s in SIZES
               if (folder / f"{s}.json").exists()]
    if not reports:
        print(f"no medium/large/xlarge .json reports in {folder}", file=sys.stderr)
        return 1
    table = growth(reports)
    ratio_of = "ratio: segcore time / the workload's first peer (as in each size's report)"
    (folder / "growth.md").write_text(
        "# Growth from 10M to 50M to 200M events\n\n"
        f"`python -m bench.growth {folder}`: segcore's median time per workload at each size "
        f"({ratio_of}), the peak RSS of the workload's process, and how much the time grew "
        "from one size to the next (events grow 4.8x, then 4.0x).\n\n" + table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
