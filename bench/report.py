"""Terminal table, target checks and the Markdown report (with an Altair chart)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

HAND = "duckdb (hand-written SQL)"


def fmt_seconds(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (workload, peer) with times and the ratio."""
    out = []
    for r in report["results"]:
        if "error" in r:
            out.append({"workload": r["key"], "segcore": None, "peer": "ERROR",
                        "peer_time": None, "ratio": None, "agree": False,
                        "note": r["error"], "mem": None})
            continue
        seg = r["segcore"]["median_s"]
        peers = r.get("peers") or {}
        if not peers:
            rate = r.get("rate_per_s")
            out.append({"workload": r["key"], "segcore": seg, "peer": "-", "peer_time": None,
                        "ratio": None, "agree": r.get("agree", True),
                        "note": f"{rate:,} rows/s" if rate else "", "mem": r.get("peak_rss_mb")})
        for name, t in peers.items():
            out.append({"workload": r["key"], "segcore": seg, "peer": name,
                        "peer_time": t["median_s"], "ratio": r["ratios"].get(name),
                        "agree": r.get("agree", True), "note": "",
                        "mem": r.get("peak_rss_mb")})
    return out


def targets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue targets, each with met / missed and by how much."""
    ok = [r for r in results if "error" not in r]
    out: list[dict[str, Any]] = []
    evals = [r for r in ok if r.get("family") == "evaluation" and HAND in r.get("ratios", {})]
    if evals:
        ratios = [r["ratios"][HAND] for r in evals if r["ratios"][HAND]]
        gm = math.exp(sum(math.log(x) for x in ratios) / len(ratios)) if ratios else None
        out.append({"target": "evaluation: geometric mean of segcore/DuckDB <= 0.7",
                    "value": round(gm, 3) if gm else None, "met": bool(gm and gm <= 0.7)})
        worst = max(evals, key=lambda r: r["ratios"][HAND] or 0)
        out.append({"target": "evaluation: faster than DuckDB on every rule family",
                    "value": f"worst {worst['workload']}: {worst['ratios'][HAND]}",
                    "met": all((r["ratios"][HAND] or 9) < 1 for r in evals)})
        typ = [r for r in evals if r["workload"] == "typical 3 conditions"]
        if typ:
            s = typ[0]["segcore"]["median_s"]
            out.append({"target": "typical 3-condition rule < 0.3 s", "value": fmt_seconds(s),
                        "met": s < 0.3})
    for r in ok:
        if r.get("family") == "funnels":
            v = r["ratios"].get("clickhouse/chdb windowFunnel")
            out.append({"target": f"{r['workload']}: faster than chdb windowFunnel",
                        "value": v, "met": bool(v and v < 1)})
        if r.get("family") == "cold start":
            for peer, v in r["ratios"].items():
                if peer in r.get("references", ()):
                    continue  # a measured reference, not a target
                out.append({"target": f"{r['workload']}: no slower than {peer}",
                            "value": v, "met": bool(v and v <= 1)})
        if r.get("family") == "size over time":
            limit = 5 if "30" in r["workload"] else 10
            for peer in ("one evaluation", "one evaluation (Parquet, no cache)"):
                v = r["ratios"].get(peer)
                if v is not None:
                    out.append({"target": f"{r['workload']}: <= {limit}x {peer}",
                                "value": v, "met": v <= limit})
    for r in ok:
        if not r.get("agree", True):
            out.append({"target": f"{r['key']}: same result as the peers", "value": "differs",
                        "met": False})
    return out


def print_table(report: dict[str, Any]) -> None:
    """The headline table on the terminal."""
    print(f"\nsegcore benchmark — size {report['size']}: {report['users']:,} users, "
          f"{report['events']:,} events; medians of {report['repeat']} runs after a warm-up")
    head = f"{'workload':40} {'segcore':>10} {'peer':34} {'peer time':>10} {'ratio':>7}  mem MiB"
    print(head)
    print("-" * len(head))
    for r in rows(report):
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
        flag = "" if r["agree"] else "  RESULTS DIFFER"
        mem = f"{r['mem']:.0f}" if r["mem"] else "-"
        print(f"{r['workload'][:40]:40} {fmt_seconds(r['segcore']):>10} {r['peer'][:34]:34} "
              f"{fmt_seconds(r['peer_time']):>10} {ratio:>7}  {mem:>7} {r['note']}{flag}")
    print("\ntargets:")
    for t in report["targets"]:
        print(f"  [{'met' if t['met'] else 'MISSED'}] {t['target']}: {t['value']}")


def _chart(report: dict[str, Any], folder: Path) -> str | None:
    """An Altair bar chart of the ratios; SVG if vl-convert is installed, else HTML."""
    import altair as alt
    import polars as pl

    data = [r for r in rows(report) if r["ratio"] is not None]
    if not data:
        return None
    df = pl.DataFrame([{"workload": r["workload"], "peer": r["peer"], "ratio": r["ratio"]}
                       for r in data]).to_pandas()
    chart = alt.Chart(df).mark_bar().encode(
        x=alt.X("ratio:Q", title="segcore time / peer time (< 1: segcore faster; log scale)",
                scale=alt.Scale(type="log")),
        y=alt.Y("workload:N", title=None, sort=None),
        color=alt.Color("peer:N", legend=alt.Legend(orient="bottom", columns=2)),
        yOffset="peer:N",
        tooltip=["workload", "peer", "ratio"],
    ).properties(width=520, title=f"segcore vs peers ({report['size']} store)")
    rule = alt.Chart(pl.DataFrame({"x": [1.0]}).to_pandas()).mark_rule(
        color="black", strokeDash=[4, 4]).encode(x="x:Q")
    layered = chart + rule
    name = f"{report['size']}-ratios"
    try:
        layered.save(folder / f"{name}.svg")
        return f"{name}.svg"
    except Exception:  # vl-convert not installed: interactive HTML instead
        layered.save(folder / f"{name}.html")
        return f"{name}.html"


def _cold_split(report: dict[str, Any]) -> list[str]:
    """Lines of the cold rows' split: imports (the engine's) vs the work after them."""
    out = []
    for r in report["results"]:
        if r.get("family") != "cold start" or "error" in r:
            continue
        for name, side in [("segcore", r["segcore"]), *r["peers"].items()]:
            imp = side.get("imports_median_s")
            if imp:
                out.append(f"| {r['workload']} | {name} | {fmt_seconds(side['median_s'])} | "
                           f"{fmt_seconds(imp)} | {fmt_seconds(side['median_s'] - imp)} |")
    if not out:
        return []
    return ["", "## New processes: imports and work", "",
            "Time from the process's start to the end of the engine's imports (segcore: polars, "
            "the rule parser, the evaluator), and the rest of the answer (medians).", "",
            "| workload | process | total | imports | work after imports |",
            "|---|---|---:|---:|---:|", *out]


def write_report(report: dict[str, Any], folder: Path) -> Path:
    """``<folder>/<size>.md``: machine, headline table, targets and the chart."""
    chart = _chart(report, folder)
    m = report["machine"]
    lines = [
        f"# segcore benchmark — {report['size']} store",
        "",
        f"{report['users']:,} users, {report['events']:,} events (sample generator); "
        f"run {report['date']}; medians of {report['repeat']} runs after a warm-up, each "
        "workload in its own process. Ratio = segcore time / peer time (< 1: segcore faster).",
        "",
        f"Machine: {m.get('cpu', '?')}, {m.get('cpus')} cores, {m.get('memory_gib', '?')} GiB; "
        f"Python {m.get('python')}, polars {m.get('polars')}, duckdb {m.get('duckdb')}, "
        f"chdb {m.get('chdb')}.",
        "",
        "| workload | segcore | peer | peer time | ratio | peak MiB | same result |",
        "|---|---:|---|---:|---:|---:|:---:|",
    ]
    for r in rows(report):
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
        peer = r["peer"] + (f" ({r['note']})" if r["note"] else "")
        lines.append(f"| {r['workload']} | {fmt_seconds(r['segcore'])} | {peer} | "
                     f"{fmt_seconds(r['peer_time'])} | {ratio} | {r['mem'] or '-'} | "
                     f"{'yes' if r['agree'] else 'NO'} |")
    lines += _cold_split(report)
    lines += ["", "## Targets", ""]
    for t in report["targets"]:
        lines.append(f"- **{'met' if t['met'] else 'missed'}** — {t['target']}: {t['value']}")
    if chart:
        lines += ["", f"![ratios]({chart})" if chart.endswith(".svg")
                  else f"Chart: [{chart}]({chart})"]
    path = folder / f"{report['size']}.md"
    path.write_text("\n".join(lines) + "\n")
    return path
