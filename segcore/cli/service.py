"""``segcore serve`` (the membership service, docs/service.md) and ``segcore token
create|list|revoke`` (its bearer tokens)."""

from __future__ import annotations

import argparse
import ipaddress
import sys

from segcore.cli.output import print_json, store_from, whole_number
from segcore.errors import UsageError
from segcore.lang.durations import parse_duration
from segcore.store.tokens import SCOPES, Tokens

KEEP_ALIVE_S = 65  # seconds an idle connection stays open (see uvicorn_options)


def register(sub, common: argparse.ArgumentParser) -> None:
    """Add the ``serve`` and ``token`` commands."""
    p = sub.add_parser(
        "serve", parents=[common], help="serve segment memberships over HTTP",
        description="The membership service: saved segments' members, user lookups and an "
                    "incremental sync feed as JSON over HTTP (docs/service.md). Requests need "
                    "a bearer token (segcore token create NAME).")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this computer only)")
    p.add_argument("--port", type=whole_number(1, 65535), default=8765,
                   help="port (default 8765)")
    p.add_argument("--tick", default="1 minute",
                   help="'now' is the clock rounded down to this (default '1 minute')")
    p.add_argument("--now", help="serve as if the clock read this instant or date (demos)")
    p.add_argument("--rate", type=float, default=200.0,
                   help="requests per second per token (default 200)")
    p.add_argument("--limit-loopback", action="store_true",
                   help="rate-limit clients on this computer too (default: only others; "
                        "turn on behind a local proxy that does not send X-Forwarded-For)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow binding an address other than loopback")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("token", help="bearer tokens of the service",
                       description="Create, list and revoke the service's bearer tokens "
                                   "(stored hashed in the catalog).")
    tsub = p.add_subparsers(dest="token_command", metavar="ACTION", parser_class=type(p))
    tsub.required = True
    c = tsub.add_parser("create", parents=[common], help="create a token and print it once")
    c.add_argument("name")
    c.add_argument("--scope", choices=SCOPES, default="read",
                   help="read (lookups) or admin (also tokens and refreshes); default read")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(func=cmd_token_create)
    c = tsub.add_parser("list", parents=[common], help="list tokens (never their values)")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(func=cmd_token_list)
    c = tsub.add_parser("revoke", parents=[common], help="revoke a token")
    c.add_argument("name")
    c.set_defaults(func=cmd_token_revoke)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from segcore.service.app import create_app
    except ModuleNotFoundError as exc:
        raise UsageError(f"segcore serve needs the service extra ({exc.name} is missing): "
                         "pip install 'segcore[service]'") from None
    if not _loopback(args.host) and not args.allow_remote:
        raise UsageError(f"--host {args.host} is not this computer only: add --allow-remote "
                         "to serve the network (put TLS in front of it)")
    store = store_from(args)
    tick = parse_duration(args.tick).total_seconds()
    app = create_app(store.home, tick=tick, now=args.now, limits=_limits(args))
    print(f"segcore serve: http://{args.host}:{args.port}/v1/health (store {store.home}); "
          f"docs at /docs", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, **uvicorn_options())
    return 0


def uvicorn_options() -> dict[str, object]:
    """How ``segcore serve`` runs uvicorn. Idle keep-alive connections stay open
    ``KEEP_ALIVE_S`` (uvicorn's default is 5 s, as long as httpx keeps them): with equal
    times, or a client or server slowed by a busy machine, the server closed connections
    a client had just sent its next request on ("Server disconnected without sending a
    response")."""
    return {"log_level": "warning", "timeout_keep_alive": KEEP_ALIVE_S}


def _limits(args: argparse.Namespace):
    from segcore.service.limits import Limits

    if args.rate <= 0:
        raise UsageError("--rate must be positive")
    return Limits(rate=args.rate, burst=max(int(args.rate * 2), 1),
                  limit_loopback=args.limit_loopback)


def cmd_token_create(args: argparse.Namespace) -> int:
    store = store_from(args)
    token = Tokens(store.catalog_path).create(args.name, args.scope)
    if args.json:
        print_json({"name": args.name, "scope": args.scope, "token": token})
    else:
        print(token)
        print(f"token {args.name!r} ({args.scope}): shown once, keep it secret",
              file=sys.stderr)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    from segcore.service.state import State

    store = store_from(args)
    uses = State(store.home).token_use()
    rows = [{**t.to_dict(), **uses.get(t.name, {"last_used": None, "requests": 0})}
            for t in Tokens(store.catalog_path).list()]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no tokens (create one with `segcore token create NAME`)")
    for r in rows:  # ok-loop: one line per token
        print(f"{r['name']}\t{r['scope']}\tcreated {r['created_at']}\t"
              f"last used {r['last_used'] or 'never'}")
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    Tokens(store_from(args).catalog_path).revoke(args.name)
    print(f"token {args.name!r} revoked")
    return 0
