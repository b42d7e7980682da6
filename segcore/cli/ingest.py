"""``segcore ingest events|users FILE...`` and ``segcore ingest export --format TOOL FILE...``."""

from __future__ import annotations

import argparse
import sys

from segcore.cli.output import print_json, store_from
from segcore.errors import UsageError
from segcore.ingest import ingest, ingest_export
from segcore.ingest.readers import FORMATS
from segcore.ingest.tool_exports import TOOLS
from segcore.service.memberships import refresh_if_served

EPILOG = """\
formats (default from the extension: .csv .tsv .parquet .ndjson .jsonl .json):
  csv      every value read as text, then typed per column (ids stay text: 007)
  ndjson   one object per line (or a JSON array); a nested "properties" (events) or
           "traits" (users) object becomes columns
  segment  Segment-spec lines: track -> its event, page -> page_viewed,
           screen -> screen_viewed (events); identify -> users; other types ignored.
           userId (else anonymousId) -> user_id, messageId -> event_id
values are stored exactly as written (spaces kept; --trim removes them); ids follow one
  rule in every format: text without surrounding spaces, 17850.0 (text or float) = 17850
files: FILE may be a folder (every file below with a known extension) or a glob pattern
  ("exports/**/*.csv"); everything is validated first and written at once
timestamps: ISO 8601 with any offset (to UTC), naive = UTC (or --source-tz), dates = midnight,
  epoch s/ms/us, 12/1/2010 8:26 (month first, then day first), 31.12.2025, 20251231
exports of other tools (segcore ingest export --format TOOL; fills events AND users):
  segment, rudderstack  track/page/screen -> events, identify -> users (traits)
  mixpanel   raw event export lines -> events; people (Engage) profiles -> users
  amplitude  export zip (or its .json.gz files) -> events; user_properties -> users
  posthog    events export (JSONL/Parquet/CSV) -> events; person_properties, persons -> users
  .gz, .zip and folders are read; the mapping of every field is in docs/ingest.md
examples:
  segcore ingest events examples/orders.csv --map user_id=CustomerID --map ts=InvoiceDate --event charged
  segcore ingest users examples/crm.ndjson --skip-invalid   (rejects: <home>/rejects/crm-<time>...)
  segcore ingest events export.json --format segment
  segcore ingest export --format amplitude examples/exports/amplitude
  segcore ingest events retail/ --map user_id=CustomerID --map ts=InvoiceDate \
      --derive "event = CASE WHEN InvoiceNo LIKE 'C%' THEN 'cancelled' ELSE 'purchased' END" \
      --derive "amount = Quantity * UnitPrice" --key InvoiceNo,StockCode
"""


def mapping_option(pairs: list[str] | None) -> dict[str, str]:
    """``--map TARGET=SOURCE`` options as ``{target: source}`` (ingest and connect)."""
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


def _check_format(args: argparse.Namespace) -> None:
    if args.kind == "export":
        if args.format not in TOOLS:
            raise UsageError(
                f"ingest export needs --format {'|'.join(TOOLS)}"
                + (f" (not {args.format})" if args.format else "")
            )
        if args.map or args.event or args.derive or args.key or args.source_tz or args.if_imported:
            raise UsageError("--map, --event, --derive, --key, --source-tz and --if-imported do not apply "
                             "to ingest export")
    elif args.format in TOOLS and args.format not in FORMATS:
        raise UsageError(
            f"--format {args.format} is a tool export: use "
            f"segcore ingest export --format {args.format} FILE (fills events and users)"
        )


def run(args: argparse.Namespace) -> int:
    _check_format(args)
    bar = _Bar()
    common = dict(skip_invalid=args.skip_invalid, rejects_path=args.rejects, progress=bar,
                  encoding=args.encoding)
    store = store_from(args, must_exist=False)
    try:
        if args.kind == "export":
            result = ingest_export(store, args.files, format=args.format, **common)
        else:
            result = ingest(
                store,
                args.kind,
                args.files,
                format=args.format,
                mapping=mapping_option(args.map),
                event=args.event,
                trim=args.trim,
                derive=args.derive or (),
                key=args.key,
                source_tz=args.source_tz,
                if_imported=args.if_imported or "ask",
                **common,
            )
    finally:
        bar.close()
    served = refresh_if_served(store)  # the service's memberships follow the new version
    if served is not None:
        result["memberships"] = served
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
        help="import events or users from CSV, Parquet, NDJSON or Segment files, or a "
        "Segment/RudderStack/Mixpanel/Amplitude/PostHog export into both",
        description="Import events (appended, deduplicated by event_id) or users "
        "(upserted by user_id); 'export' reads another tool's raw export into both tables. "
        "Every file is validated before anything is written.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("kind", choices=["events", "users", "export"])
    p.add_argument("files", nargs="+", metavar="FILE", help="files, folders or glob patterns")
    p.add_argument(
        "--format",
        choices=list(dict.fromkeys([*FORMATS, *TOOLS])),
        help="events/users: default from each file's extension; export: the tool (required)",
    )
    p.add_argument(
        "--map",
        action="append",
        metavar="TARGET=SOURCE",
        help="read column TARGET from SOURCE, e.g. --map user_id=CustomerID",
    )
    p.add_argument("--event", metavar="NAME", help="one event name for every row")
    p.add_argument(
        "--derive",
        action="append",
        metavar="NAME=EXPR",
        help="add a column computed with a rule-language expression, e.g. "
        "--derive \"amount = Quantity * UnitPrice\" (repeatable, applied in order)",
    )
    p.add_argument(
        "--key",
        metavar="COLS",
        help="events: columns whose values make the event_id, e.g. InvoiceNo,StockCode "
        "(re-imported rows are then skipped)",
    )
    p.add_argument(
        "--if-imported",
        choices=["skip", "again"],
        help="events: a file whose content was imported before (same SHA-256) and whose "
        "rows have no event_id is refused unless 'skip' (leave it out) or 'again' (import "
        "it anyway, storing its events twice)",
    )
    p.add_argument(
        "--source-tz",
        metavar="ZONE",
        help="events/users: the IANA zone of timestamps without an offset, e.g. "
        "Europe/London (default UTC); around a clock change an ambiguous time is its "
        "first occurrence and a skipped one moves forward by the gap (both counted)",
    )
    p.add_argument(
        "--trim",
        action="store_true",
        help="remove spaces around text values (default: stored exactly as written)",
    )
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
