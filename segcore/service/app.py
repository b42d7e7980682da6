"""The membership service's HTTP API (FastAPI; ``segcore serve``; docs/service.md).

Every answer carries the ``data_version`` (and ``catalog_version``, ``as_of``) it was
computed at. Saved segments are read from materialized snapshots
(:mod:`segcore.service.memberships`); ad-hoc rules and channel filters go through the
query runners (:mod:`segcore.query`). Errors are JSON ``{"error": ..., "type": ...}``
with the CLI's messages.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import ipaddress
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from segcore.api import Store
from segcore.errors import (
    CatalogError,
    ConflictError,
    NotFoundError,
    SegcoreError,
    StoreError,
    UsageError,
)
from segcore.query import (
    MembersQuery,
    ReachQuery,
    Target,
    members_actors,
    reach_actors,
    run_members,
)
from segcore.service.limits import Limits, RateLimiter
from segcore.service.memberships import Memberships, Snapshot, catalog_signature, iso
from segcore.service.state import now_text
from segcore.store.tokens import Token, Tokens

FORMATS = ("json", "jsonl", "csv")
STREAM_CHUNK = 10_000
CHANNEL_CACHE = 32
USE_FLUSH_S = 5.0

STATUS: tuple[tuple[type[SegcoreError], int], ...] = (
    (NotFoundError, 404),
    (ConflictError, 409),
    (StoreError, 503),
    (CatalogError, 400),
    (SegcoreError, 400),
)


class ServiceError(Exception):
    """An HTTP error with a JSON body (auth, scope, limits)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def _error(status: int, message: str, kind: str, headers: dict[str, str] | None = None
           ) -> JSONResponse:
    return JSONResponse({"error": message, "type": kind}, status_code=status, headers=headers)


class UsersBody(BaseModel):
    user_ids: list[str] = Field(description="user ids (at most the batch limit)")
    as_of: str | None = Field(None, description="an instant or date; default: now")


class RuleBody(BaseModel):
    rule: str = Field(description="rule text, as in `segcore eval --rule`")
    as_of: str | None = None
    limit: int = Field(1000, ge=0, description="member ids to return (the count is exact)")


class Service:
    """What the endpoints share: the store, memberships, tokens, limits, usage records."""

    def __init__(self, home: str | Path, tick: float, now: str | None, limits: Limits,
                 clock: Callable[[], float], background: bool):
        self.store = Store(home, background_cache=True)  # long-lived: fill the cache meanwhile
        self.memberships = Memberships(self.store, tick=tick, now=now, clock=clock,
                                       background=background)
        self.tokens = Tokens(self.store.catalog_path)
        self.limits = limits
        self.rate = RateLimiter(limits.rate, limits.burst)
        self.evals = concurrent.futures.ThreadPoolExecutor(limits.eval_workers,
                                                           thread_name_prefix="segcore-eval")
        self._pending = threading.BoundedSemaphore(limits.eval_workers * 2)
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._uses: dict[str, tuple[str, int]] = {}
        self._flushed = time.monotonic()
        self._channels: dict[tuple, pl.DataFrame] = {}
        self._auth: dict[str, Token | None] = {}
        self._auth_sig: tuple | None = None

    # ------------------------------------------------------------------ auth and limits
    def authorize(self, request: Request, scope: str) -> Token:
        header = request.headers.get("authorization", "")
        kind, _, value = header.partition(" ")
        if kind.lower() != "bearer" or not value.strip():
            self._limit("ip:" + (request.client.host if request.client else "?"))
            raise ServiceError(401, "missing bearer token: send 'Authorization: Bearer "
                                    "<token>' (create one with `segcore token create NAME`)",
                               {"WWW-Authenticate": "Bearer"})
        token = self._check(value.strip())
        if token is None:
            self._limit("ip:" + (request.client.host if request.client else "?"))
            raise ServiceError(401, "unknown or revoked token", {"WWW-Authenticate": "Bearer"})
        if self.limits.limit_loopback or not _loopback(request):
            self._limit("token:" + token.name)
        if scope == "admin" and token.scope != "admin":
            raise ServiceError(403, f"the token {token.name!r} has the read scope; this needs "
                                    "an admin token")
        self._used(token.name)
        return token

    def _check(self, value: str) -> Token | None:
        """The token's record; checks are kept in memory until the catalog changes (a
        revocation is a write: the next request checks again)."""
        sig = catalog_signature(self.store.catalog_path)
        with self._lock:
            if sig != self._auth_sig:
                self._auth, self._auth_sig = {}, sig
            if value in self._auth:
                return self._auth[value]
        token = self.tokens.check(value)
        with self._lock:
            if len(self._auth) < 10_000 and sig == self._auth_sig:
                self._auth[value] = token
        return token

    def _limit(self, key: str) -> None:
        wait = self.rate.wait(key)
        if wait > 0:
            raise ServiceError(429, f"too many requests: at most {self.limits.rate:g} per "
                                    f"second; retry in {wait:.2f} s",
                               {"Retry-After": str(max(1, math.ceil(wait)))})

    def _used(self, name: str) -> None:
        """Count a token's use; every few seconds a thread writes the counts (a request
        never waits for that write, which may wait for an import's transaction)."""
        with self._lock:
            _, n = self._uses.get(name, ("", 0))
            self._uses[name] = (now_text(), n + 1)
            due = time.monotonic() - self._flushed >= USE_FLUSH_S
            if due:
                self._flushed = time.monotonic()
        if due:
            threading.Thread(target=self.flush_uses, name="segcore-uses", daemon=True).start()

    def flush_uses(self) -> None:
        """Write the token-use counts; kept for the next flush if the state is busy."""
        with self._flushing:
            with self._lock:
                uses, self._uses = self._uses, {}
            if not uses:
                return
            try:
                self.memberships.state.record_use(uses)
            except StoreError:
                with self._lock:
                    for k, (at, n) in uses.items():  # ok-loop: a few tokens
                        later, m = self._uses.get(k, (at, 0))
                        self._uses[k] = (max(at, later), n + m)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, fn: Callable[[], Any]) -> tuple[Any, str, int]:
        """``fn()`` at one data version (retried if an import lands mid-way), within the
        time limit: its result, the data version and the catalog version."""
        if not self._pending.acquire(blocking=False):
            raise ServiceError(429, "too many ad-hoc evaluations at once; retry shortly",
                               {"Retry-After": "1"})

        def pinned() -> tuple[Any, str, int]:
            store = self.store
            for _ in range(5):  # ok-loop: retried only while an import lands
                with store.pinned():
                    dv, cv = store.data_version(), store.catalog.data_version()
                    out = fn()
                    if (store.data_version(), store.catalog.data_version()) == (dv, cv):
                        return out, dv, cv
            raise StoreError("the store kept changing during the evaluation; try again")

        try:
            future = self.evals.submit(pinned)
            try:
                return future.result(timeout=self.limits.eval_seconds)
            except concurrent.futures.TimeoutError:
                raise ServiceError(503, "the evaluation took longer than "
                                        f"{self.limits.eval_seconds:g} s; narrow the rule or "
                                        "save it as a segment") from None
        finally:
            self._pending.release()

    def channel_members(self, name: str, T: dt.datetime, channel: str
                        ) -> tuple[pl.DataFrame, str, int]:
        """Members of saved segment ``name`` reachable on ``channel`` (``reach_actors``)."""
        dv, cv = self.memberships.versions()
        key = (name.casefold(), dv, cv, iso(T), channel.casefold())
        if key in self._channels:
            return self._channels[key], dv, cv
        q = ReachQuery(Target(segment=name), iso(T))
        df, dv, cv = self.evaluate(lambda: reach_actors(self.store, q, channel))
        with self._lock:
            self._channels[(name.casefold(), dv, cv, iso(T), channel.casefold())] = df
            while len(self._channels) > CHANNEL_CACHE:
                self._channels.pop(next(iter(self._channels)))
        return df, dv, cv


def _loopback(request: Request) -> bool:
    """Whether the client is this computer (after uvicorn's proxy-header handling)."""
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _versions(snap: Snapshot) -> dict[str, Any]:
    return {"data_version": snap.data_version, "catalog_version": snap.catalog_version,
            "as_of": iso(snap.as_of)}


def _headers(info: dict[str, Any]) -> dict[str, str]:
    return {"X-Segcore-Data-Version": str(info["data_version"]),
            "X-Segcore-Catalog-Version": str(info["catalog_version"]),
            "X-Segcore-As-Of": str(info["as_of"])}


def _stream(df: pl.DataFrame, fmt: str) -> Iterator[bytes]:
    for i in range(0, max(df.height, 1), STREAM_CHUNK):  # ok-loop: one chunk per 10k rows
        part = df.slice(i, STREAM_CHUNK)
        if fmt == "csv":
            yield part.write_csv(include_header=i == 0).encode()
        elif part.height:
            yield part.write_ndjson().encode()


def create_app(home: str | Path, *, tick: float = 60.0, now: str | None = None,
               limits: Limits | None = None, clock: Callable[[], float] = time.time,
               background: bool = True) -> FastAPI:
    """The service over the store at ``home`` (see the module docstring). With
    ``background`` (the default), "now" answers come from the last complete view while a
    new data version or tick is materialized (:meth:`Memberships.view`)."""
    svc = Service(home, tick, now, limits or Limits(), clock, background)
    svc.memberships.save_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        svc.flush_uses()
        svc.evals.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="segcore membership service", version="1", lifespan=lifespan,
                  description="Saved segments' members, user lookups and an incremental "
                              "sync feed over a segcore store (docs/service.md).")
    app.state.service = svc

    def reader(request: Request) -> Token:
        return svc.authorize(request, "read")

    def admin(request: Request) -> Token:
        return svc.authorize(request, "admin")

    # ------------------------------------------------------------------ errors and size
    @app.exception_handler(ServiceError)
    def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return _error(exc.status, str(exc), "ServiceError", exc.headers)

    @app.exception_handler(SegcoreError)
    def _segcore_error(request: Request, exc: SegcoreError) -> JSONResponse:
        status = next(code for cls, code in STATUS if isinstance(exc, cls))
        return _error(status, str(exc), type(exc).__name__)

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(422, f"bad request: {where}: {first.get('msg', 'invalid')}",
                      "ValidationError")

    @app.exception_handler(HTTPException)
    def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), "HTTPError")

    @app.exception_handler(Exception)
    def _internal(request: Request, exc: Exception) -> JSONResponse:
        return _error(500, f"internal error ({type(exc).__name__}: {exc})", "InternalError")

    @app.middleware("http")
    async def _size_limit(request: Request, call_next: Callable) -> Any:
        length = request.headers.get("content-length")
        too_big = length is not None and (not length.isdigit()
                                          or int(length) > svc.limits.max_body)
        if length is None and request.method in ("POST", "PUT", "PATCH"):
            too_big = len(await request.body()) > svc.limits.max_body
        if too_big:
            return _error(413, f"request body larger than {svc.limits.max_body} bytes",
                          "ServiceError")
        return await call_next(request)

    # ------------------------------------------------------------------ endpoints
    @app.get("/v1/health")
    def health() -> dict[str, Any]:
        """Liveness and the versions an answer would be computed at (no token needed)."""
        dv, cv = svc.memberships.versions()
        return {"status": "ok", "data_version": dv, "catalog_version": cv,
                "as_of": iso(svc.memberships.now())}

    @app.get("/v1/segments")
    def segments(token: Token = Depends(reader)) -> dict[str, Any]:
        """The saved segments (name, kind, version, description)."""
        dv, cv = svc.memberships.versions()
        return {"data_version": dv, "catalog_version": cv,
                "segments": [{"name": s.name, "kind": s.kind, "version": s.version,
                              "description": s.description}
                             for s in svc.memberships.segments()]}

    @app.get("/v1/users/{user_id}/segments")
    def user_segments(user_id: str, as_of: str | None = None,
                      token: Token = Depends(reader)) -> JSONResponse:
        """The saved segments ``user_id`` is in now (or at ``as_of``)."""
        found, dv, cv, T = svc.memberships.user_segments([user_id], as_of)
        info = {"data_version": dv, "catalog_version": cv, "as_of": iso(T)}
        return JSONResponse({**info, "user_id": user_id, "segments": found[user_id]},
                            headers=_headers(info))

    @app.post("/v1/users/segments")
    def users_segments(body: UsersBody, token: Token = Depends(reader)) -> JSONResponse:
        """The saved segments of each of a batch of user ids."""
        if len(body.user_ids) > svc.limits.max_batch:
            raise UsageError(f"at most {svc.limits.max_batch} user ids per request, got "
                             f"{len(body.user_ids)}")
        found, dv, cv, T = svc.memberships.user_segments(list(dict.fromkeys(body.user_ids)),
                                                         body.as_of)
        info = {"data_version": dv, "catalog_version": cv, "as_of": iso(T)}
        return JSONResponse({**info, "users": found}, headers=_headers(info))

    @app.get("/v1/segments/{name}/count")
    def count(name: str, as_of: str | None = None,
              token: Token = Depends(reader)) -> JSONResponse:
        """Number of members of saved segment ``name`` now (or at ``as_of``)."""
        snap = svc.memberships.current(name, as_of)
        info = _versions(snap)
        return JSONResponse({**info, "segment": snap.segment, "members": snap.size},
                            headers=_headers(info))

    @app.get("/v1/segments/{name}/members")
    def members(name: str, as_of: str | None = None,
                after: str | None = Query(None, description="the last id of the previous page"),
                limit: int = Query(1000, ge=1),
                snapshot: int | None = Query(None, description="page through this snapshot"),
                channel: str | None = Query(None, description="only members reachable on it"),
                format: str = Query("json", description="json (paged), jsonl or csv (all)"),
                token: Token = Depends(reader)) -> Any:
        """Members of saved segment ``name``: JSON pages, or streamed JSON lines / CSV."""
        if format not in FORMATS:
            raise UsageError(f"bad format {format!r}: use json, jsonl or csv")
        if limit > svc.limits.max_page:
            raise UsageError(f"at most {svc.limits.max_page} members per page")
        if channel is not None:
            seg = svc.memberships.segment(name)
            T = svc.memberships.instant(as_of)
            df, dv, cv = svc.channel_members(seg.name, T, channel)
            info: dict[str, Any] = {"data_version": dv, "catalog_version": cv, "as_of": iso(T)}
            snap_id = None
            seg_name = seg.name
        else:
            snap = (svc.memberships.by_id(snapshot) if snapshot is not None
                    else svc.memberships.current(name, as_of))
            df, info, snap_id, seg_name = (snap.members.to_frame(), _versions(snap), snap.id,
                                           snap.segment)
        if after is not None:
            df = df.filter(pl.col("user_id") > after)
        if format != "json":
            media = "text/csv" if format == "csv" else "application/x-ndjson"
            return StreamingResponse(_stream(df, format), media_type=media,
                                     headers=_headers(info))
        page = df.head(limit)
        more = df.height > limit
        return JSONResponse({**info, "segment": seg_name, "snapshot": snap_id,
                             "members": page.to_dicts() if channel else page["user_id"].to_list(),
                             "more": more,
                             "after": page["user_id"][-1] if more else None},
                            headers=_headers(info))

    @app.get("/v1/segments/{name}/changes")
    def changes(name: str, request: Request, cursor: str | None = None,
                since_version: str | None = None, since: str | None = None,
                limit: int = Query(10_000, ge=1),
                token: Token = Depends(reader)) -> JSONResponse:
        """Who entered and left since ``cursor`` (the sync feed), since a data version, or
        since an instant (members then against members now)."""
        if sum(x is not None for x in (cursor, since_version, since)) > 1:
            raise UsageError("give one of cursor, since_version or since")
        if limit > svc.limits.max_page:
            raise UsageError(f"at most {svc.limits.max_page} changes per page")
        mem = svc.memberships
        if since is not None:
            seg = mem.segment(name)
            then, now = mem.snapshot(seg, mem.instant(since), log=False), mem.current(name)
            if then.data_version != now.data_version:
                raise StoreError("the store changed during the request; try again")
            a, b = then.members.to_frame(), now.members.to_frame()
            out = {**_versions(now), "segment": now.segment, "since": iso(then.as_of),
                   "members": now.size,
                   "entered": b.join(a, on="user_id", how="anti")["user_id"].to_list(),
                   "left": a.join(b, on="user_id", how="anti")["user_id"].to_list()}
            return JSONResponse(out, headers=_headers(out))
        if since_version is not None:
            after = mem.version_cursor(mem.segment(name), since_version)
        else:
            after = 0 if cursor is None else mem.parse_cursor(cursor)
        out = mem.changes(name, after, limit)
        mem.state.record_sync(token.name, out["segment"], out["cursor"], len(out["entered"]),
                              len(out["left"]))
        return JSONResponse(out, headers=_headers(out))

    @app.post("/v1/count")
    def count_rule(body: RuleBody, token: Token = Depends(reader)) -> JSONResponse:
        """Members of an ad-hoc rule, counted (within the time limit)."""
        q = _rule_query(body)
        result, dv, cv = svc.evaluate(lambda: run_members(svc.store, q))
        out = {"data_version": dv, "catalog_version": cv, "as_of": result.as_of,
               "members": result.members}
        return JSONResponse(out, headers=_headers(out))

    @app.post("/v1/evaluate")
    def evaluate(body: RuleBody, token: Token = Depends(reader)) -> JSONResponse:
        """Members of an ad-hoc rule (ids up to ``limit``; the count is exact)."""
        q = _rule_query(body)
        T = svc.memberships.instant(body.as_of)
        q = MembersQuery(q.target, iso(T))
        df, dv, cv = svc.evaluate(lambda: members_actors(svc.store, q))
        limit = min(body.limit, svc.limits.eval_members)
        out = {"data_version": dv, "catalog_version": cv, "as_of": iso(T),
               "count": df.height, "members": df["user_id"].head(limit).to_list(),
               "truncated": df.height > limit}
        return JSONResponse(out, headers=_headers(out))

    def _rule_query(body: RuleBody) -> MembersQuery:
        if len(body.rule) > svc.limits.max_rule:
            raise UsageError(f"the rule is longer than {svc.limits.max_rule} characters")
        return MembersQuery(Target(rule=body.rule), iso(svc.memberships.instant(body.as_of)))

    @app.post("/v1/refresh")
    def refresh(token: Token = Depends(admin)) -> dict[str, Any]:
        """Materialize every saved segment now (admin)."""
        return svc.memberships.refresh()

    @app.get("/v1/tokens")
    def tokens(token: Token = Depends(admin)) -> dict[str, Any]:
        """The tokens (never their values), their last use, and the last syncs (admin)."""
        svc.flush_uses()
        uses = svc.memberships.state.token_use()
        return {"tokens": [{**t.to_dict(), **uses.get(t.name, {})} for t in svc.tokens.list()],
                "syncs": svc.memberships.state.syncs()}

    return app
