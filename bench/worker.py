"""Run one workload in this process and print its result as JSON (peak memory is ours)."""

from __future__ import annotations

import argparse
import json
import sys
import traceback

from bench.harness import store_home
from bench.workloads import WORKLOADS


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--size", required=True)
    p.add_argument("--workload")
    p.add_argument("--prepare", action="store_true", help="only generate the store")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    if args.prepare:
        store_home(args.size)
        return 0
    try:
        result = WORKLOADS[args.workload](store_home(args.size), args.repeat)
    except Exception as exc:  # reported, not fatal to the suite
        result = {"workload": args.workload, "error": f"{type(exc).__name__}: {exc}",
                  "trace": traceback.format_exc(limit=3)}
    result["key"] = args.workload
    print("BENCH-RESULT " + json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
