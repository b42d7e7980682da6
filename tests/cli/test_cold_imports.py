"""A first answer in a new process imports only what it uses (issue #16): a rule count
(``Store.count`` and ``segcore eval``), a trend and a funnel give the same answers as in
this process without loading the catalog (sqlite3), the query classes they do not use,
the CLI's other commands (numpy, ingest, the service) or other engines. The store has no
saved segments (with a catalog, rules are checked against its segment names: it is read).
The saved-segment count (no rule parser) is tests/engine/test_evaluate.py's."""

from __future__ import annotations

import argparse
import shutil

import pytest

from segcore import Store
from segcore.analytics.funnel import funnel
from segcore.analytics.trend import trend
from segcore.cli import COMMAND_MODULES, build_parser
from tests.conftest import AS_OF, OTHER_ENGINES_AND_UI, fresh_process

RULE = ("country = 'US' AND did('charged', within => '30 days') AND "
        "event_count('page_viewed', within => '7 days') >= 3")
STEPS = ["product_viewed", "added_to_cart", "charged"]

# what none of these answers needs
UNUSED = OTHER_ENGINES_AND_UI | {
    "sqlite3", "tomllib", "segcore.store.catalog", "segcore.segments",
    "segcore.query.queries", "segcore.query.sql_runners", "segcore.engine.sql",
    "segcore.sample", "segcore.ingest", "segcore.service", "segcore.store.tokens",
}


@pytest.fixture(scope="module")
def sample_store(sample_home, tmp_path_factory) -> Store:
    """The sample store's events and users, without a catalog."""
    home = tmp_path_factory.mktemp("cold_store")
    for table in ("events", "users"):
        shutil.copytree(sample_home / table, home / table)
    return Store(home)


def test_a_rule_count(sample_store):
    code = ("from segcore import Store\n"
            "result = Store(sys.argv[1]).count(sys.argv[2], as_of=sys.argv[3])")
    n, imported = fresh_process(code, str(sample_store.home), RULE, AS_OF)
    assert n == sample_store.count(RULE, as_of=AS_OF) > 0
    assert not imported & (UNUSED | {"numpy", "segcore.analytics"})
    assert "segcore.query.members" in imported  # the one query class module it uses


def test_segcore_eval(sample_store):
    code = ("import contextlib, io\n"
            "from segcore.cli import main\n"
            "out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out):\n"
            "    main(['eval', '--home', sys.argv[1], '--rule', sys.argv[2],"
            " '--as-of', sys.argv[3], '--json'])\n"
            "result = json.loads(out.getvalue())['count']")
    n, imported = fresh_process(code, str(sample_store.home), RULE, AS_OF)
    assert n == sample_store.count(RULE, as_of=AS_OF)
    other_commands = {"segcore.cli.data", "segcore.cli.ingest", "segcore.cli.service",
                      "segcore.cli.retention", "segcore.cli.event_analytics"}
    assert not imported & (UNUSED | other_commands | {"numpy", "argcomplete"})


def test_a_trend(sample_store):
    code = ("from segcore import Store\n"
            "from segcore.analytics.trend import trend\n"
            "result = trend(Store(sys.argv[1]), sys.argv[2], start='2026-06-01',"
            " end=sys.argv[3])['members'].to_list()")
    members, imported = fresh_process(code, str(sample_store.home), RULE, AS_OF)
    here = trend(sample_store, RULE, start="2026-06-01", end=AS_OF)["members"].to_list()
    assert members == here and len(members) == 30
    assert not imported & (UNUSED | {"segcore.query.runners"})


def test_a_funnel(sample_store):
    code = ("from segcore import Store\n"
            "from segcore.analytics.funnel import funnel\n"
            "res = funnel(Store(sys.argv[1]), sys.argv[2].split(','), window='1d',"
            " start='2026-06-01', end=sys.argv[3])\n"
            "result = [s['users'] for s in res['steps']]")
    users, imported = fresh_process(code, str(sample_store.home), ",".join(STEPS), AS_OF)
    res = funnel(sample_store, STEPS, window="1d", start="2026-06-01", end=AS_OF)
    assert users == [s["users"] for s in res["steps"]] and users[0] > 0
    # no step has a where filter: no rule is parsed or evaluated
    rules = {"sqlglot", "segcore.lang.parser", "segcore.lang.tree", "segcore.engine.rules"}
    assert not imported & (UNUSED | {"segcore.query.runners"} | rules)


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def test_the_cli_knows_the_commands_of_each_module():
    """``main`` registers only the module of the command it runs: ``COMMAND_MODULES`` lists
    exactly the commands each module registers, and every command is in one module."""
    everything = _commands(build_parser())
    assert everything == {c for cs in COMMAND_MODULES.values() for c in cs}
    for commands in COMMAND_MODULES.values():
        for command in commands:
            assert _commands(build_parser(command)) == set(commands)
