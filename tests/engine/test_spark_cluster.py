"""A real distributed run: the compiled SQL on a Spark standalone cluster (one master, two
workers on 127.0.0.1, started and stopped by the ``spark_cluster`` fixture) gives Polars'
members. One test, so one driver session serves every check."""

from __future__ import annotations

from segcore.engine.polars.evaluate import members
from segcore.engine.sql.engines import run_members, spark_session
from tests.conftest import AS_OF

# lists and windowed counts, a sequence, a negation over the whole universe
RULES = [
    "has(tags, 'VIP') AND event_count('charged', within => '30 days') >= 1",
    "did_then_not('added_to_cart', 'charged', gap => '1 hour', within => '7 days')",
    "NOT did('page_viewed', within => '7 days')",
]


def test_members_on_a_standalone_cluster(spark_cluster, sample_store, monkeypatch):
    url = spark_cluster.url
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
