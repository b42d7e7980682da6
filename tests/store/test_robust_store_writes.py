"""Nothing damaged, nothing leaked: racing imports agree on column types, output flags
never write into the store, rejected rows go under the home, a read-only store reads
(really read-only: a read-only mount), a full disk (a real, small tmpfs) is one clear
line and the store stays byte-identical. See docs/robustness.md.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from segcore import Store
from segcore.cli import main
from segcore.errors import IngestError, UsageError
from segcore.ingest import ingest
from segcore.ingest.write import store_lock, write_events
from segcore.sample import generate
from segcore.segments import create_segment
from segcore.store.outputs import check_output_path

AS_OF = "2026-06-30"
IS_ROOT = os.geteuid() == 0


def snapshot(home: Path) -> dict[str, str]:
    """Every file under ``home`` and the hash of its bytes."""
    return {
        str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(home.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def cli(capsys):
    """``segcore ARGS`` (in this process: the same ``main`` a real process runs)."""

    def run(*args: str) -> subprocess.CompletedProcess:
        code = main(list(args))
        got = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, got.out, got.err)

    return run


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The single ``error: ...`` line of a refused command (exit status 2)."""
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0][len("error: "):]


@pytest.fixture(scope="module")
def small_home(tmp_path_factory) -> Path:
    """A 300-user sample store with one saved segment (so it has a catalog)."""
    home = tmp_path_factory.mktemp("small") / "home"
    generate(home, users=300, days=20, end=AS_OF, seed=3)
    create_segment(Store(home), "vip", "country = 'US'")
    return home


@pytest.fixture
def home(small_home, tmp_path) -> Path:
    dst = tmp_path / "home"
    shutil.copytree(small_home, dst)
    return dst


# ---------------------------------------------------------------------- racing imports
def _waiting_on(lock: Path) -> int:
    """How many flock requests are blocked on ``lock`` (the home folder; /proc/locks)."""
    ino = f":{lock.stat().st_ino} "
    text = Path("/proc/locks").read_text()
    return sum(1 for line in text.splitlines() if "->" in line and ino in line)


def _wait_for_waiters(lock: Path, n: int, procs=()) -> None:
    deadline = time.monotonic() + 60
    while _waiting_on(lock) < n:
        for p in procs:
            assert p.poll() is None, p.communicate()
        assert time.monotonic() < deadline, "the imports never waited for the lock"
        time.sleep(0.02)


def _column_types(folder: Path, column: str) -> set[str]:
    return {
        str(pl.read_parquet_schema(f).get(column))
        for f in folder.glob("*.parquet")
        if column in pl.read_parquet_schema(f)
    }


def test_two_racing_imports_adding_one_column_with_two_types_agree(home, tmp_path, cli):
    """Both imports validate while a third process holds the lock; whichever writes
    second is checked again against the column the first one added."""
    hello = tmp_path / "hello.csv"
    hello.write_text("user_id,event,ts,zz\nu000001,race,2026-06-10,hello\n")
    num = tmp_path / "num.csv"
    num.write_text("user_id,event,ts,zz\nu000002,race,2026-06-11,42\n")
    with store_lock(home):  # a long import holding the writer lock
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "segcore", "ingest", "events", str(src), "--home",
                 str(home)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for src in (hello, num)
        ]
        _wait_for_waiters(home, 2, procs)
    out = {src.name: (p.wait(timeout=120), p.stderr.read()) for src, p in zip((hello, num), procs, strict=True)}
    types = _column_types(home / "events", "zz")
    assert len(types) == 1  # every file agrees on the type of zz
    events = Store(home).scan_events().filter(pl.col("event") == "race").collect()
    if types == {"String"}:  # hello first: 42 fits a String column, kept as its text
        assert out == {"hello.csv": (0, ""), "num.csv": (0, "")}
        assert sorted(events["zz"].to_list()) == ["42", "hello"]
    else:  # 42 first: zz is Int64, hello is refused, naming the column and the types
        assert types == {"Int64"}
        assert out["num.csv"] == (0, "")
        assert out["hello.csv"] == (
            2,
            f"error: {hello}: line 2: column 'zz' is Int64 in the store but the value "
            "'hello' is not Int64\n",
        )
        assert events["zz"].to_list() == [42]
    # rules and `segcore user` reading zz keep working
    for uid in ("u000001", "u000002"):
        assert cli("user", uid, "--home", str(home), "--json").returncode == 0
    counted = cli("eval", "--rule", "did('race', where => zz IS NOT NULL)", "--home",
                  str(home), "--as-of", AS_OF, "--json")
    assert counted.returncode == 0, counted.stderr
    assert f'"count": {events.height},' in counted.stdout


def _import_while_another_writes(home: Path, src: Path, stored: pl.Series) -> dict:
    """Run ``ingest(src)`` in a thread; once it has validated and waits for the lock,
    write an events file adding ``zz`` with ``stored``'s type (as another import would)."""
    store = Store(home)
    result: dict = {}

    def run() -> None:
        try:
            result["ok"] = ingest(store, "events", [src])
        except IngestError as exc:
            result["error"] = str(exc)

    with store_lock(home):  # a long import holding the writer lock
        worker = threading.Thread(target=run)
        worker.start()
        _wait_for_waiters(home, 1)
        n = len(stored)
        write_events(
            store,
            pl.DataFrame(
                {
                    "user_id": ["u000003"] * n,
                    "event": ["other"] * n,
                    "ts": pl.Series([AS_OF] * n).str.to_datetime(time_zone="UTC"),
                    "event_id": [None] * n,
                    "zz": stored,
                },
                schema_overrides={"event_id": pl.String},
            ),
        )
    worker.join(timeout=60)
    return result


def test_an_import_validated_before_another_added_its_column_is_checked_again(home, tmp_path):
    src = tmp_path / "late.csv"
    src.write_text("user_id,event,ts,zz\nu000001,late,2026-06-10,hello\n")
    result = _import_while_another_writes(home, src, pl.Series([7], dtype=pl.Int64))
    assert result == {
        "error": f"{src}: line 2: column 'zz' is Int64 in the store but the value 'hello' "
        "is not Int64"
    }
    assert _column_types(home / "events", "zz") == {"Int64"}


def test_values_checked_again_are_stored_as_given_not_as_first_inferred(home, tmp_path):
    # read alone, "1.50" would become the float 1.5; zz turned String meanwhile, so the
    # text itself is stored
    src = tmp_path / "late.csv"
    src.write_text("user_id,event,ts,zz\nu000001,late,2026-06-10,1.50\n")
    result = _import_while_another_writes(home, src, pl.Series(["abc"]))
    assert result["ok"]["rows_imported"] == 1
    assert result["ok"]["new_columns"] == []
    assert _column_types(home / "events", "zz") == {"String"}
    late = Store(home).scan_events().filter(pl.col("event") == "late").collect()
    assert late["zz"].to_list() == ["1.50"]


# ---------------------------------------------------------------------- output flags
def _targets(home: Path, tmp_path: Path) -> list[Path]:
    """Paths that all land in the store's data or catalog, spelled in many ways."""
    (tmp_path / "link_to_users").symlink_to(home / "users")
    (tmp_path / "link_to_catalog").symlink_to(home / "catalog.sqlite")
    os.link(home / "users" / "users.parquet", tmp_path / "hardlink.parquet")
    return [
        home / "events" / "more.parquet",
        home / "events" / "deep" / "more.parquet",
        home / "users" / "more.parquet",
        home / "users" / "users.parquet",
        home / "users" / "members.csv",
        home / "catalog.sqlite",
        home / "catalog.sqlite-wal",
        home / "catalog.sqlite-journal",
        home / "rejects" / ".." / "users" / "x.parquet",
        tmp_path / "link_to_users" / "x.parquet",
        tmp_path / "link_to_catalog",
        tmp_path / "hardlink.parquet",
    ]


def test_no_output_flag_writes_into_the_store(home, tmp_path, capsys):
    before = snapshot(home)
    src = tmp_path / "bad.csv"
    src.write_text("user_id,event,ts\nu000001,x,2026-06-01\n,x,2026-06-02\n")
    for target in _targets(home, tmp_path):
        runs = [
            ["eval", "--segment", "vip", "--out", str(target)],
            ["trend", "--segment", "vip", "--from", "2026-06-20", "--to", AS_OF,
             "--entered", "2026-06-25", "--out", str(target)],
            ["ingest", "events", str(src), "--skip-invalid", "--rejects", str(target)],
        ]
        for args in runs:
            assert main([*args, "--home", str(home)]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1, err
            assert err.startswith(f"error: {'the rejects file' if 'ingest' in args else '--out'}"
                                  f" {target} ")
            assert "store" in err, err
    assert snapshot(home) == before  # nothing added, replaced or counted twice
    store = Store(home)
    assert store.scan_users().collect().height == 300
    assert store.count(segment="vip", as_of=AS_OF) == store.count("country = 'US'", as_of=AS_OF)


def test_output_guard_messages_name_the_place(home, tmp_path):
    store = Store(home)
    with pytest.raises(UsageError) as err:
        check_output_path(store, home / "users" / "x.parquet", "--out")
    assert str(err.value) == (
        f"--out {home}/users/x.parquet is inside the store's users folder {home}/users: it "
        "would be read as users data; write it outside the store's events and users "
        "folders and catalog"
    )
    with pytest.raises(UsageError) as err:
        check_output_path(store, home / "catalog.sqlite-shm", "--out")
    assert str(err.value).startswith(
        f"--out {home}/catalog.sqlite-shm is the store's catalog file "
    )
    src = tmp_path / "in.csv"
    src.write_text("user_id,event,ts\nu1,x,2026-06-01\n")
    with pytest.raises(UsageError, match="is one of the files being read"):
        ingest(store, "events", [src], skip_invalid=True, rejects_path=tmp_path / "." / "in.csv")
    assert src.read_text() == "user_id,event,ts\nu1,x,2026-06-01\n"
    # beside the store, and its rejects folder, are fine
    for ok in (home / "members.csv", home / "rejects" / "r.csv", tmp_path / "out.parquet"):
        check_output_path(store, ok, "--out")


def test_eval_out_outside_the_store_still_writes(home, tmp_path, cli):
    out = tmp_path / "vip.parquet"
    proc = cli("eval", "--segment", "vip", "--as-of", AS_OF, "--out", str(out),
               "--home", str(home))
    assert proc.returncode == 0, proc.stderr
    assert pl.read_parquet(out).height == Store(home).count(segment="vip", as_of=AS_OF)


# ---------------------------------------------------------------------- rejects
SHOP = (
    "CustomerID,InvoiceDate,Amount\n"
    "c1,2026-06-01 10:00,5\n"
    ",2026-06-02 11:00,7\n"
    "c3,someday,9\n"
)


def test_rejects_go_under_the_home_and_reimport_with_the_same_flags(home, tmp_path, cli):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    src = inbox / "shop.csv"
    src.write_text(SHOP)
    flags = ["--map", "user_id=CustomerID", "--map", "ts=InvoiceDate", "--event", "shop_order"]
    events_before = Store(home).event_files()
    proc = cli("ingest", "events", str(src), *flags, "--skip-invalid", "--home", str(home))
    assert proc.returncode == 0, proc.stderr
    rejects = sorted((home / "rejects").iterdir())
    assert len(rejects) == 1 and rejects[0].name.startswith("shop-")
    assert rejects[0].name.endswith(".rejected.csv")
    assert f"rejected rows written to {rejects[0]}." in proc.stdout
    assert sorted(p.name for p in inbox.iterdir()) == ["shop.csv"]  # the next glob is clean
    assert rejects[0].read_text().splitlines() == [
        "CustomerID,InvoiceDate,Amount,__line,__reason",
        ",2026-06-02 11:00,7,3,no user_id",
        "c3,someday,9,4,unparseable ts 'someday'",
    ]
    # the rejects folder is never store data
    store = Store(home)
    assert len(store.event_files()) == len(events_before) + 1
    assert not any(
        p.is_relative_to(home / "rejects") for p in store.event_files() + store.user_files()
    )
    # fixed by hand, the file re-imports with the very same flags
    fixed = inbox / "fixed.csv"
    fixed.write_text(
        rejects[0].read_text().replace(",2026-06-02", "c2,2026-06-02").replace("someday",
                                                                               "2026-06-03")
    )
    proc = cli("ingest", "events", str(fixed), *flags, "--home", str(home))
    assert proc.returncode == 0, proc.stderr
    got = store.scan_events().filter(pl.col("event") == "shop_order").collect().sort("user_id")
    assert got.select("user_id", "Amount").rows() == [("c1", 5), ("c2", 7), ("c3", 9)]
    assert "__line" not in store.events_schema() and "__reason" not in store.events_schema()


# ---------------------------------------------------------------------- read-only store
@contextlib.contextmanager
def read_only_view(home: Path, where: Path) -> Iterator[Path]:
    """``home`` as a store nobody can write: a read-only bind mount as root (permission
    bits do not stop root), permission bits otherwise."""
    if IS_ROOT:
        where.mkdir()
        subprocess.run(["mount", "--bind", str(home), str(where)], check=True)
        try:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(where)], check=True)
            yield where
        finally:
            subprocess.run(["umount", str(where)], check=True)
    else:
        modes = {p: p.stat().st_mode for p in [home, *home.rglob("*")]}
        for p in modes:
            p.chmod(modes[p] & ~0o222)
        try:
            yield home
        finally:
            for p, mode in modes.items():
                p.chmod(mode)


def _really_read_only(folder: Path) -> None:
    with pytest.raises(OSError) as err:
        (folder / "probe").write_text("x")
    assert err.value.errno in (errno.EROFS, errno.EACCES)


@pytest.mark.parametrize("with_catalog", [True, False])
def test_read_only_store_reads_and_refuses_writes_in_one_line(
    small_home, tmp_path, with_catalog, cli
):
    home = tmp_path / "home"
    shutil.copytree(small_home, home)
    if not with_catalog:
        (home / "catalog.sqlite").unlink()
    expected = Store(home).count("country = 'US'", as_of=AS_OF)
    before = snapshot(home)
    src = tmp_path / "more.csv"
    src.write_text("user_id,event,ts\nu9,x,2026-06-05\n")
    with read_only_view(home, tmp_path / "ro") as ro:
        _really_read_only(ro)
        h = ["--home", str(ro)]
        target = ["--segment", "vip"] if with_catalog else ["--rule", "country = 'US'"]
        proc = cli("eval", *target, "--as-of", AS_OF, "--json", *h)
        assert proc.returncode == 0, proc.stderr
        assert f'"count": {expected},' in proc.stdout
        listed = cli("segment", "list", "--json", *h)
        assert listed.returncode == 0, listed.stderr
        assert ('"vip"' in listed.stdout) is with_catalog
        assert cli("user", "u000001", *h).returncode == 0
        assert cli("info", *h).returncode == 0
        out = tmp_path / "members.csv"
        assert cli("eval", *target, "--as-of", AS_OF, "--out", str(out), *h).returncode == 0
        assert pl.read_csv(out).height == expected
        assert one_error_line(cli("ingest", "events", str(src), *h)) == (
            f"the store is read-only: cannot write to {ro}/events"
        )
        for args in (["segment", "create", "new", "--rule", "TRUE"],
                     ["segment", "delete", "vip"]):
            assert one_error_line(cli(*args, *h)) == (
                f"the store is read-only: cannot change the catalog {ro}/catalog.sqlite "
                f"(read-only file system, or no write permission on {ro})"
            )
    assert snapshot(home) == before


# ---------------------------------------------------------------------- full disk
@contextlib.contextmanager
def nearly_full_disk(home: Path, where: Path, spare: int) -> Iterator[Path]:
    """A copy of ``home`` on a real tmpfs with about ``spare`` bytes free (root only)."""
    size = sum(p.stat().st_size for p in home.rglob("*") if p.is_file())
    where.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size + spare}", "tmpfs", str(where)], check=True
    )
    try:
        shutil.copytree(home, where / "home")
        yield where / "home"
    finally:
        subprocess.run(["umount", str(where)], check=True)


def _noise_csv(path: Path, rows: int) -> Path:
    rng = np.random.default_rng(5)
    pl.DataFrame(
        {
            "user_id": [f"n{i}" for i in range(rows)],
            "event": ["x"] * rows,
            "ts": ["2026-06-01"] * rows,
            "noise": rng.integers(0, 2**62, rows).astype(str),
        }
    ).write_csv(path)
    return path


def _fill(folder: Path) -> None:
    """Take every byte still free on ``folder``'s filesystem."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


def _full_disk_checks(home: Path, src: Path, out_dir: Path, run, fill=None) -> None:
    before = snapshot(home)
    for kind in ("events", "users"):
        message = run("ingest", kind, str(src), "--home", str(home))
        assert message.startswith(f"no space left on device while writing {home}/{kind}/")
        assert message.endswith(".parquet; the store is unchanged")
        assert snapshot(home) == before  # byte-identical, no temporary file left
    if fill is not None:
        fill(out_dir)
    message = run("eval", "--rule", "TRUE", "--as-of", AS_OF, "--out",
                  str(out_dir / "all.parquet"), "--home", str(home))
    assert message == (
        f"no space left on device while writing {out_dir}/all.parquet; nothing was written"
    )
    assert snapshot(home) == before
    assert Store(home).scan_users().collect().height == 300


def test_full_disk_is_one_line_and_the_store_is_byte_identical(
    small_home, tmp_path, monkeypatch, capsys, cli
):
    src = _noise_csv(tmp_path / "big.csv", 100_000)
    if not IS_ROOT:  # no tmpfs without root: the OS error the writers would get
        home = tmp_path / "home"
        shutil.copytree(small_home, home)
        _simulate_full_disk(monkeypatch)
        _full_disk_checks(home, src, tmp_path, _in_process(capsys))
        return
    with nearly_full_disk(small_home, tmp_path / "small_fs", spare=300_000) as home:

        def run(*args: str) -> str:
            return one_error_line(cli(*args))

        _full_disk_checks(home, src, home.parent, run, fill=_fill)
        message = run("segment", "create", "many", "--ids-file", str(src), "--home", str(home))
        assert message == f"the disk is full: cannot write the catalog {home}/catalog.sqlite"
        assert [s.name for s in Store(home).catalog.list()] == ["vip"]


def _simulate_full_disk(monkeypatch) -> None:
    def full(self, file, *args, **kwargs):
        Path(file).write_bytes(b"PAR1 half")
        raise pl.exceptions.ComputeError(
            "parquet: File out of specification: underlying IO error: No space left on "
            "device (os error 28)"
        )

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full)
    monkeypatch.setattr(pl.DataFrame, "write_csv", full)


def _in_process(capsys):
    def run(*args: str) -> str:
        assert main(list(args)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: "), err
        return err[len("error: "):].rstrip("\n")

    return run


def test_full_disk_reported_by_polars_is_one_line_too(home, tmp_path, monkeypatch, capsys):
    """Polars wraps the OS error (``... (os error 28)``); simulated where no tmpfs can be
    mounted, and for the CSV writer."""
    src = _noise_csv(tmp_path / "big.csv", 1_000)
    _simulate_full_disk(monkeypatch)
    _full_disk_checks(home, src, tmp_path, _in_process(capsys))
    assert not list(tmp_path.glob("*all.parquet"))
    with store_lock(home):  # the lock is free again
        pass
