"""``segcore config show`` / ``segcore config set KEY VALUE``: the store's settings
(the report time zone and the first day of the week, docs/rules.md section 2)."""

from __future__ import annotations

import argparse

from segcore.cli.output import print_json, store_from
from segcore.store.settings import KEYS, read_settings, set_setting


def register(sub, common: argparse.ArgumentParser) -> None:
    """Add the ``config`` command group."""
    cfg = sub.add_parser("config", help="store settings: report time zone, week start")
    cs = cfg.add_subparsers(dest="config_command", metavar="ACTION")
    cs.required = True
    p = cs.add_parser("show", parents=[common], help="print the store's settings")
    p.set_defaults(func=cmd_show)
    p = cs.add_parser("set", parents=[common], help="change one setting",
                      description="timezone: an IANA name (Europe/Berlin, UTC); "
                      "week_start: monday .. sunday")
    p.add_argument("key", choices=sorted(KEYS))
    p.add_argument("value")
    p.set_defaults(func=cmd_set)


def cmd_show(args) -> int:
    print_json(read_settings(store_from(args).home))
    return 0


def cmd_set(args) -> int:
    print_json(set_setting(store_from(args).home, args.key, args.value))
    return 0
