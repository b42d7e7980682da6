"""Benchmark: the membership service under load on loopback, while an import lands.

Usage::

    python bench/bench_service.py [--size medium] [--source DIR] [--clients 64]
                                  [--seconds 30] [--ingest-rows 100000]

Copies a generated store (``--source``, else the ``bench.harness`` store of ``--size``,
generated once) to ``bench/.stores/service-run/``, saves the example segments, starts
``segcore serve`` in a subprocess and materializes every segment, then runs ``--clients``
concurrent clients for ``--seconds`` (and a third of that after the import; a mix: 80% one user's segments, 10% a batch of 20
users' segments, 10% a segment's count) while, a third of the way in, ``segcore ingest``
imports ``--ingest-rows`` events. Every answer is checked against a fresh evaluation
(``members_actors``, another process) at the data version the answer reports. Prints
lookups per second, p50/p99 latency (overall and before / during / after the import),
every error's kind (HTTP status and the body's error message, or the client exception's
class and message) by phase, wrong answers, the server's peak RSS and the machine's load.
Bounded and loopback only: the server binds 127.0.0.1, every request and step has a
timeout, the load stops by itself (at the latest ``--seconds`` + 600 s after it started)
and the server is stopped at the end (its stderr goes to ``bench/.stores/service-run.log``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NOW = "2026-06-30T12:00:00Z"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def segcore(*args: str, timeout: float = 900) -> str:
    out = subprocess.run([sys.executable, "-m", "segcore", *args], env=ENV, timeout=timeout,
                         capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"segcore {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout


def prepare(args: argparse.Namespace) -> Path:
    from segcore import Store
    from segcore.sample.examples import seed_examples

    source = Path(args.source) if args.source else None
    if source is None:
        from bench.harness import store_home

        source = store_home(args.size)
    home = ROOT / "bench" / ".stores" / "service-run"
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(source, home, ignore=shutil.ignore_patterns("catalog.sqlite*",
                                                                "memberships"))
    seed_examples(Store(home))
    return home


def expected(home: Path) -> tuple[str, list[str], dict[str, set[str]]]:
    """(data version, segment order, members per segment) evaluated afresh at NOW."""
    from segcore import Store
    from segcore.query import MembersQuery, Target, members_actors

    store = Store(home)
    with store.pinned():
        version = store.data_version()
        order = [s.name for s in store.catalog.list()]
        members = {name: set(members_actors(store, MembersQuery(Target(segment=name), NOW))
                             ["user_id"].to_list()) for name in order}
    return version, order, members


def start_server(home: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """``segcore serve`` with its default limits (loopback clients are not rate limited)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    # stderr to a file, never a pipe nobody reads (a full pipe would stall the server)
    proc = subprocess.Popen([sys.executable, "-m", "segcore", "serve", "--home", str(home),
                             "--port", str(port), "--now", NOW],
                            env=ENV, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    import httpx

    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server stopped: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/v1/health", timeout=5).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the server did not start within 300 s")


async def client(http: Any, users: list[str], segments: list[str],
                 until: dict[str, float], log: list[dict[str, Any]], seed: int) -> None:
    """One client: a request, its answer, the next request (on a connection of ``http``)."""
    rng = random.Random(seed)
    while time.monotonic() < until["t"]:
        roll = rng.random()
        if roll < 0.8:
            kind, ids = "user", [rng.choice(users)]
            call = http.get(f"/v1/users/{ids[0]}/segments")
        elif roll < 0.9:
            kind, ids = "batch", rng.sample(users, 20)
            call = http.post("/v1/users/segments", json={"user_ids": ids})
        else:
            kind, ids = "count", [rng.choice(segments)]
            call = http.get(f"/v1/segments/{ids[0]}/count")
        at, t0 = time.monotonic(), time.perf_counter()
        try:
            r = await call
            status = r.status_code
            try:
                body = r.json()
            except ValueError:
                body = {"error": f"not JSON: {r.text[:200]!r}"}
        except Exception as exc:  # noqa: BLE001 - recorded as an error, by its kind
            status, body = 0, {"error": f"{type(exc).__name__}: {exc}"[:300]}
        log.append({"kind": kind, "ids": ids, "status": status, "body": body,
                    "seconds": time.perf_counter() - t0, "at": at})


def check(entry: dict[str, Any], truth: dict[str, tuple[list[str], dict[str, set[str]]]]
          ) -> bool:
    body = entry["body"]
    if body.get("data_version") not in truth:
        return False
    order, members = truth[body["data_version"]]
    if entry["kind"] == "count":
        return body["members"] == len(members[entry["ids"][0]])
    want = {u: [s for s in order if u in members[s]] for u in entry["ids"]}
    got = body["users"] if entry["kind"] == "batch" else {body["user_id"]: body["segments"]}
    return got == want


def error_kind(entry: dict[str, Any]) -> str:
    """``"<status> <error message>"`` (status 0: the client's exception)."""
    body = entry["body"] if isinstance(entry["body"], dict) else {}
    message = str(body.get("error", entry["body"]))[:160]
    return f"{entry['status'] or 'client'}: {message}"


def phase(entry: dict[str, Any], ingest: dict[str, float]) -> str:
    """When a request was sent: before, during or after the import."""
    if entry["at"] < ingest.get("start", float("inf")):
        return "before"
    return "during" if entry["at"] <= ingest.get("end", float("inf")) else "after"


def peak_rss_mb(pid: int) -> float | None:
    """Peak resident memory of a live process (MiB), from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True,
                              timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="medium", help="bench.harness size (default medium)")
    p.add_argument("--source", help="an existing store to copy instead")
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--ingest-rows", type=int, default=100_000)
    p.add_argument("--json", help="write the result here too")
    args = p.parse_args(argv)

    import polars as pl

    from segcore import Store

    t0 = time.monotonic()
    home = prepare(args)
    store = Store(home)
    n_events = store.scan_events().select(pl.len()).collect().item()
    users = store.scan_users().select("user_id").collect()["user_id"].to_list()
    token = segcore("token", "create", "bench", "--home", str(home)).strip()
    admin = segcore("token", "create", "bench-admin", "--scope", "admin", "--home",
                    str(home)).strip()
    v0, order, members0 = expected(home)
    truth = {v0: (order, members0)}
    print(f"store: {n_events:,} events, {len(users):,} users, {len(order)} saved segments "
          f"(prepared in {time.monotonic() - t0:.0f} s)", flush=True)

    rng = random.Random(7)
    batch = pl.DataFrame({
        "user_id": [rng.choice(users) for _ in range(args.ingest_rows)],
        "event": [rng.choice(["charged", "added_to_cart", "page_viewed"])
                  for _ in range(args.ingest_rows)],
        "ts": "2026-06-30T09:00:00Z",
        "amount": [round(rng.uniform(5, 900), 2) for _ in range(args.ingest_rows)],
    })
    batch_file = home.parent / "service-run-batch.csv"
    batch.write_csv(batch_file)

    server_log = home.parent / "service-run.log"
    proc, url = start_server(home, server_log)
    loads = {"start": uptime()}
    rss = None
    try:
        import httpx

        t1 = time.monotonic()
        r = httpx.post(url + "/v1/refresh", headers={"Authorization": f"Bearer {admin}"},
                       timeout=900)
        assert r.status_code == 200, r.text
        print(f"materialized {len(order)} segments in {time.monotonic() - t1:.1f} s",
              flush=True)

        log: list[dict[str, Any]] = []
        start = time.monotonic()
        # the load runs --seconds, and on after the import for a third of that; never
        # longer than --seconds + 600 s
        until = {"t": start + args.seconds + 600}
        ingest: dict[str, float] = {}

        async def run() -> None:
            async def importer() -> None:
                await asyncio.sleep(args.seconds / 3)
                ingest["start"] = time.monotonic()
                imp = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "segcore", "ingest", "events", str(batch_file),
                    "--home", str(home), env=ENV, stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL)
                await asyncio.sleep(min(5.0, args.seconds / 3))
                loads["import"] = uptime()
                try:
                    await asyncio.wait_for(imp.wait(), timeout=600)
                except asyncio.TimeoutError:
                    imp.kill()
                    await imp.wait()
                ingest["end"] = time.monotonic()
                ingest["code"] = imp.returncode
                until["t"] = max(start + args.seconds, ingest["end"] + args.seconds / 3)

            # one connection pool for all clients (64 AsyncClients would each build an
            # SSL context first: seconds of the bench's CPU, not the server's)
            async with httpx.AsyncClient(
                    base_url=url, timeout=120, headers={"Authorization": f"Bearer {token}"},
                    limits=httpx.Limits(max_connections=args.clients,
                                        max_keepalive_connections=args.clients)) as http:
                await asyncio.wait_for(asyncio.gather(importer(), *[
                    client(http, users, order, until, log, seed)
                    for seed in range(args.clients)]), timeout=args.seconds + 900)

        asyncio.run(run())
        elapsed = time.monotonic() - start
        loads["end"] = uptime()
        rss = peak_rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()

    v1, order1, members1 = expected(home)
    truth[v1] = (order1, members1)
    ok = [e for e in log if e["status"] == 200]
    failed = [e for e in log if e["status"] != 200]
    wrong = sum(not check(e, truth) for e in ok)
    seconds = [e["seconds"] for e in log]
    lookups = sum(len(e["ids"]) for e in ok if e["kind"] != "count")
    by_version = {v: sum(e["body"].get("data_version") == v for e in ok) for v in truth}
    phases: dict[str, dict[str, Any]] = {}
    for name in ("before", "during", "after"):  # ok-loop: three phases
        part = [e for e in log if phase(e, ingest) == name]
        took = [e["seconds"] for e in part]
        kinds: dict[str, int] = {}
        for e in part:  # ok-loop: counting the failed requests' kinds
            if e["status"] != 200:
                kinds[error_kind(e)] = kinds.get(error_kind(e), 0) + 1
        phases[name] = {"requests": len(part), "errors": sum(kinds.values()),
                        "p50_ms": round(1000 * pct(took, 0.5), 1) if took else None,
                        "p99_ms": round(1000 * pct(took, 0.99), 1) if took else None,
                        "error_kinds": dict(sorted(kinds.items(), key=lambda kv: -kv[1]))}
    # latency over the run, per 10 s of start times: a slow start shows in the first rows
    windows = []
    for w in range(int(elapsed // 10) + 1):  # ok-loop: one row per 10 s
        took = [e["seconds"] for e in log if w * 10 <= e["at"] - start < (w + 1) * 10]
        if took:
            windows.append({"from_s": w * 10, "requests": len(took),
                            "p50_ms": round(1000 * pct(took, 0.5), 1),
                            "p99_ms": round(1000 * pct(took, 0.99), 1)})
    result = {
        "events": n_events, "users": len(users), "segments": len(order),
        "clients": args.clients, "seconds": round(elapsed, 1), "requests": len(log),
        "requests_per_s": round(len(log) / elapsed, 1),
        "user_lookups_per_s": round(lookups / elapsed, 1),
        "p50_ms": round(1000 * pct(seconds, 0.5), 1), "p99_ms": round(1000 * pct(seconds, 0.99), 1),
        "max_ms": round(1000 * max(seconds), 1) if seconds else None,
        "errors": len(failed), "wrong": wrong, "answers_per_version": by_version,
        "phases": phases, "windows": windows,
        "import_rows": args.ingest_rows, "import_exit": ingest.get("code"),
        "import_seconds": round(ingest.get("end", 0) - ingest.get("start", 0), 1),
        "server_peak_rss_mb": rss, "bench_peak_rss_mb": peak_rss_mb(os.getpid()),
        "uptime": loads,
        "load_average": [round(x, 1) for x in os.getloadavg()], "cpus": os.cpu_count(),
    }
    print("errors by phase and kind:" if failed else "errors: none", flush=True)
    for name, ph in phases.items():  # ok-loop: three phases
        for kind, n in ph["error_kinds"].items():  # ok-loop: a few kinds
            print(f"  {name:6} {n:6}  {kind}")
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(home, ignore_errors=True)
    batch_file.unlink(missing_ok=True)
    return 0 if not failed and wrong == 0 and ingest.get("code") == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
