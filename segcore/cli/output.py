"""Helpers shared by CLI commands: the store from ``--home``, JSON and table output."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections.abc import Callable
from typing import Any

import polars as pl

from segcore.api import Store
from segcore.engine.choice import Engine
from segcore.errors import StoreError
from segcore.lang.dates import DEFAULT_AS_OF_RULE
from segcore.query.auto import is_auto

MAX_ROWS_SHOWN = 1_000_000_000  # --limit, --events: more than any store holds


ENGINE_HELP = ("auto, polars, duckdb, clickhouse, spark, or a Spark master URL "
               "(spark://host:7077, local[4], sc://host:15002); default $SEGCORE_ENGINE, "
               "else auto: polars, or duckdb for some analytics on stores too large for "
               "the event cache (docs/engines.md, Automatic choice)")


def add_engine(p: argparse.ArgumentParser) -> None:
    """Add ``--engine`` and ``--spark-master`` to a command."""
    p.add_argument("--engine", help=ENGINE_HELP)
    p.add_argument("--spark-master",
                   help="Spark master URL (default $SPARK_MASTER, else local[2]; "
                        "SPARK_REMOTE for Spark Connect)")


def engine_from(args: argparse.Namespace) -> Engine | None:
    """The engine of ``--engine``/``--spark-master`` (default ``$SEGCORE_ENGINE``); None
    when neither names one (or they say ``auto``): the runners then choose per analytic
    (:mod:`segcore.query.auto`)."""
    import os

    name = getattr(args, "engine", None) or os.environ.get("SEGCORE_ENGINE") or None
    master = getattr(args, "spark_master", None)
    if is_auto(name) and not master:
        return None
    return Engine.parse(None if is_auto(name) else name, master)


def whole_number(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse ``type``: a whole number from ``lo`` to ``hi``, else one clear error."""

    def parse(text: str) -> int:
        t = text.strip().replace("_", "")
        if re.fullmatch(r"[+-]?\d{1,30}", t) and lo <= int(t) <= hi:
            return int(t)
        shown = text if len(text) <= 40 else f"{text[:16]}... ({len(text):,} characters)"
        raise argparse.ArgumentTypeError(
            f"expected a whole number from {lo:,} to {hi:,}, got {shown!r}"
        )

    parse.__name__ = "whole number"
    return parse


AS_OF_HELP = ("date (end of that day in the report zone) or ISO timestamp; default: "
              + DEFAULT_AS_OF_RULE.replace("%", "%%") + " (the instant used is printed on stderr)")


def default_as_of_arg(args: argparse.Namespace) -> str | None:
    """Fill a command's missing ``--as-of`` with the store's default instant (the rule
    of :data:`AS_OF_HELP`); the note naming it, for stderr once the command succeeded."""
    if getattr(args, "as_of", "") is not None:
        return None
    default = store_from(args).default_as_of()
    args.as_of = default.text()
    return f"as of {default.describe()}; --as-of to choose"


def store_from(args, *, must_exist: bool = True) -> Store:
    """The store named by ``--home`` (or the default home).

    The home folder must exist (a mistyped ``--home`` is an error, not an empty store
    with 0 members), except for ``sample`` and ``ingest``, which create it, and ``info``,
    which says how to.
    """
    store = Store(getattr(args, "home", None))
    if store.home.exists() and not store.home.is_dir():
        raise StoreError(f"{store.home} is a file, not a store folder: give --home a folder")
    if must_exist and not store.home.is_dir():
        raise StoreError(
            f"no store at {store.home}: the folder does not exist (create one with "
            f"`segcore sample --home {store.home}` or `segcore ingest --home {store.home} ...`)"
        )
    return store


def _default(o: Any) -> Any:
    if isinstance(o, dt.datetime):
        return o.isoformat().replace("+00:00", "Z")
    if isinstance(o, dt.date):
        return o.isoformat()
    if isinstance(o, pl.DataFrame):
        return o.to_dicts()
    if isinstance(o, set | frozenset | tuple):
        return list(o)
    return str(o)


def print_json(payload: Any) -> None:
    """Print ``payload`` as indented JSON on stdout."""
    json.dump(payload, sys.stdout, indent=2, default=_default, ensure_ascii=False)
    sys.stdout.write("\n")


def fmt_int(n: int) -> str:
    """``1234567`` -> ``1,234,567``."""
    return f"{n:,}"


def print_table(df: pl.DataFrame, max_rows: int = 50) -> None:
    """Print a DataFrame as a plain aligned table."""
    with pl.Config(tbl_rows=max_rows, tbl_hide_dataframe_shape=True,
                   tbl_formatting="ASCII_MARKDOWN", tbl_hide_column_data_types=True,
                   fmt_str_lengths=60, tbl_width_chars=200):
        print(df)
