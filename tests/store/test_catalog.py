"""The SQLite catalog: segments, versions and conflicts, static members, channels, funnels."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import polars as pl
import pytest

import segcore.store.catalog as catalog_mod
import segcore.store.catalog.connection as connection_mod
import segcore.store.catalog.schema as schema_mod
from segcore import Store
from segcore.errors import CatalogError, ConflictError, NotFoundError, RuleError, StoreError
from segcore.store.catalog import DEFAULT_CHANNELS, Catalog, parse_ids_csv, parse_ids_text

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cat(tmp_path: Path) -> Catalog:
    return Catalog(tmp_path / "home" / "catalog.sqlite")


def run_py(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


# ---------------------------------------------------------------------- schema
def test_schema_created_on_first_use_in_wal_mode(cat: Catalog) -> None:
    assert not cat.path.exists()
    assert cat.list() == []
    assert cat.path.exists()
    assert cat.schema_version() == catalog_mod.SCHEMA_VERSION == 3
    con = sqlite3.connect(cat.path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    con.close()
    assert {"segments", "segment_versions", "segment_members", "segment_member_changes",
            "channels", "funnels"} <= tables


def test_store_catalog_is_home_catalog(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.catalog.create("a", rule_text="age > 30")
    assert Catalog(tmp_path / "catalog.sqlite").get("a").rule_text == "age > 30"


# ---------------------------------------------------------------------- segments
def test_create_get_list_search(cat: Catalog) -> None:
    s = cat.create(
        "High Value",
        rule_text="sum('purchase', 'amount') > 1000",
        rule_json='{"v": 1}',
        description="Big spenders",
    )
    assert (s.name, s.kind, s.version, s.deleted_at, s.member_count) == (
        "High Value",
        "dynamic",
        1,
        None,
        None,
    )
    assert s.created_at == s.updated_at and s.created_at.endswith("Z")
    cat.create("hot leads", rule_text="did('pricing_view') >= 3", description="sales team")
    cat.create("Abandoned carts", rule_text="did('add_to_cart')")
    got = cat.get("high value")  # case-insensitive
    assert got == s
    assert got.rule_json == '{"v": 1}'
    assert [x.name for x in cat.list()] == ["Abandoned carts", "High Value", "hot leads"]
    assert [x.name for x in cat.list("HOT")] == ["hot leads"]
    assert [x.name for x in cat.list("spender")] == ["High Value"]  # description
    assert [x.name for x in cat.list("SALES")] == ["hot leads"]
    assert cat.list("zzz") == []
    assert cat.exists("HOT LEADS") and not cat.exists("cold leads")


def test_duplicate_name_error_text(cat: Catalog) -> None:
    cat.create("VIP", rule_text="age > 1")
    with pytest.raises(CatalogError, match=r"^a segment named 'VIP' already exists$"):
        cat.create("vip", rule_text="age > 2")
    with pytest.raises(CatalogError, match="a segment named 'VIP' already exists"):
        cat.create("  VIP ", rule_text="age > 2")
    assert len(cat.list()) == 1


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "cannot be empty"),
        ("   ", "cannot be empty"),
        ("x" * 201, "at most 200 characters"),
        ("bad\nname", "control characters"),
        ("tab\tname", "control characters"),
        (42, "must be text"),
    ],
)
def test_bad_names(cat: Catalog, name, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        cat.create(name, rule_text="age > 1")
    assert cat.list() == []


def test_name_of_200_characters_is_fine(cat: Catalog) -> None:
    assert cat.create("x" * 200, rule_text="age > 1").name == "x" * 200


def test_kind_checks(cat: Catalog) -> None:
    with pytest.raises(CatalogError, match="dynamic segment 'a' needs a rule"):
        cat.create("a")
    with pytest.raises(CatalogError, match="static segment 'b' has members, not a rule"):
        cat.create("b", kind="static", rule_text="age > 1")
    with pytest.raises(CatalogError, match="'dynamic' or 'static'"):
        cat.create("c", kind="smart", rule_text="age > 1")
    cat.create("d", rule_text="age > 1")
    with pytest.raises(CatalogError, match="segment 'd' is dynamic"):
        cat.add_members("d", ["1"])


def test_get_unknown_suggests_close_names(cat: Catalog) -> None:
    cat.create("frequent buyers", rule_text="did('purchase') >= 5")
    cat.create("frequent visitors", rule_text="did('page_view') >= 5")
    with pytest.raises(NotFoundError) as exc:
        cat.get("frequent buyer")
    assert str(exc.value) == (
        "no segment named 'frequent buyer'; did you mean 'frequent buyers' or 'frequent visitors'?"
    )
    with pytest.raises(NotFoundError, match=r"^no segment named 'qqq'$"):
        cat.get("qqq")


def test_edit_bumps_version_and_keeps_fields(cat: Catalog) -> None:
    cat.create("a", rule_text="age > 1", rule_json="{1}", description="first")
    s = cat.edit("a", rule_text="age > 2", rule_json="{2}")
    assert (s.version, s.rule_text, s.rule_json, s.description) == (2, "age > 2", "{2}", "first")
    assert s.updated_at > s.created_at
    s = cat.edit("A", description="second", expect_version=2)
    assert (s.version, s.rule_text, s.description) == (3, "age > 2", "second")
    s = cat.edit("a", new_name="b")
    assert (s.name, s.version) == ("b", 4)
    with pytest.raises(NotFoundError):
        cat.get("a")
    assert cat.edit("b") == s  # nothing to change: no new version


def test_rename_to_taken_name(cat: Catalog) -> None:
    cat.create("a", rule_text="age > 1")
    cat.create("b", rule_text="age > 2")
    with pytest.raises(CatalogError, match="a segment named 'b' already exists"):
        cat.edit("a", new_name="B")
    assert cat.get("a").version == 1
    assert cat.rename("a", "A").name == "A"  # a change of case only is allowed


def test_stale_edit_is_a_conflict(cat: Catalog) -> None:
    cat.create("VIP", rule_text="age > 1")
    cat.edit("vip", rule_text="age > 2", expect_version=1)
    cat.edit("vip", rule_text="age > 3", expect_version=2)
    cat.edit("vip", rule_text="age > 4", expect_version=3)
    with pytest.raises(ConflictError) as exc:
        cat.edit("vip", rule_text="age > 99", expect_version=3)
    assert str(exc.value) == (
        "segment 'VIP' was changed by someone else (you edited version 3, it is now "
        "version 4); reload and try again"
    )
    s = cat.get("vip")
    assert (s.version, s.rule_text) == (4, "age > 4")


def test_two_processes_racing_with_the_same_version(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    cat = Catalog(path)
    n = 15
    for i in range(n):
        cat.create(f"s{i}", rule_text="age > 1")
    go = tmp_path / "go"
    code = """
        import sys, time
        from pathlib import Path
        from segcore.store.catalog import Catalog
        from segcore.errors import ConflictError
        cat = Catalog(sys.argv[1]); who = sys.argv[2]; go = Path(sys.argv[3])
        cat.list()  # open + schema check before the start line
        while not go.exists():
            time.sleep(0.002)
        won = 0
        for i in range(int(sys.argv[4])):
            try:
                cat.edit(f"s{i}", description=who, expect_version=1)
                won += 1
            except ConflictError as e:
                assert "you edited version 1, it is now version 2" in str(e), e
        print(won)
    """
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), str(path), who, str(go), str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for who in ("p1", "p2")
    ]
    go.touch()
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    wins = [int(o[0].strip()) for o in outs]
    assert sum(wins) == n  # exactly one winner per segment
    for i in range(n):
        s = cat.get(f"s{i}")
        assert s.version == 2 and s.description in ("p1", "p2")
        assert [h["action"] for h in cat.history(f"s{i}")] == ["create", "edit"]
    assert sum(s.description == "p1" for s in cat.list()) == wins[0]


def test_threads_share_a_catalog_object(cat: Catalog) -> None:
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(10):
                cat.create(f"t{t}-{i}", rule_text="age > 1")
                cat.edit(f"t{t}-{i}", description="x")
                cat.list()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    segs = cat.list()
    assert len(segs) == 60 and {s.version for s in segs} == {2}


def test_clone_dynamic_and_static(cat: Catalog) -> None:
    cat.create("a", rule_text="age > 1", rule_json="{}", description="d")
    cat.edit("a", rule_text="age > 2")
    c = cat.clone("a", "a copy")
    assert (c.name, c.rule_text, c.rule_json, c.description, c.version) == (
        "a copy",
        "age > 2",
        "{}",
        "d",
        1,
    )
    assert cat.history("a copy")[0]["note"] == "cloned from 'a' version 2"
    cat.create("s", kind="static", members=["3", "1", "2"])
    c2 = cat.clone("s", "s2")
    assert (c2.kind, c2.member_count) == ("static", 3)
    assert cat.members("s2") == ["1", "2", "3"]
    cat.remove_members("s2", ["1"])
    assert cat.members("s") == ["1", "2", "3"]  # the copy is independent
    with pytest.raises(CatalogError, match="a segment named 'a' already exists"):
        cat.clone("s", "A")
    with pytest.raises(NotFoundError):
        cat.clone("nope", "x")


def test_delete_restore_and_name_reuse(cat: Catalog) -> None:
    cat.create("old", rule_text="age > 1")
    d = cat.delete("old")
    assert d.deleted_at is not None and d.version == 2
    assert cat.list() == []
    assert [s.name for s in cat.list(include_deleted=True)] == ["old"]
    with pytest.raises(NotFoundError, match="segment 'old' was deleted at .*; restore it"):
        cat.get("old")
    r = cat.restore("OLD")
    assert (r.name, r.deleted_at, r.version, r.rule_text) == ("old", None, 3, "age > 1")
    # a deleted name can be reused; restoring the old one then needs a new name
    cat.delete("old")
    cat.create("old", rule_text="age > 50")
    with pytest.raises(CatalogError) as exc:
        cat.restore("old")
    assert str(exc.value) == (
        "cannot restore segment 'old': a segment named 'old' already exists; "
        "restore it under a new name"
    )
    r = cat.restore("old", new_name="old (restored)")
    assert (r.name, r.rule_text, r.version) == ("old (restored)", "age > 1", 5)
    assert cat.get("old").rule_text == "age > 50"
    with pytest.raises(NotFoundError, match="no deleted segment named 'old'"):
        cat.restore("old")
    cat.delete("old")
    assert cat.purge("old") == 1
    assert [s.name for s in cat.list(include_deleted=True)] == ["old (restored)"]


def test_history_in_order(cat: Catalog) -> None:
    cat.create("h", rule_text="age > 1", rule_json="j1", description="d1")
    cat.edit("h", rule_text="age > 2", rule_json="j2")
    cat.edit("h", new_name="h2")
    cat.edit("h2", description="d2", new_name="h3")
    cat.delete("h3")
    cat.restore("h3")
    hist = cat.history("h3")
    assert [
        (h["version"], h["action"], h["name"], h["rule_text"], h["description"]) for h in hist
    ] == [
        (1, "create", "h", "age > 1", "d1"),
        (2, "edit", "h", "age > 2", "d1"),
        (3, "rename", "h2", "age > 2", "d1"),
        (4, "edit", "h3", "age > 2", "d2"),
        (5, "delete", "h3", "age > 2", "d2"),
        (6, "restore", "h3", "age > 2", "d2"),
    ]
    assert hist[1]["rule_json"] == "j2"
    assert hist[2]["note"] == "renamed from 'h'"
    assert [h["saved_at"] for h in hist] == sorted(h["saved_at"] for h in hist)
    cat.delete("h3")
    assert len(cat.history("h3")) == 7  # the history of a deleted segment is kept
    with pytest.raises(NotFoundError):
        cat.history("h3", include_deleted=False)


# ---------------------------------------------------------------------- static members
def test_static_members_ops(cat: Catalog) -> None:
    s = cat.create("st", kind="static", members=["007", " 002", "007", "", None, 3])
    assert (s.kind, s.member_count, s.version) == ("static", 3, 1)
    assert cat.members("st") == ["002", "007", "3"]
    s = cat.add_members("st", ["001", "002"])
    assert (s.version, s.member_count) == (2, 4)
    s = cat.remove_members("st", ["3", "999"])
    assert (s.version, s.member_count) == (3, 3)
    s = cat.set_members("st", pl.Series(["b", "a", "a"]), expect_version=3)
    assert (s.version, cat.members("st")) == (4, ["a", "b"])
    with pytest.raises(ConflictError, match="you edited version 3, it is now version 4"):
        cat.add_members("st", ["c"], expect_version=3)
    assert [(h["action"], h["member_count"], h["note"]) for h in cat.history("st")] == [
        ("create", 3, ""),
        ("members", 4, "1 added"),
        ("members", 3, "1 removed"),
        ("members", 2, "members set (2)"),
    ]
    assert cat.members_frame("st").to_dict(as_series=False) == {"user_id": ["a", "b"]}
    with pytest.raises(CatalogError, match="static: change its members, not a rule"):
        cat.edit("st", rule_text="age > 1")


CSV = (
    "user_id,email\n"
    "00123,a@x\n"
    " 00124 ,b@x\n"
    "00123,c@x\n"
    ",d@x\n"
    "u9,e@x\n"
    "00124,f@x\n"
    "00123,g@x\n"
    "u10,h@x\n"
)


def test_upload_static_from_csv_reports_duplicates_and_unknown(
    cat: Catalog, tmp_path: Path
) -> None:
    f = tmp_path / "ids.csv"
    f.write_text(CSV)
    known = pl.Series("user_id", ["00123", "00124", "123", "u1"])
    rep = cat.upload_static("uploaded", f, known_ids=known, description="from crm")
    assert rep == {
        "segment": "uploaded",
        "version": 1,
        "created": True,
        "rows": 7,
        "members": 4,
        "duplicates": 3,
        "duplicate_ids": 2,
        "duplicate_examples": ["00123", "00124"],
        "header": "user_id",
        "column": "user_id",
        "unknown": 2,
        "unknown_examples": ["u9", "u10"],
    }
    assert cat.members("uploaded") == ["00123", "00124", "u10", "u9"]  # zeros kept, once each
    assert cat.get("uploaded").description == "from crm"
    # replacing the members of an existing static segment, with a set of known ids
    rep = cat.upload_static("UPLOADED", b"id\n5\n6\n", known_ids={"5"})
    assert (rep["created"], rep["version"], rep["members"], rep["unknown"]) == (False, 2, 2, 1)
    assert cat.members("uploaded") == ["5", "6"]
    cat.create("dyn", rule_text="age > 1")
    with pytest.raises(CatalogError, match="segment 'dyn' is dynamic"):
        cat.upload_static("dyn", b"id\n1\n")


def test_parse_ids_variants(tmp_path: Path) -> None:
    # header "id", other separator, BOM, CRLF, quotes
    ids, rep = parse_ids_csv('\ufeffname;ID\r\nx;"0001"\r\ny;0002\r\n'.encode())
    assert (ids, rep["rows"], rep["header"]) == (["0001", "0002"], 2, "ID")
    # pasted plain list, blank lines skipped, no header
    ids, rep = parse_ids_text("0042\n\n  0043  \n0042\n")
    assert ids == ["0042", "0043"]
    assert (rep["rows"], rep["members"], rep["duplicates"], rep["header"]) == (3, 2, 1, None)
    # a single column with any header name
    ids, rep = parse_ids_text("customer\n001\n002\n")
    assert (ids, rep["header"]) == (["001", "002"], "customer")
    ids, rep = parse_ids_text("user_id\nalice\nbob\n")
    assert (ids, rep["header"]) == (["alice", "bob"], "user_id")
    ids, rep = parse_ids_text("alice\nbob\n")
    assert (ids, rep["header"]) == (["alice", "bob"], None)
    assert parse_ids_text("")[0] == []
    # an uploaded file without ids is refused, naming it
    for empty, msg in ((b"", "has no user ids in it"), (b"user_id\n\n", "under its 'user_id'")):
        with pytest.raises(CatalogError, match=msg):
            parse_ids_csv(empty)
    f = tmp_path / "list.txt"
    f.write_bytes(b"7\n8\n")
    with f.open("rb") as fh:
        assert parse_ids_csv(fh)[0] == ["7", "8"]
    assert parse_ids_csv(str(f))[0] == ["7", "8"]


def test_parse_ids_errors(tmp_path: Path) -> None:
    with pytest.raises(CatalogError) as exc:
        parse_ids_csv(b"name,email\nx,y\n")
    assert str(exc.value) == (
        "the uploaded data has no user id column: expected a column named 'user_id' or "
        "'id', found 'name', 'email'"
    )
    missing = tmp_path / "nope.csv"
    with pytest.raises(CatalogError, match=f"ids file {missing} does not exist"):
        parse_ids_csv(missing)
    with pytest.raises(CatalogError, match="is not UTF-8 text"):
        parse_ids_csv(b"id\n\xff\xfe\x00\n")


def test_upload_pasted_list(cat: Catalog) -> None:
    rep = cat.upload_static("pasted", ["01", "02", "01", " "])
    assert (rep["rows"], rep["members"], rep["duplicates"], rep["unknown"]) == (3, 2, 1, 0)
    assert cat.members("pasted") == ["01", "02"]
    rep = cat.upload_static("pasted2", b"0\n1\n")
    assert cat.members("pasted2") == ["0", "1"]
    rep = cat.upload_static("pasted3", "user_id\n 0010\n0011\n0010\n")  # text, not a path
    assert (rep["rows"], rep["members"], rep["duplicates"]) == (3, 2, 1)
    assert cat.members("pasted3") == ["0010", "0011"]


# ---------------------------------------------------------------------- channels & funnels
def test_channels_defaults_and_edits(cat: Catalog) -> None:
    chans = cat.channels()
    assert [(c.name, c.rule_text) for c in chans] == [
        ("email", "email IS NOT NULL AND email_opt_in"),
        ("sms", "phone IS NOT NULL AND sms_opt_in"),
        ("push", "push_token IS NOT NULL AND push_opt_in"),
        ("whatsapp", "phone IS NOT NULL AND whatsapp_opt_in"),
    ]
    c = cat.set_channel("SMS", "phone IS NOT NULL", "any phone")
    assert (c.name, c.rule_text, c.description, c.position) == (
        "sms",
        "phone IS NOT NULL",
        "any phone",
        1,
    )
    c = cat.set_channel("postal", "address IS NOT NULL")
    assert c.position == 4
    cat.delete_channel("push")
    assert [c.name for c in cat.channels()] == ["email", "sms", "whatsapp", "postal"]
    with pytest.raises(NotFoundError, match="no channel named 'pusj'"):
        cat.delete_channel("pusj")
    with pytest.raises(CatalogError, match="channel 'x' needs a rule"):
        cat.set_channel("x", "  ")
    for c in list(cat.channels()):
        cat.delete_channel(c.name)
    assert cat.channels() == []  # stays empty: defaults are seeded once only
    reset = cat.reset_channels()
    assert [(c.name, c.rule_text) for c in reset] == [(n, r) for n, r, _ in DEFAULT_CHANNELS]
    assert cat.get_channel("Email").name == "email"


def test_funnels_save_load(cat: Catalog) -> None:
    spec = {"steps": ["view", "add_to_cart", "purchase"], "window": "1d", "strict": False}
    f = cat.save_funnel("checkout", spec)
    assert f["spec"] == spec and f["name"] == "checkout"
    spec2 = {**spec, "window": "2h"}
    f2 = cat.save_funnel("Checkout", spec2)
    assert f2["spec"]["window"] == "2h" and f2["created_at"] == f["created_at"]
    cat.save_funnel("activation", {"steps": ["signup", "login"]})
    assert [x["name"] for x in cat.funnels()] == ["activation", "checkout"]
    assert cat.get_funnel("CHECKOUT")["spec"] == spec2
    cat.delete_funnel("activation")
    with pytest.raises(NotFoundError, match="no funnel named 'activation'"):
        cat.get_funnel("activation")
    with pytest.raises(CatalogError, match="cannot be saved as JSON"):
        cat.save_funnel("bad", {"x": {1, 2}})


def test_data_version_moves_on_every_write(cat: Catalog) -> None:
    v0 = cat.data_version()
    cat.create("a", rule_text="age > 1")
    v1 = cat.data_version()
    assert v1 == v0 + 1
    cat.list()
    cat.get("a")
    assert cat.data_version() == v1  # reads do not count
    Catalog(cat.path).set_channel("fax", "fax IS NOT NULL")  # another handle
    assert cat.data_version() == v1 + 1
    with pytest.raises(CatalogError):
        cat.create("A", rule_text="age > 1")
    assert cat.data_version() == v1 + 1  # a refused write does not count


# ---------------------------------------------------------------------- failures
def test_folder_that_is_a_file_gives_store_error(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    cat = Catalog(afile / "catalog.sqlite")
    with pytest.raises(StoreError, match=f"cannot open the catalog .*: {afile} is a file"):
        cat.list()
    with pytest.raises(StoreError):
        cat.create("a", rule_text="age > 1")


def test_not_a_database_gives_store_error(tmp_path: Path) -> None:
    p = tmp_path / "catalog.sqlite"
    p.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="is not a usable catalog"):
        Catalog(p).list()


def test_read_only_catalog_gives_store_error(tmp_path: Path, monkeypatch) -> None:
    # tests run as root, where chmod does not block writes: simulate a folder
    # the process cannot write (os.access is what the catalog asks)
    home = tmp_path / "we?ird #home"
    cat = Catalog(home / "catalog.sqlite")
    cat.create("a", rule_text="age > 1")
    monkeypatch.setattr(connection_mod.os, "access", lambda path, mode: False)
    ro = Catalog(cat.path)
    assert ro.get("a").version == 1  # reading still works
    assert [c.name for c in ro.channels()][:1] == ["email"]
    with pytest.raises(StoreError) as exc:
        ro.create("b", rule_text="age > 2")
    assert str(exc.value) == (
        f"the store is read-only: cannot change the catalog {cat.path} "
        f"(read-only file system, or no write permission on {home})"
    )
    with pytest.raises(StoreError, match="read-only"):
        ro.edit("a", description="x")
    monkeypatch.undo()
    assert [s.name for s in cat.list()] == ["a"]
    assert cat.get("a").version == 1


def test_missing_catalog_in_read_only_folder(tmp_path: Path, monkeypatch) -> None:
    def refuse(*args, **kwargs):  # what sqlite says when it cannot create the file
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(connection_mod.sqlite3, "connect", refuse)
    with pytest.raises(StoreError, match="cannot open the catalog .*: the folder is missing"):
        Catalog(tmp_path / "catalog.sqlite").list()


def test_full_disk_gives_store_error_and_no_change(cat: Catalog, monkeypatch) -> None:
    cat.create("s", kind="static", members=["1"])
    real = sqlite3.connect

    def connect_small(*args, **kwargs):
        con = real(*args, **kwargs)
        pages = con.execute("PRAGMA page_count").fetchone()[0]
        con.execute(f"PRAGMA max_page_count = {pages}")
        return con

    monkeypatch.setattr(connection_mod.sqlite3, "connect", connect_small)
    with pytest.raises(StoreError, match="the disk is full: cannot write the catalog"):
        cat.set_members("s", (f"user-{i:08d}" for i in range(20_000)))
    monkeypatch.undo()
    s = cat.get("s")
    assert (s.version, s.member_count) == (1, 1)


def test_exception_mid_transaction_leaves_catalog_unchanged(cat: Catalog) -> None:
    cat.create("s", kind="static", members=["1", "2"])
    v = cat.data_version()

    def ids():
        yield "3"
        yield "4"
        raise RuntimeError("upload interrupted")

    with pytest.raises(RuntimeError, match="upload interrupted"):
        cat.set_members("s", ids())
    s = cat.get("s")
    assert (s.version, cat.members("s"), cat.data_version()) == (1, ["1", "2"], v)
    with pytest.raises(RuntimeError), cat._write() as con:
        con.execute("UPDATE segments SET description = 'half done'")
        raise RuntimeError("boom")
    assert cat.get("s").description == ""
    assert len(cat.history("s")) == 1


def test_process_killed_mid_transaction_leaves_catalog_unchanged(cat: Catalog) -> None:
    cat.create("a", rule_text="age > 1")
    proc = run_py(
        """
        import os, sys
        from segcore.store.catalog import Catalog
        cat = Catalog(sys.argv[1])
        with cat._write() as con:
            con.execute("UPDATE segments SET rule_text = 'crashed', version = 9")
            con.execute("DELETE FROM channels")
            os._exit(3)  # dies holding the write lock, before COMMIT
        """,
        str(cat.path),
    )
    assert proc.returncode == 3, proc.stderr
    s = cat.get("a")
    assert (s.rule_text, s.version) == ("age > 1", 1)
    assert len(cat.channels()) == 4
    assert cat.edit("a", rule_text="age > 2").version == 2  # not left locked


def test_newer_schema_is_refused(cat: Catalog) -> None:
    cat.list()
    con = sqlite3.connect(cat.path)
    con.execute("PRAGMA user_version = 7")
    con.close()
    with pytest.raises(StoreError, match="has schema version 7, newer than this segcore"):
        cat.list()


def test_catalog_file_removed_is_recreated(cat: Catalog) -> None:
    cat.create("a", rule_text="age > 1")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{cat.path}{suffix}").unlink(missing_ok=True)
    assert cat.list() == []
    assert len(cat.channels()) == 4


def test_first_use_from_many_threads_and_processes(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "catalog.sqlite"
    go = tmp_path / "go"
    code = """
        import sys, time
        from pathlib import Path
        from segcore.store.catalog import Catalog
        go = Path(sys.argv[3])
        while not go.exists():
            time.sleep(0.002)
        Catalog(sys.argv[1]).create("p" + sys.argv[2], rule_text="age > 1")
    """
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), str(path), str(i), str(go)],
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for i in range(2)
    ]
    errors: list[BaseException] = []

    def first_use(i: int) -> None:
        try:
            Catalog(path).create(f"t{i}", rule_text="age > 1")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=first_use, args=(i,)) for i in range(4)]
    go.touch()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    outs = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert errors == []
    cat = Catalog(path)
    assert [s.name for s in cat.list()] == ["p0", "p1", "t0", "t1", "t2", "t3"]
    assert len(cat.channels()) == 4  # seeded once


def test_migration_from_schema_v1(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    con = sqlite3.connect(path)
    con.executescript(schema_mod.SCHEMA_V1)
    con.executescript(
        "INSERT INTO meta VALUES ('data_version', 5);"
        "INSERT INTO segments (id, name, description, kind, created_at, updated_at, version)"
        " VALUES (1, 'old static', '', 'static', 't', 't', 1),"
        " (2, 'old rule', '', 'dynamic', 't', 't', 1);"
        "UPDATE segments SET rule_text = 'age > 1' WHERE id = 2;"
        "INSERT INTO segment_members VALUES (1, 'a'), (1, 'b'), (1, 'c');"
        "PRAGMA user_version = 1;"
    )
    con.close()
    cat = Catalog(path)
    assert cat.schema_version() == 3
    assert [(s.name, s.member_count) for s in cat.list()] == [("old rule", None), ("old static", 3)]
    assert cat.channels() == []  # a v1 catalog keeps its own channels (none here)
    assert cat.add_members("old static", ["d"]).member_count == 4


# ---------------------------------------------------------------------- references (issue 21)
AS_OF_REFS = "2026-06-30"


@pytest.fixture
def refs_store(tiny) -> Store:
    """Five users aged 20, 30, 40, 50, 60 (u1..u5); B = age >= 40, C = in B and age < 60."""
    from segcore.segments import create_segment

    store = tiny(events=[(f"u{i}", "visit", "2026-06-01") for i in range(1, 6)],
                 users=[{"user_id": f"u{i}", "age": 10 * (i + 1), "name": "B"}
                        for i in range(1, 6)])
    create_segment(store, "B", "age >= 40")
    create_segment(store, "C", "in_segment('B') AND age < 60 AND name = 'B'")
    return store


def _ids(store: Store, name: str) -> list[str]:
    return sorted(store.members(segment=name, as_of=AS_OF_REFS)["user_id"].to_list())


def _raw_update(store: Store, name: str, rule_text: str, rule_json: str) -> None:
    """Change a rule behind the catalog's back (a damaged or old catalog)."""
    con = sqlite3.connect(store.catalog_path)
    con.execute("UPDATE segments SET rule_text = ?, rule_json = ? WHERE name = ?",
                (rule_text, rule_json, name))
    con.commit()
    con.close()


def test_rename_rewrites_the_rules_that_refer_to_it(refs_store: Store) -> None:
    store = refs_store
    assert _ids(store, "C") == ["u3", "u4"]
    c_before = store.catalog.get("C")
    store.catalog.rename("B", "Big")
    c = store.catalog.get("C")
    # through the tree and the printer: the string literal 'B' is left alone
    assert c.rule_text == "in_segment('Big') AND age < 60 AND name = 'B'"
    assert '"name":"Big"' in c.rule_json and '"name":"B"' not in c.rule_json
    assert c.version == c_before.version + 1
    last = store.catalog.history("C")[-1]
    assert (last["action"], last["note"], last["version"]) == (
        "edit", "in_segment('B') now in_segment('Big')", c.version)
    assert _ids(store, "C") == ["u3", "u4"]
    # a new segment under the old name does not re-point C
    from segcore.segments import create_segment

    create_segment(store, "B", "age < 30")
    assert _ids(store, "B") == ["u1"]
    assert _ids(store, "C") == ["u3", "u4"]


def test_rename_follows_case_only_and_chained_renames(refs_store: Store) -> None:
    store = refs_store
    from segcore.segments import create_segment

    create_segment(store, "A", "in_segment('C') OR age = 20")
    store.catalog.rename("B", "b")  # case only: the referencing rule shows the new case
    assert store.catalog.get("C").rule_text.startswith("in_segment('b')")
    # B -> Z, then C -> B: before, A would now read 'B' (= old C) and C 'B' (= itself)
    store.catalog.rename("b", "Z")
    store.catalog.rename("C", "B")
    assert store.catalog.get("A").rule_text == "in_segment('B') OR age = 20"
    assert store.catalog.get("B").rule_text.startswith("in_segment('Z')")
    assert _ids(store, "A") == ["u1", "u3", "u4"]
    assert _ids(store, "B") == ["u3", "u4"]


def test_rename_rewrites_deleted_referrers_so_they_can_be_restored(refs_store: Store) -> None:
    store = refs_store
    store.catalog.delete("C")
    store.catalog.rename("B", "Big")
    c = store.catalog.restore("C")
    assert c.rule_text.startswith("in_segment('Big')")
    assert _ids(store, "C") == ["u3", "u4"]


def test_delete_of_a_referenced_segment_is_refused_naming_the_referrers(
    refs_store: Store,
) -> None:
    store = refs_store
    from segcore.segments import create_segment

    with pytest.raises(CatalogError) as exc:
        store.catalog.delete("b")
    assert str(exc.value) == (
        "cannot delete segment 'B': segment 'C' refers to it with in_segment('B'); "
        "change or delete it first"
    )
    create_segment(store, "D", "in_segment('B')")
    with pytest.raises(CatalogError, match="segments 'C' and 'D' refer to it"):
        store.catalog.delete("B")
    assert store.catalog.get("B").version == 1  # nothing changed
    store.catalog.delete("C")
    store.catalog.delete("D")
    store.catalog.delete("B")  # deleted referrers do not hold it


def test_restore_that_would_leave_a_missing_reference_is_refused(refs_store: Store) -> None:
    store = refs_store
    store.catalog.delete("C")
    store.catalog.delete("B")
    with pytest.raises(RuleError) as exc:
        store.catalog.restore("C")
    assert str(exc.value) == "segment 'C' refers to segment 'B', which does not exist"
    assert store.catalog.list() == []
    store.catalog.restore("B")
    assert _ids(store, store.catalog.restore("C").name) == ["u3", "u4"]


def test_catalog_api_refuses_cycles_and_missing_references(refs_store: Store) -> None:
    store = refs_store
    b_json = store.catalog.get("C").rule_json  # in_segment('B') AND ...
    with pytest.raises(RuleError, match=r"^segment cycle: B -> C -> B$"):
        store.catalog.edit("B", rule_text="in_segment('C')",
                           rule_json='{"version":1,"tree":{"kind":"in_segment","name":"C"}}')
    with pytest.raises(RuleError, match=r"^segment cycle: X -> X$"):
        store.catalog.create("X", rule_text="in_segment('X')",
                             rule_json='{"version":1,"tree":{"kind":"in_segment","name":"x"}}')
    with pytest.raises(RuleError, match="segment 'Y' refers to segment 'Nope', which does not"):
        store.catalog.create("Y", rule_text="in_segment('Nope')",
                             rule_json='{"version":1,"tree":{"kind":"in_segment","name":"Nope"}}')
    assert [s.name for s in store.catalog.list()] == ["B", "C"]
    assert store.catalog.clone("C", "C2").rule_json == b_json
    assert store.catalog.get("B").version == 1


def _chain(store: Store, n: int, prefix: str = "s") -> None:
    """Segments s0 (age >= 40), s1 = in_segment('s0'), ..., s{n-1}: a chain of n."""
    from segcore.segments import create_segment

    create_segment(store, f"{prefix}0", "age >= 40")
    for i in range(1, n):
        create_segment(store, f"{prefix}{i}", f"in_segment('{prefix}{i - 1}')")


def test_chain_of_the_nesting_limit_saves_and_evaluates_one_more_is_refused(
    refs_store: Store,
) -> None:
    from segcore.lang.references import MAX_SEGMENT_DEPTH
    from segcore.segments import create_segment

    store = refs_store
    _chain(store, MAX_SEGMENT_DEPTH)
    top = f"s{MAX_SEGMENT_DEPTH - 1}"
    assert _ids(store, top) == ["u3", "u4", "u5"]
    assert store.count(f"in_segment('{top}')", as_of=AS_OF_REFS) == 3
    with pytest.raises(RuleError) as exc:
        create_segment(store, "over", f"in_segment('{top}')")
    assert str(exc.value) == (
        f"segments nested more than {MAX_SEGMENT_DEPTH} levels deep: over -> s31 -> s30 -> "
        f"... (28 more) -> s1 -> s0 ({MAX_SEGMENT_DEPTH + 1} segments)"
    )
    assert not store.catalog.exists("over")


def test_joining_two_chains_or_restoring_onto_a_chain_is_refused(refs_store: Store) -> None:
    from segcore.segments import create_segment, edit_segment

    store = refs_store
    create_segment(store, "d", "in_segment('B')")  # d -> B: a chain of 2 when saved
    store.catalog.delete("d")
    store.catalog.delete("C")
    _chain(store, 31, "z")
    edit_segment(store, "B", rule="in_segment('z30') AND age >= 40")  # B: 32 deep, the limit
    assert _ids(store, "B") == ["u3", "u4", "u5"]
    for name in ("d", "C"):  # restoring a referrer of B would make 33
        with pytest.raises(RuleError, match=f"^segments nested more than 32 levels deep: "
                                            f"{name} -> B -> z30 -> .* \\(33 segments\\)$"):
            store.catalog.restore(name)
    assert [s.name for s in store.catalog.list(include_deleted=True) if s.deleted_at] == [
        "C", "d"]
    # an edit at the bottom of one chain makes the segments above it too deep
    _chain(store, 20, "a")
    edit_segment(store, "a0", rule="in_segment('z10')")  # a19: 20 + 11 = 31, fine
    with pytest.raises(RuleError, match="^segments nested more than 32 levels deep: a19 -> "
                                        "a18 -> a17 -> ... \\(35 more\\) -> z1 -> z0 "
                                        "\\(40 segments\\)$"):
        edit_segment(store, "a0", rule="in_segment('z19')")
    assert store.catalog.get("a0").rule_text == "in_segment('z10')"
    assert _ids(store, "a19") == ["u3", "u4", "u5"]


def test_rename_keeps_segment_list_sizes_whole(refs_store: Store, capsys) -> None:
    from segcore.cli import main

    store = refs_store
    store.catalog.rename("B", "Big")
    assert main(["segment", "list", "--sizes", "--as-of", AS_OF_REFS, "--json",
                 "--home", str(store.home)]) == 0
    rows = json.loads(capsys.readouterr().out)["segments"]
    assert [(r["name"], r["members"], r["error"]) for r in rows] == [
        ("Big", 3, None), ("C", 2, None)]


# ---------------------------------------------------------------------- static segments by hand
def test_add_remove_report_and_member_lists(cat: Catalog) -> None:
    cat.create("st", kind="static", members=["a", "b", "c"])
    r = cat.add_members("st", ["c", "d", " e ", "d", ""], known_ids={"a", "b", "c", "d"})
    assert cat.members("st") == ["a", "b", "c", "d", "e"]
    assert r.to_dict() == {
        "segment": "st", "version": 2, "member_count": 5, "action": "add", "rows": 4, "ids": 3,
        "duplicates": 1, "added": 2, "already_members": 1, "removed": 0, "not_members": 0,
        "unknown": 1, "examples": {"already_members": ["c"], "unknown": ["e"]},
    }
    r = cat.remove_members("st", ["a", "zz", "e"], expect_version=2)
    assert cat.members("st") == ["b", "c", "d"]
    assert (r.version, r.member_count, r.removed, r.not_members, r.unknown, r.examples) == (
        3, 3, 2, 1, None, {"not_members": ["zz"]})
    r = cat.add_members("st", ["b"])  # nothing new: still a version, for the record
    assert (r.version, r.added, r.already_members, cat.members("st")) == (4, 0, 1, ["b", "c", "d"])
    assert [(h["version"], h["action"], h["member_count"], h["note"])
            for h in cat.history("st")] == [
        (1, "create", 3, ""), (2, "members", 5, "2 added"), (3, "members", 3, "2 removed"),
        (4, "members", 3, "0 added")]


def test_concurrent_member_edits_of_one_version_exactly_one_wins(cat: Catalog) -> None:
    cat.create("st", kind="static", members=["a"])
    results: list[object] = []
    barrier = threading.Barrier(6)

    def edit(i: int) -> None:
        barrier.wait()
        try:
            if i % 2:
                results.append((i, cat.add_members("st", [f"n{i}"], expect_version=1)))
            else:
                results.append((i, cat.remove_members("st", ["a"], expect_version=1)))
        except ConflictError as exc:
            results.append((i, exc))

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [(i, r) for i, r in results if not isinstance(r, ConflictError)]
    assert len(won) == 1 and len(results) == 6
    assert all(str(r).endswith("(you edited version 1, it is now version 2); reload and try "
                               "again") for _, r in results if isinstance(r, ConflictError))
    i, report = won[0]
    assert cat.members("st") == (["a", f"n{i}"] if i % 2 else [])
    assert cat.get("st").version == report.version == 2
    assert len(cat.history("st")) == 2


def test_revert_static_members_to_every_earlier_version(cat: Catalog) -> None:
    cat.create("st", kind="static", members=["a", "b", "c"], description="first")
    cat.add_members("st", ["d", "e"])
    cat.remove_members("st", ["a", "d"])
    cat.edit("st", description="second")
    cat.set_members("st", ["x", "b"])
    states = {v["version"]: v for v in cat.history("st")}
    expected = {1: ["a", "b", "c"], 2: ["a", "b", "c", "d", "e"], 3: ["b", "c", "e"],
                4: ["b", "c", "e"], 5: ["b", "x"]}
    for v in (3, 1, 5, 2, 4):  # reverts are versions too: going back and forth works
        s = cat.revert("st", v)
        assert cat.members("st") == expected[v]
        assert (s.member_count, s.description) == (len(expected[v]), states[v]["description"])
    hist = cat.history("st")
    assert [h["note"] for h in hist[-5:]] == [f"back to version {v}" for v in (3, 1, 5, 2, 4)]
    with pytest.raises(CatalogError, match="has no earlier version 99"):
        cat.revert("st", 99)
    with pytest.raises(ConflictError):
        cat.revert("st", 1, expect_version=3)


def test_revert_dynamic_rule_is_checked_like_an_edit(refs_store: Store) -> None:
    from segcore.segments import edit_segment

    store = refs_store
    edit_segment(store, "B", rule="age >= 50")
    assert _ids(store, "B") == ["u4", "u5"]
    store.catalog.revert("B", 1)
    assert store.catalog.get("B").rule_text == "age >= 40" and _ids(store, "B") == ["u3", "u4", "u5"]
    # a version whose rule would now close a cycle is refused
    from segcore.segments import create_segment

    store.catalog.delete("C")
    create_segment(store, "Q", "age > 0")
    edit_segment(store, "B", rule="in_segment('Q') AND age >= 30")  # version 4
    edit_segment(store, "B", rule="age >= 20")  # version 5
    edit_segment(store, "Q", rule="in_segment('B')")
    with pytest.raises(RuleError, match="^segment cycle: B -> Q -> B$"):
        store.catalog.revert("B", 4)
    assert store.catalog.get("B").version == 5 and _ids(store, "Q") == ["u1", "u2", "u3",
                                                                        "u4", "u5"]


def test_members_of_a_catalog_migrated_from_schema_2_revert_from_then_on(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    cat = Catalog(path)
    cat.create("st", kind="static", members=["a"])
    cat.add_members("st", ["b"])
    con = sqlite3.connect(path)  # back to a schema-2 catalog (no member log)
    con.executescript("DROP TABLE segment_member_changes; "
                      "ALTER TABLE segments DROP COLUMN members_logged_from; "
                      "PRAGMA user_version = 2;")
    con.close()
    cat.add_members("st", ["c"])
    with pytest.raises(CatalogError, match="cannot go back to version 1: its member changes "
                                           "are kept from version 2 on"):
        cat.revert("st", 1)
    cat.revert("st", 2)
    assert cat.members("st") == ["a", "b"]


def test_store_add_remove_freeze(refs_store: Store) -> None:
    from segcore.store.catalog import MembersReport

    store = refs_store
    store.catalog.create("picked", kind="static", members=["u1"])
    r = store.add_members("picked", ["u2", "u9", "u1"])
    assert isinstance(r, MembersReport)
    assert (r.added, r.already_members, r.unknown, r.examples["unknown"]) == (2, 1, 1, ["u9"])
    assert store.catalog.members("picked") == ["u1", "u2", "u9"]
    assert _ids(store, "picked") == ["u1", "u2"]  # u9 is not in the store (yet)
    r = store.remove_members("picked", "u1", expect_version=2)
    assert (r.removed, r.version, store.catalog.members("picked")) == (1, 3, ["u2", "u9"])
    with pytest.raises(ConflictError):
        store.remove_members("picked", ["u2"], expect_version=2)
    frozen = store.freeze("C", "C then", as_of=AS_OF_REFS)
    assert (frozen.kind, store.catalog.members("C then")) == ("static", ["u3", "u4"])
    assert store.catalog.member_of("u3") == ["C then"]
    assert store.catalog.member_of("u2") == ["picked"]
    with pytest.raises(NotFoundError, match="no segment named 'Nope'"):
        store.freeze("Nope", "x")
    with pytest.raises(CatalogError, match="a segment named 'picked' already exists"):
        store.freeze("C", "picked")
