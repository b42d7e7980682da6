"""A real distributed run: the compiled SQL on a Spark standalone cluster (one master, two
workers on 127.0.0.1, started and stopped by the ``spark_cluster`` fixture) gives Polars'
answers: members of rules, and a members, a trend and a reach case of the shared engine suite
(tests/engine/test_engine_suite.py). One test, so one driver session serves every check."""

from __future__ import annotations

from segcore.engine.choice import Engine
from segcore.engine.polars.evaluate import members
from segcore.engine.sql.engines import run_members, spark_session
from tests.conftest import AS_OF
from tests.engine.test_engine_suite import build_sample, run_case, suite_cases

SUITE_CASES = ("members", "trend-day", "reach")  # of the suite's representative cases

# a sequence, a negation over the whole universe
RULES = [
    "did_then_not('added_to_cart', 'charged', gap => '1 hour', within => '7 days')",
    "NOT did('page_viewed', within => '7 days')",
]


def test_a_standalone_cluster_gives_polars_answers(spark_cluster, sample_store, tmp_path,
                                                   monkeypatch):
    url = spark_cluster.url
    stores = {"sample": build_sample(tmp_path / "suite")}
    cases = [c for c in suite_cases() if c.id in SUITE_CASES]
    assert [c.id for c in cases] == list(SUITE_CASES)
    assert all(c.representative and c.store == "sample" for c in cases)
    for case in cases:  # ok-loop: one check per suite case
        assert run_case(case, stores, Engine("spark", url)) == run_case(case, stores, "polars"), (
            case.id)
    for rule in RULES:  # ok-loop: one check per rule
        expected = members(sample_store, rule, as_of=AS_OF)["user_id"].to_list()
        got = run_members(sample_store, rule, as_of=AS_OF, engine="spark", spark_master=url)
        assert got["user_id"].to_list() == expected, rule
        assert expected, rule  # every rule has members: no vacuous agreement
    # the queries ran on the cluster: the driver's master is the cluster and the master
    # lists the application with the cores of both workers
    assert spark_session(url).sparkContext.master == url
    apps = spark_cluster.state()["activeapps"]
    assert [a["name"] for a in apps] == ["segcore"]
    assert apps[0]["cores"] == 2
    # the master URL from the environment (SEGCORE_SPARK_MASTER) reaches the same session
    monkeypatch.setenv("SEGCORE_SPARK_MASTER", url)
    got = run_members(sample_store, RULES[0], as_of=AS_OF, engine="spark")
    assert got["user_id"].to_list() == members(sample_store, RULES[0], as_of=AS_OF)[
        "user_id"].to_list()
    assert spark_session().sparkContext.master == url
