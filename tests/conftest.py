"""Shared fixtures: a small deterministic sample store, and tiny hand-made stores."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from segcore import Store
from segcore.sample import generate

SAMPLE_ARGS = {"users": 1000, "days": 120, "end": "2026-06-30", "seed": 7}
AS_OF = "2026-06-30"  # T = 2026-07-01T00:00:00Z
T = dt.datetime(2026, 7, 1, tzinfo=dt.timezone.utc)

# Never imported by a count, a trend or a funnel in a new process: other engines and the UI.
OTHER_ENGINES_AND_UI = frozenset({"duckdb", "chdb", "pyspark", "streamlit", "altair", "pandas",
                                  "pyarrow"})


def fresh_process(code: str, *args: str) -> tuple[Any, set[str]]:
    """Run ``code`` (which sets ``result``; ``sys.argv[1:]`` are ``args``) in a new Python
    process on this checkout's segcore, after ``import polars``: ``result`` (through JSON)
    and the modules the code imported beyond those Polars itself imports."""
    prelude = "import json, sys\nimport polars\n_before = set(sys.modules)\n"
    report = "\nprint(json.dumps([result, sorted(set(sys.modules) - _before)]))"
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", prelude + code + report, *args], env=env,
                         cwd=root, capture_output=True, text=True, check=True).stdout
    result, modules = json.loads(out.strip().splitlines()[-1])
    return result, set(modules)


@pytest.fixture(scope="session")
def sample_home(tmp_path_factory) -> Path:
    """A 1,000-user, 120-day sample store ending 2026-06-30 (read-only for tests)."""
    home = tmp_path_factory.mktemp("sample_store")
    generate(home, **SAMPLE_ARGS)
    return home


@pytest.fixture(scope="session")
def sample_store(sample_home) -> Store:
    """The shared sample store (do not write to it: copy it with ``writable_sample``)."""
    return Store(sample_home)


@pytest.fixture
def writable_sample(sample_home, tmp_path) -> Store:
    """A private copy of the sample store that a test may change."""
    import shutil

    dst = tmp_path / "store"
    shutil.copytree(sample_home, dst)
    return Store(dst)


def make_store(home: Path, events: list[tuple] | pl.DataFrame | None = None,
               users: list[dict] | pl.DataFrame | None = None) -> Store:
    """A tiny store from rows: events as ``(user_id, event, ts, {props})`` tuples.

    ``ts`` is a ``datetime`` (naive = UTC) or an ISO string.
    """
    home = Path(home)
    (home / "events").mkdir(parents=True, exist_ok=True)
    (home / "users").mkdir(parents=True, exist_ok=True)
    if events is not None:
        if not isinstance(events, pl.DataFrame):
            rows = []
            for i, e in enumerate(events):
                uid, name, ts = e[0], e[1], e[2]
                props = e[3] if len(e) > 3 else {}
                if isinstance(ts, str):
                    ts = dt.datetime.fromisoformat(ts.replace("Z", ""))
                rows.append({"user_id": uid, "event": name, "ts": ts,
                             "event_id": f"e{i}", **props})
            events = pl.DataFrame(rows, infer_schema_length=None)
            events = events.with_columns(pl.col("ts").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"))
        events.write_parquet(home / "events" / "part-0.parquet")
    if users is not None:
        if not isinstance(users, pl.DataFrame):
            users = pl.DataFrame(users, infer_schema_length=None)
        users.write_parquet(home / "users" / "users.parquet")
    return Store(home)


@pytest.fixture
def tiny(tmp_path):
    """Factory: ``tiny(events=[...], users=[...])`` -> Store in a fresh folder."""
    counter = iter(range(1000))

    def build(events=None, users=None) -> Store:
        return make_store(tmp_path / f"tiny{next(counter)}", events, users)

    return build


@pytest.fixture(autouse=True, scope="session")
def _dashboard_on_loopback():
    """AppTest has no server: say it listens on loopback, as ``streamlit run`` does.

    (The dashboard serves nothing when ``server.address`` is not a loopback address.)
    """
    from streamlit import config

    config.set_option("server.address", "127.0.0.1")
    yield


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory):
    """A real Spark standalone cluster on 127.0.0.1 (tests/engine/spark_cluster.py): a master
    and two workers (1 core, 1 GiB each). A process runs one Spark master, so the process's
    earlier Spark session (``local[2]`` of other tests) is stopped first, and the session on
    the cluster is stopped with it at the end. Used by the engine and the dashboard tests."""
    from segcore.engine.sql.engines import stop_spark
    from tests.engine.spark_cluster import SparkCluster

    cluster = SparkCluster(tmp_path_factory.mktemp("spark_cluster"))
    try:
        stop_spark()
        yield cluster.start()
    finally:
        stop_spark()
        cluster.stop()
