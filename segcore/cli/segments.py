"""CLI: ``segment ...``, ``eval``, ``user`` and ``sql``."""

from __future__ import annotations

import codecs
import sys
import time
from pathlib import Path

import polars as pl

from segcore.cli.output import (
    AS_OF_HELP,
    MAX_ROWS_SHOWN,
    add_engine,
    engine_from,
    fmt_int,
    print_json,
    print_table,
    store_from,
    whole_number,
)
from segcore.errors import SegcoreError, UsageError
from segcore.lang.dates import resolve_as_of
from segcore.lang.parser import MAX_RULE_CHARS
from segcore.query import MembersQuery, SqlQuery, Target, members_actors, run_sql
from segcore.query.auto import choose_engine
from segcore.store.files import atomic_path
from segcore.store.outputs import check_output_path

# The commands that change segments import segcore.segments (and the catalog, sqlite3)
# when they run: eval, sql and user do not need it.


def add_target(p, required: bool = True) -> None:
    """``--rule TEXT`` | ``--rule-file FILE`` | ``--segment NAME``."""
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument("--rule", help="rule text (use - to read it from stdin)")
    g.add_argument("--rule-file", help="file holding the rule text")
    g.add_argument("--segment", help="name of a saved segment")


def target(args) -> tuple[str | None, str | None]:
    """(rule text, segment name) from the parsed target options."""
    rule = args.rule
    if rule == "-":
        rule = decode_rule(_read_limited(sys.stdin.buffer), "the rule on stdin")
    if getattr(args, "rule_file", None):
        rule = read_rule_file(Path(args.rule_file))
    return rule, args.segment


# a rule is at most MAX_RULE_CHARS characters, each at most 4 bytes of UTF-8
_MAX_RULE_BYTES = 4 * MAX_RULE_CHARS + 4


def _read_limited(stream) -> bytes:
    return stream.read(_MAX_RULE_BYTES + 1)


def read_rule_file(path: Path) -> str:
    """The text of a rule file (UTF-8, an optional BOM; UTF-16 with its BOM), or a UsageError.

    Pipes (``<(...)``, ``/dev/stdin``) work; folders, empty files and text that is not
    valid UTF-8 are refused with one line.
    """
    name = str(path)
    if not path.exists():
        raise UsageError(f"rule file {name!r} does not exist")
    if path.is_dir():
        raise UsageError(f"rule file {name!r} is a folder, not a file")
    try:
        with path.open("rb") as f:
            data = _read_limited(f)
    except OSError as exc:
        raise UsageError(f"cannot read rule file {name!r}: {exc.strerror or exc}") from None
    return decode_rule(data, f"rule file {name!r}")


def decode_rule(data: bytes, where: str) -> str:
    """Rule bytes as text: UTF-8 (a BOM is dropped), or UTF-16 when it starts with its BOM."""
    if len(data) > _MAX_RULE_BYTES:
        raise UsageError(f"{where} is too long (a rule has at most {MAX_RULE_CHARS:,} characters)")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise UsageError(f"{where} is not valid UTF-16 text (byte {exc.start + 1}); "
                             "save it as UTF-8") from None
    else:
        if data.startswith(codecs.BOM_UTF8):
            data = data[len(codecs.BOM_UTF8):]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"{where} is not valid UTF-8 text (byte {exc.start + 1} is "
                             f"0x{data[exc.start]:02x}); save it as UTF-8") from None
        if "\x00" in text:
            raise UsageError(f"{where} holds NUL bytes (UTF-16 without a BOM?); "
                             "save it as UTF-8")
    if not text.strip():
        raise UsageError(f"{where} is empty")
    return text


def iso(T) -> str:
    return T.isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------- eval
def cmd_eval(args) -> int:
    store = store_from(args)
    if args.out:
        check_output_path(store, args.out, "--out")
    rule, segment = target(args)
    T = resolve_as_of(args.as_of)
    engine = choose_engine(store, "members", engine_from(args))  # auto: says which
    started = time.perf_counter()
    members = members_actors(store, MembersQuery(Target(rule, segment), iso(T)), engine=engine)
    seconds = time.perf_counter() - started
    if args.limit < 0:
        raise UsageError(f"--limit must be 0 or more, got {args.limit}")
    shown = members.height if args.all else args.limit
    if args.out:
        write_members(store, members, Path(args.out))
    payload = {
        "count": members.height,
        "as_of": iso(T),
        "engine": str(engine),
        "seconds": round(seconds, 4),
        "rule": rule,
        "segment": segment,
        "out": args.out,
        "sample": members["user_id"].head(shown).to_list(),
        "complete": shown >= members.height,
    }
    if args.json:
        print_json(payload)
    else:
        print(f"{fmt_int(members.height)} members as of {iso(T)} "
              f"({engine}, {seconds:.3f} s)")
        if args.out:
            print(f"wrote {args.out}")
        elif members.height:
            more = " ..." if members.height > len(payload["sample"]) else ""
            print(f"  {', '.join(payload['sample'])}{more}")
    return 0


def write_members(store, members: pl.DataFrame, out: Path) -> None:
    """Members with their attributes to CSV or Parquet (atomically), never into the store."""
    check_output_path(store, out, "--out")
    frame = members.join(store.scan_users().collect(), on="user_id", how="left")
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise UsageError(f"--out must end in .csv or .parquet, got {out.name!r}")
    with atomic_path(out) as tmp:
        if suffix == ".csv":
            flat = frame.with_columns(
                [pl.col(c).list.join("|") for c, t in frame.schema.items()
                 if isinstance(t, pl.List)])
            flat.write_csv(tmp)
        else:
            frame.write_parquet(tmp)


# --------------------------------------------------------------------------- sql
def cmd_sql(args) -> int:
    store = store_from(args)
    rule, segment = target(args)
    query = SqlQuery(Target(rule, segment), iso(resolve_as_of(args.as_of)), args.dialect,
                     events_table=args.events_table or None,
                     users_table=args.users_table or None)
    print(run_sql(store, query).sql)
    return 0


# --------------------------------------------------------------------------- user
def cmd_user(args) -> int:
    store = store_from(args)
    info = store.user(args.user_id, as_of=args.as_of, last_events=args.events)
    if args.json:
        print_json(info)
        return 0
    print(f"user {info['user_id']}  (as of {info['as_of']})")
    for k, v in info["attributes"].items():
        print(f"  {k:24} {v}")
    print(f"events: {fmt_int(info['events'])}  first: {info['first_event']}  "
          f"last: {info['last_event']}")
    if info["latest_events"]:
        print_table(pl.DataFrame(info["latest_events"]))
    segs = info["segments"]
    print("segments: " + (", ".join(segs) if segs else "(none)"))
    return 0


# --------------------------------------------------------------------------- segment
def _seg_dict(seg) -> dict:
    return seg.to_dict()


def cmd_list(args) -> int:
    store = store_from(args)
    segs = store.catalog.list(search=args.search)
    rows = []
    for s in segs:  # ok-loop: one row per saved segment
        row = {"name": s.name, "kind": s.kind, "version": s.version,
               "description": s.description, "updated_at": s.updated_at}
        if args.sizes:
            # one broken segment (e.g. damaged behind segcore's back) spoils only its row
            try:
                row["members"], row["error"] = store.count(
                    segment=s.name, as_of=args.as_of, engine=engine_from(args)), None
            except SegcoreError as exc:
                row["members"], row["error"] = None, str(exc)
        rows.append(row)
    if args.json:
        print_json({"segments": rows})
    elif not rows:
        print("no segments" + (f" matching {args.search!r}" if args.search else ""))
    else:
        table = pl.DataFrame(rows, infer_schema_length=None)
        if args.sizes and table["error"].null_count() == table.height:
            table = table.drop("error")
        print_table(table)
    return 0


def cmd_show(args) -> int:
    store = store_from(args)
    seg = store.catalog.get(args.name)
    payload = _seg_dict(seg)
    payload["members"] = store.count(segment=seg.name, as_of=args.as_of,
                                     engine=engine_from(args))
    if args.json:
        print_json(payload)
        return 0
    print(f"{seg.name}  ({seg.kind}, version {seg.version})")
    if seg.description:
        print(f"  {seg.description}")
    if seg.rule_text:
        print(f"  rule: {seg.rule_text}")
    print(f"  members now: {fmt_int(payload['members'])}")
    print(f"  created {seg.created_at}, updated {seg.updated_at}")
    return 0


def cmd_create(args) -> int:
    from segcore.segments import create_segment

    store = store_from(args)
    rule, _ = target(args) if (args.rule or args.rule_file) else (None, None)
    seg, report = create_segment(store, args.name, rule,
                                 ids=args.ids_file, description=args.description or "")
    if args.json:
        print_json({"segment": _seg_dict(seg), "upload": report})
        return 0
    print(f"created {seg.kind} segment {seg.name!r} (version {seg.version})")
    if report:
        print(f"  {fmt_int(report['rows'])} rows, {fmt_int(report['members'])} members, "
              f"{fmt_int(report['duplicates'])} duplicates, {fmt_int(report['unknown'])} "
              "ids not found in the store")
        if report.get("unknown_examples"):
            print("  unknown ids, e.g.: " + ", ".join(report["unknown_examples"][:10]))
    return 0


def cmd_edit(args) -> int:
    from segcore.segments import edit_segment

    store = store_from(args)
    rule = None
    if args.rule or args.rule_file:
        rule, _ = target(args)
    seg = edit_segment(store, args.name, rule=rule, description=args.description,
                       new_name=args.rename, expect_version=args.expect_version)
    if args.json:
        print_json(_seg_dict(seg))
    else:
        print(f"saved {seg.name!r} (version {seg.version})")
    return 0


def cmd_clone(args) -> int:
    seg = store_from(args).catalog.clone(args.name, args.new_name)
    print_json(_seg_dict(seg)) if args.json else print(f"cloned {args.name!r} to {seg.name!r}")
    return 0


def cmd_delete(args) -> int:
    store_from(args).catalog.delete(args.name)
    print(f"deleted {args.name!r} (segcore segment restore {args.name!r} undoes it)")
    return 0


def cmd_restore(args) -> int:
    seg = store_from(args).catalog.restore(args.name)
    print(f"restored {seg.name!r} (version {seg.version})")
    return 0


def _ids(n: int) -> str:
    return f"{fmt_int(n)} id" + ("" if n == 1 else "s")


def _examples(ids: list[str]) -> str:
    return f", e.g.: {', '.join(ids)}" if ids else ""


def cmd_members(args) -> int:
    """``segment add`` and ``segment remove``: ids by hand or from a file."""
    from segcore.segments import add_members, remove_members

    store = store_from(args)
    change = add_members if args.segment_command == "add" else remove_members
    report = change(store, args.name, args.ids or None, ids_file=args.ids_file,
                    expect_version=args.expect_version)
    if args.json:
        print_json(report.to_dict())
        return 0
    ex = report.examples
    if report.action == "add":
        print(f"added {_ids(report.added)} to {report.segment!r} "
              f"(version {report.version}): {fmt_int(report.member_count)} members stored")
        if report.already_members:
            one = report.already_members == 1
            print(f"  {_ids(report.already_members)} already "
                  f"{'a member' if one else 'members'} (left alone)"
                  + _examples(ex.get("already_members", [])))
        if report.unknown:
            print(f"  {_ids(report.unknown)} not found in the store (kept: they may "
                  "arrive with a later import)" + _examples(ex.get("unknown", [])))
    else:
        print(f"removed {_ids(report.removed)} from {report.segment!r} "
              f"(version {report.version}): {fmt_int(report.member_count)} members stored")
        if report.not_members:
            one = report.not_members == 1
            print(f"  {_ids(report.not_members)} {'was not a member' if one else 'were not members'}"
                  " (ignored)"
                  + _examples(ex.get("not_members", [])))
    if report.duplicates:
        print(f"  {_ids(report.duplicates)} repeated (counted once)")
    print(f"  undo: segcore segment revert {report.segment!r} {report.version - 1}")
    return 0


def cmd_freeze(args) -> int:
    from segcore.segments import freeze_segment

    store = store_from(args)
    seg = freeze_segment(store, args.name, args.new_name, as_of=resolve_as_of(args.as_of),
                         description=args.description)
    if args.json:
        print_json(_seg_dict(seg))
    else:
        print(f"froze {args.name!r} into static segment {seg.name!r}: "
              f"{fmt_int(seg.member_count)} members ({seg.description})")
    return 0


def cmd_revert(args) -> int:
    seg = store_from(args).catalog.revert(args.name, args.version,
                                          expect_version=args.expect_version)
    if args.json:
        print_json(_seg_dict(seg))
    else:
        size = f", {fmt_int(seg.member_count)} members stored" if seg.is_static else ""
        print(f"{seg.name!r} is back to version {args.version} (now version {seg.version}{size})")
    return 0


def cmd_history(args) -> int:
    rows = store_from(args).catalog.history(args.name)
    if args.json:
        print_json({"history": rows})
    else:
        print_table(pl.DataFrame(rows).select(
            [c for c in ("version", "action", "saved_at", "name", "member_count", "note",
                         "rule_text", "description")
             if rows and c in rows[0]]))
    return 0


def register(sub, common) -> None:
    """Add the ``eval``, ``sql``, ``user`` and ``segment`` commands."""
    p = sub.add_parser("eval", parents=[common], help="members of a rule or segment")
    add_target(p)
    p.add_argument("--as-of", help=AS_OF_HELP)
    add_engine(p)
    p.add_argument("--out", help="write members with attributes to FILE.csv or FILE.parquet")
    p.add_argument("--limit", type=whole_number(0, MAX_ROWS_SHOWN), default=10,
                   help="ids shown, and listed under \"sample\" with --json (default 10)")
    p.add_argument("--all", action="store_true",
                   help="show every member's id (with --json: \"sample\" holds all of them)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("sql", parents=[common], help="the rule compiled to SQL")
    add_target(p)
    p.add_argument("--dialect", required=True,
                   help="duckdb, spark, clickhouse, bigquery, snowflake, postgres or trino")
    p.add_argument("--as-of", help=AS_OF_HELP)
    p.add_argument("--events-table", help="table name instead of the store's Parquet files")
    p.add_argument("--users-table", help="table name instead of the store's Parquet files")
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser("user", parents=[common], help="a user's attributes, events, segments")
    p.add_argument("user_id")
    p.add_argument("--as-of", help=AS_OF_HELP)
    p.add_argument("--events", type=whole_number(0, MAX_ROWS_SHOWN), default=20, help="latest events shown")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_user)

    seg = sub.add_parser("segment", help="saved segments")
    ss = seg.add_subparsers(dest="segment_command", metavar="ACTION", parser_class=type(seg))
    ss.required = True

    p = ss.add_parser("list", parents=[common], help="list saved segments")
    p.add_argument("--search")
    p.add_argument("--sizes", action="store_true", help="also count members now")
    p.add_argument("--as-of", help=AS_OF_HELP)
    p.add_argument("--json", action="store_true")
    add_engine(p)
    p.set_defaults(func=cmd_list)

    p = ss.add_parser("show", parents=[common], help="a segment's definition and size")
    p.add_argument("name")
    p.add_argument("--as-of", help=AS_OF_HELP)
    p.add_argument("--json", action="store_true")
    add_engine(p)
    p.set_defaults(func=cmd_show)

    p = ss.add_parser("create", parents=[common], help="save a new segment")
    p.add_argument("name")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--rule")
    g.add_argument("--rule-file")
    g.add_argument("--ids-file", help="CSV (user_id column) or text file of ids")
    p.add_argument("--description")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_create, segment=None)

    p = ss.add_parser("edit", parents=[common], help="change a segment")
    p.add_argument("name")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--rule")
    g.add_argument("--rule-file")
    p.add_argument("--description")
    p.add_argument("--rename", help="new name")
    p.add_argument("--expect-version", type=whole_number(1, 2**63 - 1),
                   help="refuse the edit if the segment is no longer at this version")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_edit, segment=None)

    p = ss.add_parser("clone", parents=[common], help="copy a segment")
    p.add_argument("name")
    p.add_argument("new_name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_clone)

    for action, text in (("add", "add user ids to a static segment"),
                         ("remove", "remove user ids from a static segment")):
        p = ss.add_parser(action, parents=[common], help=text)
        p.add_argument("name")
        p.add_argument("ids", nargs="*", metavar="ID", help="user ids")
        p.add_argument("--ids-file", help="CSV (user_id column) or text file of ids")
        p.add_argument("--expect-version", type=int,
                       help="refuse the change if the segment is no longer at this version")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=cmd_members)

    p = ss.add_parser("freeze", parents=[common],
                      help="a new static segment with a segment's members now (or --as-of)")
    p.add_argument("name")
    p.add_argument("new_name")
    p.add_argument("--as-of", help=AS_OF_HELP)
    p.add_argument("--description")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_freeze)

    p = ss.add_parser("revert", parents=[common],
                      help="bring a segment back to an earlier version (see history)")
    p.add_argument("name")
    p.add_argument("version", type=int)
    p.add_argument("--expect-version", type=int,
                   help="refuse the change if the segment is no longer at this version")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_revert)

    for action, fn, text in (("delete", cmd_delete, "delete (history keeps it; restore undoes)"),
                             ("restore", cmd_restore, "restore a deleted segment"),
                             ("history", cmd_history, "every saved definition")):
        p = ss.add_parser(action, parents=[common], help=text)
        p.add_argument("name")
        if action == "history":
            p.add_argument("--json", action="store_true")
        p.set_defaults(func=fn)
