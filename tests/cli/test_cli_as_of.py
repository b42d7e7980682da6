"""The CLI's default instant (issue 19, item 4) is the dashboard's: segcore's
``default_as_of`` rule, printed on stderr and described in ``--help``."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from segcore import Store
from segcore.cli import main
from segcore.sample import generate
from tests.conftest import AS_OF


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_store_ending_before_today_defaults_to_its_last_event_day(capsys, sample_store):
    home = str(sample_store.home)
    rule = "did('charged', within => '30 days')"
    code, out, err = run(capsys, "eval", "--rule", rule, "--home", home, "--json")
    assert code == 0
    assert json.loads(out)["as_of"] == "2026-07-01T00:00:00Z"
    assert json.loads(out)["count"] == sample_store.count(rule, as_of=AS_OF)
    assert err == ("as of 2026-07-01T00:00:00Z (the end of the last event day: the data "
                   "ends before today; UTC); --as-of to choose\n")
    code, out, err = run(capsys, "eval", "--rule", rule, "--home", home, "--as-of", AS_OF)
    assert code == 0 and err == ""  # an explicit instant: no note


def test_a_live_store_defaults_to_now(capsys, tmp_path):
    today = dt.datetime.now(dt.timezone.utc).date()
    generate(tmp_path, users=100, days=5, end=today, seed=3)
    store = Store(tmp_path)
    for _ in range(2):  # once more if a minute boundary fell between the two clocks
        code, out, err = run(capsys, "user", "u000001", "--home", str(tmp_path), "--json")
        want = store.default_as_of()
        if json.loads(out)["as_of"] == want.text():
            break
    assert code == 0 and not want.last_event_day
    assert json.loads(out)["as_of"] == want.text()
    assert err.startswith(f"as of {want.text()} (now; UTC)")


def test_help_states_the_rule(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert ("default: now (to the minute), except when the store's last event is on an "
            "earlier day than today in the report zone: then the end of that day") in text
