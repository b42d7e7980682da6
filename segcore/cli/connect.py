"""``segcore connect``: read events or users where they already are (sources.toml)."""

from __future__ import annotations

import argparse

from segcore.cli.ingest import mapping_option
from segcore.cli.output import print_json, store_from
from segcore.engine.choice import Engine
from segcore.engine.sql.engines import prepare
from segcore.errors import UsageError
from segcore.store.sources import Source, connect, read_sources, write_source

EPILOG = """examples:
  segcore connect events --parquet 'lake/events/**/*.parquet' --map user_id=uid --map ts=time
  segcore connect users --duckdb warehouse.duckdb --table crm.customers --map user_id=id
  segcore connect events --spark-table lake.events --spark-master spark://host:7077
  segcore connect show
  segcore connect events --off        # back to the store's own files
"""


def run(args) -> int:
    store = store_from(args, must_exist=args.kind != "show")
    if args.kind == "show":
        sources = {k: s.to_toml() for k, s in read_sources(store.home).items()}
        if args.json:
            print_json(sources)
        else:
            print("\n".join(sources.values()) if sources else "no connected sources")
        return 0
    if args.off:
        if (args.parquet or args.duckdb or args.table or args.spark_table or args.map
                or args.event):
            raise UsageError("--off takes no other source options")
        write_source(store.home, None, args.kind)
        payload = {"kind": args.kind, "source": None,
                   "summary": f"{args.kind}: read from the store's own files"}
    else:
        if args.table and not args.duckdb:
            raise UsageError("--table goes with --duckdb FILE")
        source = Source(args.kind, parquet=args.parquet, duckdb=args.duckdb, table=args.table,
                        spark_table=args.spark_table, mapping=mapping_option(args.map),
                        event=args.event)
        if source.spark_table is not None:  # checked in the Spark session of the master
            prepare(Engine("spark", args.spark_master))
        columns = connect(store.home, source)
        payload = {
            "kind": args.kind,
            "source": source.where,
            "columns": {c: str(t) for c, t in columns.items()},
            "summary": f"{args.kind}: read from the {source.where} ({len(columns)} columns)",
        }
    if args.json:
        print_json(payload)
    else:
        print(payload["summary"])
    return 0


def register(sub, common: argparse.ArgumentParser) -> None:
    """Add the ``connect`` command."""
    p = sub.add_parser(
        "connect",
        parents=[common],
        help="read events or users from a Parquet dataset, a DuckDB table or a Spark table, "
        "without copying",
        description="Point the store's events or users at data where it already lives (saved "
        "in <home>/sources.toml); the catalog stays in the store. Mapping as in ingest.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("kind", choices=["events", "users", "show"])
    p.add_argument("--parquet", metavar="PATH",
                   help="a Parquet file, folder (hive partitions become columns) or glob")
    p.add_argument("--duckdb", metavar="FILE", help="a DuckDB database file (with --table)")
    p.add_argument("--table", metavar="NAME", help="table or schema.table in the DuckDB file")
    p.add_argument("--spark-table", metavar="NAME",
                   help="a Spark table or view (read by the spark engine only)")
    p.add_argument("--spark-master", metavar="URL",
                   help="with --spark-table: the Spark master to check it on (default "
                   "$SEGCORE_SPARK_MASTER, else local[2])")
    p.add_argument("--map", action="append", metavar="TARGET=SOURCE",
                   help="read column TARGET from SOURCE, e.g. --map user_id=uid")
    p.add_argument("--event", metavar="NAME", help="events: one event name for every row")
    p.add_argument("--off", action="store_true", help="disconnect: use the store's own files")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)
