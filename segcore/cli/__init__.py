"""The ``segcore`` command line: one module per command group, JSON out.

Bad input exits with status 2 and one line on stderr; no traceback is ever shown
(set ``SEGCORE_DEBUG=1`` to see one).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from segcore.cli.output import default_as_of_arg
from segcore.errors import SegcoreError
from segcore.lang.dates import ReportZone, report_zone
from segcore.store.events import default_home
from segcore.store.settings import store_zone

# Each module defines ``register(subparsers, common)`` adding these commands.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "segcore.cli.data": ("sample", "info"),
    "segcore.cli.ingest": ("ingest",),
    "segcore.cli.connect": ("connect",),
    "segcore.cli.segments": ("eval", "sql", "user", "segment"),
    "segcore.cli.segment_analytics": ("trend", "reach", "profile", "overlap", "engagement"),
    "segcore.cli.event_analytics": ("funnel", "events"),
    "segcore.cli.retention": ("retention", "lifecycle", "stickiness"),
    "segcore.cli.service": ("serve", "token"),
    "segcore.cli.config": ("config",),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one clear line, exit 2
        self.exit(2, f"error: {self.prog}: {message}\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: every command (from every module that is present), or with
    ``command`` only its module's commands, so that a call imports only what it runs."""
    common = _Parser(add_help=False)
    common.add_argument("--home", help="store folder (default: $SEGCORE_HOME or ./data)")
    common.add_argument("--tz", help="report time zone (IANA name, e.g. Europe/Berlin) for "
                        "dates, days and weeks; default: the store's setting, else UTC")
    parser = _Parser(prog="segcore", description="Exact user segments over a Parquet event store.")
    parser.add_argument("--version", action="version", version="segcore 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, commands in COMMAND_MODULES.items():
        if command is not None and command not in commands:
            continue
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(sub, common)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The command ``argv`` starts with, if it is a known one (else None: help, version
    or an error, which need every command)."""
    first = argv[0] if argv else None
    return first if any(first in c for c in COMMAND_MODULES.values()) else None


def _zone(args: argparse.Namespace) -> ReportZone:
    home = getattr(args, "home", None) or default_home()
    return store_zone(home, getattr(args, "tz", None))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``segcore`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_command(argv)).parse_args(argv)
    try:
        with report_zone(_zone(args)):
            note = default_as_of_arg(args)
            code = args.func(args)
        if note and not code:
            print(note, file=sys.stderr)
    except SegcoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # last resort: never a traceback for users
        if os.environ.get("SEGCORE_DEBUG"):
            raise
        print(f"error: internal error ({type(exc).__name__}: {exc}); "
              "set SEGCORE_DEBUG=1 for details", file=sys.stderr)
        return 1
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
