"""CLI: eval, segment create/edit/clone/delete/restore/history, user."""

from __future__ import annotations

import json
import subprocess
import sys

import polars as pl
import pytest

from segcore.cli import main

AS_OF = "2026-06-30"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def home(writable_sample):
    return str(writable_sample.home)


def test_eval_json_count_matches_api(capsys, home, writable_sample):
    rule = "did('charged', within => '30 days') AND country = 'US'"
    code, out, _ = run(capsys, "eval", "--home", home, "--rule", rule, "--as-of", AS_OF, "--json")
    payload = json.loads(out)
    assert code == 0
    assert payload["count"] == writable_sample.count(rule, as_of=AS_OF) > 0
    assert payload["as_of"] == "2026-07-01T00:00:00Z"
    assert payload["engine"] == "polars"


def test_eval_bad_rule_is_one_line_exit_2(capsys, home):
    code, out, err = run(capsys, "eval", "--home", home, "--rule", "did('chargd')")
    assert code == 2 and out == ""
    assert err == ("error: unknown event 'chargd' (did you mean 'charged'?) "
                   "(line 1, column 5)\n")


def test_missing_home_is_an_error_not_an_empty_store(capsys, tmp_path):
    missing = tmp_path / "typo"
    for argv in (["eval", "--rule", "TRUE"], ["segment", "list"], ["user", "u1"]):
        code, out, err = run(capsys, *argv, "--home", str(missing))
        assert code == 2 and out == "", argv
        assert err.startswith(f"error: no store at {missing}: the folder does not exist"), err
    assert not missing.exists()  # nothing was created on the way
    # the commands that create a store still can
    assert run(capsys, "sample", "--home", str(missing), "--users", "50", "--days", "3")[0] == 0
    code, out, _ = run(capsys, "eval", "--rule", "TRUE", "--home", str(missing), "--json")
    assert code == 0 and json.loads(out)["count"] == 50


def test_eval_out_csv_and_parquet(capsys, home, writable_sample, tmp_path):
    rule = "country = 'DE'"
    expected = writable_sample.members(rule, as_of=AS_OF)["user_id"].to_list()
    for name in ("m.csv", "m.parquet"):
        out_file = tmp_path / name
        code, _, _ = run(capsys, "eval", "--home", home, "--rule", rule, "--as-of", AS_OF,
                         "--out", str(out_file))
        assert code == 0
        df = pl.read_csv(out_file) if name.endswith(".csv") else pl.read_parquet(out_file)
        assert df["user_id"].to_list() == expected
        assert set(df["country"].to_list()) == {"DE"}
    code, _, err = run(capsys, "eval", "--home", home, "--rule", rule, "--out",
                       str(tmp_path / "m.txt"))
    assert code == 2 and "--out must end in .csv or .parquet" in err


def test_segment_lifecycle(capsys, home, writable_sample):
    rule = "event_count('charged') >= 3"
    code, out, _ = run(capsys, "segment", "create", "Frequent buyers", "--home", home,
                       "--rule", rule, "--description", "3+ purchases")
    assert code == 0 and "version 1" in out
    code, out, _ = run(capsys, "segment", "show", "Frequent buyers", "--home", home,
                       "--as-of", AS_OF, "--json")
    shown = json.loads(out)
    assert shown["members"] == writable_sample.count(rule, as_of=AS_OF) > 0
    assert shown["rule_text"] == rule and shown["version"] == 1

    code, out, err = run(capsys, "segment", "create", "frequent BUYERS", "--home", home,
                         "--rule", rule)
    assert code == 2 and "already exists" in err

    code, out, _ = run(capsys, "segment", "edit", "Frequent buyers", "--home", home,
                       "--rule", "event_count('charged') >= 4", "--expect-version", "1")
    assert code == 0 and "version 2" in out
    code, _, err = run(capsys, "segment", "edit", "Frequent buyers", "--home", home,
                       "--description", "stale", "--expect-version", "1")
    assert code == 2
    assert err.strip() == ("error: segment 'Frequent buyers' was changed by someone else "
                           "(you edited version 1, it is now version 2); reload and try again")

    code, out, _ = run(capsys, "segment", "clone", "Frequent buyers", "FB copy", "--home", home)
    assert code == 0
    code, out, _ = run(capsys, "segment", "list", "--home", home, "--json", "--search", "copy")
    assert [s["name"] for s in json.loads(out)["segments"]] == ["FB copy"]

    assert run(capsys, "segment", "delete", "FB copy", "--home", home)[0] == 0
    code, _, err = run(capsys, "eval", "--home", home, "--segment", "FB copy")
    assert code == 2 and "FB copy" in err
    assert run(capsys, "segment", "restore", "FB copy", "--home", home)[0] == 0
    code, out, _ = run(capsys, "eval", "--home", home, "--segment", "FB copy", "--as-of", AS_OF,
                       "--json")
    assert json.loads(out)["count"] == writable_sample.count("event_count('charged') >= 4",
                                                             as_of=AS_OF)

    code, out, _ = run(capsys, "segment", "history", "Frequent buyers", "--home", home, "--json")
    actions = [h["action"] for h in json.loads(out)["history"]]
    assert actions[:2] == ["create", "edit"]


def test_segment_cycle_refused(capsys, home):
    assert run(capsys, "segment", "create", "A", "--home", home, "--rule", "country = 'US'")[0] == 0
    assert run(capsys, "segment", "create", "B", "--home", home, "--rule",
               "in_segment('A') AND age > 30")[0] == 0
    code, _, err = run(capsys, "segment", "edit", "A", "--home", home, "--rule", "in_segment('B')")
    assert code == 2 and err.strip() == "error: segment cycle: A -> B -> A"


def test_static_segment_from_csv(capsys, home, writable_sample, tmp_path):
    ids = tmp_path / "ids.csv"
    ids.write_text("user_id\nu000001\nu000002\nu000002\nnobody\n")
    code, out, _ = run(capsys, "segment", "create", "List", "--home", home, "--ids-file",
                       str(ids), "--json")
    report = json.loads(out)["upload"]
    assert code == 0
    assert (report["rows"], report["members"], report["duplicates"], report["unknown"]) == (4, 3, 1, 1)
    members = writable_sample.members(segment="List", as_of=AS_OF)["user_id"].to_list()
    assert members == ["u000001", "u000002"]  # 'nobody' is not in the universe


def test_user_lookup(capsys, home, writable_sample):
    run(capsys, "segment", "create", "US", "--home", home, "--rule", "country = 'US'")
    uid = writable_sample.members("country = 'US'", as_of=AS_OF)["user_id"][0]
    code, out, _ = run(capsys, "user", uid, "--home", home, "--as-of", AS_OF, "--json")
    info = json.loads(out)
    assert code == 0 and info["attributes"]["country"] == "US"
    assert info["segments"] == ["US"]
    assert info["events"] == writable_sample.scan_events().filter(
        (pl.col("user_id") == uid) & (pl.col("ts") < pl.lit("2026-07-01").str.to_datetime(
            time_zone="UTC"))).collect().height
    code, _, err = run(capsys, "user", "nobody", "--home", home)
    assert code == 2 and err.strip() == "error: unknown user 'nobody'"


def test_subprocess_error_has_no_traceback(home):
    proc = subprocess.run([sys.executable, "-m", "segcore", "eval", "--home", home, "--rule",
                           "age > 'abc'"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == ("error: type mismatch: cannot compare age (an integer) "
                                   "with 'abc' (a text) (line 1, column 7)")


def test_rename_keeps_referrers_and_delete_names_them(capsys, home, writable_sample):
    run(capsys, "segment", "create", "B", "--home", home, "--rule", "country = 'US'")
    run(capsys, "segment", "create", "C", "--home", home, "--rule", "in_segment('B') AND age > 30")
    before = writable_sample.count(segment="C", as_of=AS_OF)
    code, out, _ = run(capsys, "segment", "edit", "B", "--rename", "US", "--home", home)
    assert code == 0 and out == "saved 'US' (version 2)\n"
    code, out, _ = run(capsys, "segment", "show", "C", "--home", home, "--as-of", AS_OF, "--json")
    shown = json.loads(out)
    assert (shown["rule_text"], shown["version"], shown["members"]) == (
        "in_segment('US') AND age > 30", 2, before)
    code, out, err = run(capsys, "segment", "delete", "US", "--home", home)
    assert code == 2 and out == ""
    assert err == ("error: cannot delete segment 'US': segment 'C' refers to it with "
                   "in_segment('US'); change or delete it first\n")


def test_segment_list_sizes_survives_one_broken_segment(capsys, home, writable_sample):
    import sqlite3

    run(capsys, "segment", "create", "A", "--home", home, "--rule", "country = 'US'")
    run(capsys, "segment", "create", "B", "--home", home, "--rule", "age > 30")
    run(capsys, "segment", "create", "C", "--home", home, "--rule", "in_segment('B')")
    # damage C behind the catalog's back (as an older segcore could leave it)
    con = sqlite3.connect(writable_sample.catalog_path)
    con.execute("""UPDATE segments SET rule_json = '{"version":1,"tree":{"kind":"in_segment",
                   "name":"Gone"}}' WHERE name = 'C'""")
    con.commit()
    con.close()
    code, out, err = run(capsys, "segment", "list", "--sizes", "--as-of", AS_OF, "--home", home,
                         "--json")
    assert code == 0 and err == ""
    rows = {r["name"]: (r["members"], r["error"]) for r in json.loads(out)["segments"]}
    assert rows == {
        "A": (writable_sample.count("country = 'US'", as_of=AS_OF), None),
        "B": (writable_sample.count("age > 30", as_of=AS_OF), None),
        "C": (None, "no segment named 'Gone'"),
    }
    code, out, _ = run(capsys, "segment", "list", "--sizes", "--as-of", AS_OF, "--home", home)
    assert code == 0 and "no segment named 'Gone'" in out and "| A " in out
    # the damage is not a reason to refuse unrelated changes; repairing C is allowed
    assert run(capsys, "segment", "edit", "A", "--home", home, "--description", "x")[0] == 0
    assert run(capsys, "segment", "edit", "C", "--home", home, "--rule", "in_segment('A')")[0] == 0


def test_static_segment_add_remove_freeze_revert(capsys, home, writable_sample, tmp_path):
    store = writable_sample
    known = store.scan_users().select("user_id").head(4).collect()["user_id"].to_list()
    code, _, _ = run(capsys, "segment", "create", "Picked", "--home", home, "--ids-file",
                     str(_ids_file(tmp_path / "first.csv", known[:2])))
    assert code == 0
    code, out, err = run(capsys, "segment", "add", "Picked", known[2], known[0], "ghost",
                         known[2], "--home", home)
    assert (code, err) == (0, "")
    assert out == (f"added 2 ids to 'Picked' (version 2): 4 members stored\n"
                   f"  1 id already a member (left alone), e.g.: {known[0]}\n"
                   "  1 id not found in the store (kept: they may arrive with a later import)"
                   ", e.g.: ghost\n"
                   "  1 id repeated (counted once)\n"
                   "  undo: segcore segment revert 'Picked' 1\n")
    assert store.catalog.members("Picked") == sorted([*known[:3], "ghost"])
    ids_file = _ids_file(tmp_path / "drop.csv", [known[1], "nobody"])
    code, out, _ = run(capsys, "segment", "remove", "Picked", "ghost", "--ids-file",
                       str(ids_file), "--expect-version", "2", "--home", home, "--json")
    report = json.loads(out)
    assert code == 0 and (report["removed"], report["not_members"], report["version"]) == (
        2, 1, 3)
    assert report["examples"] == {"not_members": ["nobody"]}
    assert store.catalog.members("Picked") == sorted([known[0], known[2]])
    # a stale version is refused, nothing changes
    code, out, err = run(capsys, "segment", "add", "Picked", known[3], "--expect-version", "2",
                         "--home", home)
    assert code == 2 and out == "" and err == (
        "error: segment 'Picked' was changed by someone else (you edited version 2, it is now "
        "version 3); reload and try again\n")
    assert store.catalog.members("Picked") == sorted([known[0], known[2]])
    for argv, message in (
        (["add", "Picked"], "give the user ids to add or remove (or an ids file)"),
        (["add", "Nope", "x"], "no segment named 'Nope'"),
        (["remove", "Picked", "--ids-file", str(tmp_path / "missing.csv")],
         f"ids file {str(tmp_path / 'missing.csv')!r} does not exist"),
    ):
        code, out, err = run(capsys, "segment", *argv, "--home", home)
        assert code == 2 and err.startswith(f"error: {message}"), err
    # undo the removal: back to version 2
    code, out, _ = run(capsys, "segment", "revert", "Picked", "2", "--home", home)
    assert code == 0 and out == "'Picked' is back to version 2 (now version 4, 4 members stored)\n"
    assert store.catalog.members("Picked") == sorted([*known[:3], "ghost"])
    # freeze a dynamic segment at an instant: a fixed list that no longer follows the rule
    run(capsys, "segment", "create", "US", "--home", home, "--rule", "country = 'US'")
    code, out, _ = run(capsys, "segment", "freeze", "US", "US in June", "--as-of", AS_OF,
                       "--home", home, "--json")
    frozen = json.loads(out)
    us = sorted(store.members(segment="US", as_of=AS_OF)["user_id"].to_list())
    assert (frozen["kind"], frozen["member_count"]) == ("static", len(us)) and us
    assert frozen["description"] == "members of 'US' (version 1) as of 2026-07-01T00:00:00Z"
    assert store.catalog.members("US in June") == us
    assert store.catalog.history("US in June")[0]["note"] == (
        "frozen from 'US' version 1 as of 2026-07-01T00:00:00Z")
    code, _, err = run(capsys, "segment", "add", "US", known[0], "--home", home)
    assert code == 2 and err == "error: segment 'US' is dynamic: its rule decides its members\n"
    run(capsys, "segment", "edit", "US", "--home", home, "--rule", "country = 'FR'")
    assert store.catalog.members("US in June") == us


def _ids_file(path, ids):
    path.write_text("user_id\n" + "\n".join(ids) + "\n")
    return path
