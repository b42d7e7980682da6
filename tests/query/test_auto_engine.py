"""The automatic engine choice (segcore/query/auto.py): with no engine given, a store over
``SEGCORE_EVENT_CACHE_MAX_ROWS`` (forced low here) runs the analytics of ``ON_DUCKDB`` on
DuckDB with the answers Polars gives, says so once, and an explicit engine is kept."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from segcore.api import Store
from segcore.cli import main
from segcore.engine.choice import Engine
from segcore.query import auto, sql_runners
from segcore.query.auto import ON_DUCKDB, choose_engine, describe
from tests.conftest import AS_OF

RULE = "did('charged', within => '30 days')"


@pytest.fixture
def big(writable_sample, monkeypatch):
    """The sample store with the cache limit below its event count."""
    monkeypatch.setenv("SEGCORE_EVENT_CACHE_MAX_ROWS", "1000")
    monkeypatch.delenv("SEGCORE_ENGINE", raising=False)
    auto.reset_announcements()
    return writable_sample


@pytest.fixture
def on_duckdb(monkeypatch) -> list[str]:
    """The names of the SQL runners called (each still runs)."""
    calls: list[str] = []
    for name in ("members", "reach", "overlap", "engagement", "events", "retention",
                 "trend", "profile", "lifecycle", "stickiness"):  # ok-loop: a spy per runner
        real = getattr(sql_runners, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(sql_runners, name, spy)
    return calls


def test_the_choice_per_analytic(big, monkeypatch):
    assert big.event_counts()["count"].sum() > 1000
    assert ON_DUCKDB == {"engagement", "lifecycle", "stickiness"}
    for analytic in (*ON_DUCKDB, "members", "reach", "overlap", "events", "retention", "trend",
                     "funnel", "profile", "engagement_trend"):  # ok-loop
        want = "duckdb" if analytic in ON_DUCKDB else "polars"
        assert choose_engine(big, analytic, None).name == want, analytic
        assert choose_engine(big, analytic, "auto").name == want, analytic
        assert choose_engine(big, analytic, "polars") == Engine("polars")  # explicit: kept
        assert choose_engine(big, analytic, Engine("polars")) == Engine("polars")
    assert describe(big, None) == "auto: duckdb for engagement, lifecycle, stickiness; polars for the rest"
    assert describe(big, "polars") == "polars"
    monkeypatch.setattr(auto, "duckdb_installed", lambda: False)  # no DuckDB: Polars
    assert choose_engine(big, "lifecycle", None) == Engine("polars")
    monkeypatch.setenv("SEGCORE_EVENT_CACHE_MAX_ROWS", "100000000")  # fits the cache
    monkeypatch.setattr(auto, "duckdb_installed", lambda: True)
    assert choose_engine(big, "lifecycle", None) == Engine("polars")
    assert describe(big, None) == "auto: polars"


def test_the_count_comes_from_the_statistics_not_a_scan(big, monkeypatch):
    import polars as pl

    want = int(big.scan_events().select(pl.len()).collect().item())
    fresh = Store(big.home)
    monkeypatch.setattr(type(fresh), "scan_events", lambda self: pytest.fail("scanned"))
    assert auto.event_total(fresh) == want


def test_identical_answers_on_the_chosen_engine(big, on_duckdb):
    from segcore.segments import create_segment

    create_segment(big, "Chargers", rule=RULE)
    create_segment(big, "Viewers", rule="did('page_viewed', within => '7 days')")
    polars = Store(big.home)  # the same store, Polars named explicitly

    def answers(store: Store, engine: str | None) -> list:
        return [
            store.count(RULE, as_of=AS_OF, engine=engine),
            store.members(RULE, as_of=AS_OF, engine=engine)["user_id"].to_list(),
            store.reach(RULE, as_of=AS_OF, engine=engine),
            store.overlap(["Chargers", "Viewers"], as_of=AS_OF, engine=engine),
            store.engagement(RULE, as_of=AS_OF, engine=engine),
            store.events(["charged"], "2026-06-01", "2026-06-30", engine=engine).to_dicts(),
            store.retention("signed_up", "page_viewed", "2026-04-01", "2026-06-30",
                            engine=engine)["average"],
            store.trend(RULE, "2026-06-20", "2026-06-30", engine=engine).to_dicts(),
            store.profile(RULE, as_of=AS_OF, engine=engine)["members"],  # means: float sums
            store.lifecycle("charged", "2026-04-01", "2026-06-30", engine=engine).to_dicts(),
            store.stickiness("charged", "2026-04-01", "2026-06-30", engine=engine).to_dicts(),
        ]

    want = answers(polars, "polars")
    assert on_duckdb == []
    got = answers(big, None)
    assert got == want
    assert sorted(set(on_duckdb)) == ["engagement", "lifecycle", "stickiness"]  # the rest: Polars


def test_said_once_per_process(big, caplog):
    with caplog.at_level(logging.WARNING, logger="segcore.query.auto"):
        big.count(RULE, as_of=AS_OF)
        big.count(RULE, as_of=AS_OF)
        big.reach(RULE, as_of=AS_OF)
    said = [r.getMessage() for r in caplog.records if r.name == "segcore.query.auto"]
    assert len(said) == 1
    assert "events exceed SEGCORE_EVENT_CACHE_MAX_ROWS (1,000)" in said[0]
    assert "engagement, lifecycle, stickiness run on DuckDB" in said[0]
    assert "--engine polars keeps Polars" in said[0]


def test_an_explicit_engine_is_kept_and_says_nothing(big, caplog, on_duckdb):
    with caplog.at_level(logging.WARNING, logger="segcore.query.auto"):
        n = big.count(RULE, as_of=AS_OF, engine="polars")
    assert on_duckdb == [] and not [r for r in caplog.records if r.name == "segcore.query.auto"]
    assert n == big.count(RULE, as_of=AS_OF)


def test_the_cli_chooses_and_says_so(big, capsys, monkeypatch):
    home = str(big.home)
    assert main(["eval", "--home", home, "--rule", RULE, "--as-of", AS_OF, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["engine"] == "polars"  # members: Polars
    life = ["lifecycle", "--home", home, "--event", "charged", "--from", "2026-04-01",
            "--to", "2026-06-30", "--json"]
    assert main(life) == 0
    chosen = json.loads(capsys.readouterr().out)
    assert main([*life, "--engine", "polars"]) == 0
    assert json.loads(capsys.readouterr().out) == chosen
    monkeypatch.setenv("SEGCORE_ENGINE", "polars")  # the environment names an engine too
    assert main(["eval", "--home", home, "--rule", RULE, "--as-of", AS_OF, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["engine"] == "polars"


def test_a_new_cli_process_says_so_on_stderr(big):
    argv = [sys.executable, "-m", "segcore", "lifecycle", "--home", str(big.home),
            "--event", "charged", "--from", "2026-04-01", "--to", "2026-06-30", "--json"]
    chosen = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert chosen.returncode == 0, chosen.stderr
    assert "events exceed SEGCORE_EVENT_CACHE_MAX_ROWS (1,000)" in chosen.stderr
    assert "engagement, lifecycle, stickiness run on DuckDB" in chosen.stderr
    kept = subprocess.run([*argv, "--engine", "polars"], capture_output=True, text=True,
                          timeout=300)
    assert kept.returncode == 0, kept.stderr
    assert "run on DuckDB" not in kept.stderr
    assert json.loads(chosen.stdout) == json.loads(kept.stdout)  # same answer
