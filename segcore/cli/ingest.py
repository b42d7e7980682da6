"""``segcore ingest events|users FILE...``: import files into the store."""

from __future__ import annotations

import argparse
import sys

from segcore.cli.output import print_json, store_from
from segcore.errors import UsageError
from segcore.ingest import ingest
from segcore.ingest.readers import FORMATS

EPILOG = """\
formats (default from the extension: .csv .tsv .parquet .ndjson .jsonl .json):
  csv      every value read as text, then typed per column (ids stay text: 007)
  ndjson   one object per line (or a JSON array); a nested "properties" (events) or
           "traits" (users) object becomes columns
  segment  Segment-spec lines: track -> its event, page -> page_viewed,
           screen -> screen_viewed (events); identify -> users; other types ignored.
           userId (else anonymousId) -> user_id, messageId -> event_id
timestamps: ISO 8601 with any offset (to UTC), naive = UTC, dates = midnight UTC,
  epoch s/ms/us, 12/1/2010 8:26 (month first, then day first), 31.12.2025, 20251231
examples:
  segcore ingest events orders.csv --map user_id=CustomerID --map ts=InvoiceDate --event charged
  segcore ingest users crm.ndjson --skip-invalid   (rejects: <home>/rejects/crm-<time>...)
  segcore ingest events export.json --format segment
"""


def _mapping(pairs: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or []:  # ok-loop: a few --map options
        target, sep, source = pair.partition("=")
        if not sep or not target.strip() or not source.strip():
            raise UsageError(f"bad --map {pair!r}: write TARGET=SOURCE, e.g. user_id=CustomerID")
        out[target.strip()] = source.strip()
    return out


class _Bar:
    """A one-line progress bar on stderr, shown only when stderr is a terminal."""

    def __init__(self) -> None:
        self.on = sys.stderr.isatty()

    def __call__(self, fraction: float, message: str) -> None:
        if not self.on:
            return
        filled = int(round(fraction * 30))
        line = f"\r[{'#' * filled}{' ' * (30 - filled)}] {fraction:4.0%} {message}"
        sys.stderr.write(line[:100].ljust(100))
        sys.stderr.flush()

    def close(self) -> None:
        if self.on:
            sys.stderr.write("\r" + " " * 100 + "\r")
            sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    bar = _Bar()
    try:
        result = ingest(
            store_from(args, must_exist=False),
            args.kind,
            args.files,
            format=args.format,
            mapping=_mapping(args.map),
            event=args.event,
            skip_invalid=args.skip_invalid,
            rejects_path=args.rejects,
            progress=bar,
            encoding=args.encoding,
        )
    finally:
        bar.close()
    if args.json:
        print_json(result)
    else:
        print(result["summary"])
    return 0


def register(sub, common: argparse.ArgumentParser) -> None:
    """Add the ``ingest`` command."""
    p = sub.add_parser(
        "ingest",
        parents=[common],
        help="import events or users from CSV, Parquet, NDJSON or Segment files",
        description="Import events (appended, deduplicated by event_id) or users "
        "(upserted by user_id). Every file is validated before anything is written.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("kind", choices=["events", "users"])
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--format", choices=FORMATS, help="default: from each file's extension")
    p.add_argument(
        "--map",
        action="append",
        metavar="TARGET=SOURCE",
        help="read column TARGET from SOURCE, e.g. --map user_id=CustomerID",
    )
    p.add_argument("--event", metavar="NAME", help="one event name for every row")
    p.add_argument(
        "--skip-invalid",
        action="store_true",
        help="import the valid rows, write the rejected ones to a CSV file",
    )
    p.add_argument(
        "--rejects",
        metavar="FILE",
        help="where --skip-invalid writes rejected rows as read, plus __line and __reason "
        "(default: <home>/rejects/<first file>-<time>.rejected.csv, .ndjson for JSON input; "
        "never inside the store's data or catalog)",
    )
    p.add_argument(
        "--encoding",
        default="utf-8",
        help="text encoding of CSV/NDJSON files (default utf-8; e.g. latin-1)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)
