"""The episodes admin API on the HTTP server, for harnesses that run many episodes at once.

    POST   /admin/episodes              {"fixture": {...}, "ttl": "30m", "deterministic": false} -> 201
    GET    /admin/episodes              -> {"episodes": [...]}
    GET    /admin/episodes/{id}/state   -> {"state_hash", "state"}
    POST   /admin/episodes/{id}/reset   -> {"episode", "tenant"}
    DELETE /admin/episodes/{id}         -> {"episode", "tenant"}

Authorized by `Authorization: Bearer <API key>` holding the `episodes` scope (OAuth tokens are not
accepted here). Each call is rate limited with the key's tool-call budget and audited like a tool
call (one row, tool `admin:episodes.<op>`, allowed or refused). Refused on a read-only server.
Every answer is JSON; an error is one line: `{"error": "..."}` with 400 (bad input), 401 (no or
bad key), 403 (no scope, read-only, no admin database URL), 404, 405, 409, 413 (body over
SUPPORT_MCP_EPISODES_MAX_BODY_BYTES), 429 (+ Retry-After), 503 (+ Retry-After) or 500 (a
reference to the server log).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .. import keys
from ..access import EPISODES_SCOPE, Principal
from ..audit import AuditRecord
from ..errors import (Conflict, InvalidInput, NotFound, NotPermitted, RateLimited, SupportError,
                      TenantUnavailable, UpstreamUnavailable)
from ..logging import get_logger
from . import service
from .fixtures import parse_fixture
from .upkeep import Upkeep

log = get_logger(__name__)

PREFIX = "/admin/episodes"
MCP_PATH = "/mcp"
_FIELDS = ("fixture", "ttl", "deterministic")
_ANY = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]  # each route answers a wrong method itself
_STATUS: dict[type[SupportError], int] = {InvalidInput: 400, NotFound: 404, NotPermitted: 403, Conflict: 409,
                                          TenantUnavailable: 409, RateLimited: 429, UpstreamUnavailable: 503}
Handler = Callable[[Request], Awaitable[tuple[int, dict[str, Any], dict[str, Any]]]]


class _Refused(Exception):
    def __init__(self, status: int, message: str, outcome: str) -> None:
        super().__init__(message)
        self.status, self.outcome = status, outcome


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": " ".join(message.split())}, status_code=status, headers=headers)


class EpisodesAPI:
    def __init__(self, app: Any) -> None:  # app.App
        self.app = app
        self.upkeep = Upkeep(app)

    # --- wiring ---------------------------------------------------------------------------
    def install(self, http_app: Starlette) -> None:
        """Routes first (before the SDK's), and a lifespan that keeps the app's shared parts (audit
        writer...) running for the server's life and runs the upkeep tasks."""
        http_app.router.routes[:0] = [
            Route(PREFIX, self._collection, methods=_ANY),
            Route(PREFIX + "/{episode_id}", self._one, methods=_ANY),
            Route(PREFIX + "/{episode_id}/{action}", self._action, methods=_ANY),
            Route("/admin/{rest:path}", self._unknown, methods=_ANY),
        ]
        inner = http_app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(starlette: Starlette) -> AsyncIterator[Any]:
            async with inner(starlette) as state, self.app.lifespan(None):
                self.upkeep.start()
                try:
                    yield state
                finally:
                    await self.upkeep.stop()

        http_app.router.lifespan_context = lifespan

    # --- routes ---------------------------------------------------------------------------
    async def _collection(self, request: Request) -> JSONResponse:
        if request.method == "POST":
            return await self._call(request, "create", self._create)
        if request.method == "GET":
            return await self._call(request, "list", self._list)
        return error(405, "use POST /admin/episodes to create an episode or GET to list them",
                     {"Allow": "GET, POST"})

    async def _one(self, request: Request) -> JSONResponse:
        if request.method == "DELETE":
            return await self._call(request, "destroy", self._destroy)
        return error(405, "use DELETE /admin/episodes/{id} to destroy an episode", {"Allow": "DELETE"})

    async def _action(self, request: Request) -> JSONResponse:
        action, method = request.path_params["action"], request.method
        if action == "state" and method == "GET":
            return await self._call(request, "state", self._state)
        if action == "reset" and method == "POST":
            return await self._call(request, "reset", self._reset)
        if action in ("state", "reset"):
            allowed = "GET" if action == "state" else "POST"
            return error(405, f"use {allowed} /admin/episodes/{{id}}/{action}", {"Allow": allowed})
        return await self._unknown(request)

    async def _unknown(self, _request: Request) -> JSONResponse:
        return error(404, "no such admin endpoint: see POST/GET /admin/episodes, GET /admin/episodes/{id}/state, "
                          "POST /admin/episodes/{id}/reset, DELETE /admin/episodes/{id}")

    # --- the one gate ---------------------------------------------------------------------
    async def _call(self, request: Request, op: str, handler: Handler) -> JSONResponse:
        """Caller, rate limit, read-only mode and scope, then the operation; one audit row."""
        started = time.perf_counter()
        principal: Principal | None = None
        arguments: dict[str, Any] = {k: str(v)[:100] for k, v in request.path_params.items() if k == "episode_id"}
        outcome = "ok"
        try:
            principal = await self._caller(request)
            await self.app.check_rate(principal)
            if self.app.read_only:
                raise NotPermitted("the episodes admin API is off: this server runs in read-only mode")
            if EPISODES_SCOPE not in principal.scopes:
                raise NotPermitted(f"the episodes admin API needs the '{EPISODES_SCOPE}' scope, which this key does "
                                   "not have (`support-mcp keys create --scope episodes`)")
            status, body, more = await handler(request)
            arguments |= more
            return JSONResponse(body, status_code=status)
        except _Refused as exc:
            outcome = exc.outcome
            headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if exc.status == 401 else None
            return error(exc.status, str(exc), headers)
        except SupportError as exc:
            outcome = exc.kind
            status = next((code for cls, code in _STATUS.items() if isinstance(exc, cls)), 400)
            retry = getattr(exc, "retry_after", None) if status == 503 else 60 if status == 429 else None
            return error(status, str(exc), {"Retry-After": str(retry)} if retry else None)
        except Exception:
            outcome, ref = "internal", secrets.token_hex(4)
            log.exception("episodes_admin_crashed", op=op, reference=ref)
            return error(500, f"internal error in episodes {op} (reference {ref}); the server log has details")
        finally:
            self.app.audit.record(AuditRecord(
                tool=f"admin:episodes.{op}", principal=principal.name if principal else "unauthenticated",
                outcome=outcome, duration_ms=round((time.perf_counter() - started) * 1000, 3), arguments=arguments,
                key_id=principal.key_id if principal else None))

    async def _caller(self, request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _Refused(401, "authentication required: send an API key with the 'episodes' scope as "
                                "'Authorization: Bearer smk_...'", "unauthenticated")
        try:
            return await self.app.verifier.principal(token.strip())
        except NotPermitted as exc:
            raise _Refused(401, f"the credential was not accepted ({exc}); the episodes admin API takes API keys "
                                "with the 'episodes' scope", "not_permitted") from None

    # --- operations -----------------------------------------------------------------------
    async def _create(self, request: Request) -> tuple[int, dict[str, Any], dict[str, Any]]:
        body = await self._json_body(request)
        if not isinstance(body, dict):
            raise InvalidInput('the body must be a JSON object: {"fixture": {...}, "ttl": "30m"}')
        unknown = [str(k)[:40] for k in body if k not in _FIELDS]
        if unknown:
            raise InvalidInput(f"unknown field(s) {', '.join(repr(u) for u in unknown[:5])}: the body takes "
                               "fixture, ttl and deterministic")
        if "fixture" not in body:
            raise InvalidInput('fixture: required (an object; {} for an empty episode)')
        ttl = body.get("ttl", "30m")
        if not isinstance(ttl, str):
            raise InvalidInput('ttl: must be a string such as "30m", "12h" or "2d"')
        deterministic = body.get("deterministic", False)
        if not isinstance(deterministic, bool):
            raise InvalidInput("deterministic: must be true or false")
        fixture = parse_fixture(body["fixture"])
        made = await service.create(self.app.db, self.app.kb, fixture, keys.parse_duration(ttl),
                                    deterministic=deterministic)
        self.app.verifier.forget(scope=EPISODES_SCOPE)  # this server's episodes keys see the new tenant now
        self.upkeep.wake()
        made["mcp_url"] = self._mcp_url(request)
        return 201, made, {"episode": made["episode"], "ttl": ttl[:20], "deterministic": deterministic}

    async def _list(self, _request: Request) -> tuple[int, dict[str, Any], dict[str, Any]]:
        rows = await service.list_(self.app.db)
        return 200, {"episodes": [
            {"episode": str(r["id"]), "tenant": r["tenant"], "fixture_sha256": r["fixture_sha256"],
             "expires_at": r["expires_at"].isoformat(), "created_at": r["created_at"].isoformat()}
            for r in rows]}, {}

    async def _state(self, request: Request) -> tuple[int, dict[str, Any], dict[str, Any]]:
        return 200, await service.state(self.app.db, request.path_params["episode_id"]), {}

    async def _reset(self, request: Request) -> tuple[int, dict[str, Any], dict[str, Any]]:
        return 200, await service.reset(self.app.db, self.app.kb, request.path_params["episode_id"]), {}

    async def _destroy(self, request: Request) -> tuple[int, dict[str, Any], dict[str, Any]]:
        gone = await service.destroy(self.app.db, request.path_params["episode_id"], self.app.kb,
                                     self.upkeep.forget_key)  # its key is refused at once on this server
        self.app.verifier.forget(scope=EPISODES_SCOPE)
        return 200, gone, {}

    # --- helpers --------------------------------------------------------------------------
    async def _json_body(self, request: Request) -> Any:
        limit = self.app.settings.episodes_max_body_bytes
        too_big = _Refused(413, f"the body is larger than {limit:,} bytes (SUPPORT_MCP_EPISODES_MAX_BODY_BYTES)",
                           "invalid_input")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_big
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > limit:
                raise too_big
        if not data.strip():
            raise InvalidInput('the body is empty: send a JSON object {"fixture": {...}, "ttl": "30m"}')
        try:
            return json.loads(data.decode("utf-8"), parse_constant=_no_constant)
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"the body is not UTF-8 (byte {exc.start})") from None
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"the body is not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg})") from None
        except RecursionError:
            raise InvalidInput("the body is nested too deeply") from None

    def _mcp_url(self, request: Request) -> str:
        configured = self.app.settings.oauth_resource
        return str(configured) if configured else str(request.base_url).rstrip("/") + MCP_PATH


def _no_constant(name: str) -> Any:
    raise InvalidInput(f"the body is not valid JSON ({name} is not a JSON number)")
