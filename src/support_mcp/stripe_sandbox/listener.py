"""The sandbox's HTTP side in this process: Stripe's v1 wire format on 127.0.0.1 over the sandbox
accounts in PostgreSQL (store.py), for the `stripe` SDK of this process's gateway only.

Started by a server with SUPPORT_MCP_STRIPE_SANDBOX=on (App's lifespan) and by `episodes trigger`
(which must answer the webhook path's lookups); never otherwise. Loopback only, on a random port
unless SUPPORT_MCP_STRIPE_SANDBOX_PORT says, and it accepts one API key, made up per process.
Endpoints and errors are the double's (api.py), Idempotency-Key included (kept in PostgreSQL).
Requests without `Stripe-Account` are refused: the sandbox holds connected accounts only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

import uvicorn
from starlette.requests import Request
from starlette.responses import Response

from ..db import queries
from ..errors import InvalidInput, NotPermitted, SupportError
from ..logging import get_logger
from . import store
from .api import dispatch, parse_form
from .apierrors import ApiError, account_invalid, authenticate, idempotency_mismatch
from .events import API_VERSION
from .ids import new_id
from .wire import SERVER_ERROR, Headers

if TYPE_CHECKING:
    from ..db import Database
    from ..payments.gateway import StripeGateway

log = get_logger(__name__)

MAX_BODY = 1_048_576


class _QuietServer(uvicorn.Server):
    """uvicorn inside an already-running server: the host process owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class SandboxListener:
    def __init__(self, db: Database, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.db, self._host, self._port = db, host, port
        self.api_key = "sk_test_sandbox_" + secrets.token_hex(16)
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None

    @property
    def base_url(self) -> str:
        assert self._sock is not None, "the Stripe sandbox is not running"
        host, port = self._sock.getsockname()[:2]
        return f"http://{host}:{port}"

    async def start(self) -> SandboxListener:
        # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only for those,
        # and without it every answer (headers, then body) waits ~40 ms for a delayed ACK
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._host, self._port))
        except OSError as exc:
            sock.close()
            raise InvalidInput(f"the Stripe sandbox cannot listen on {self._host}:{self._port} "
                               f"({exc.strerror or exc}); set SUPPORT_MCP_STRIPE_SANDBOX_PORT to a free port or 0") from None
        self._sock = sock
        config = uvicorn.Config(self, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=2)
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="stripe-sandbox")
        while not self._server.started:
            if self._task.done():  # it could not start: say why
                await self._task
                raise RuntimeError("the Stripe sandbox did not start")
            await asyncio.sleep(0.01)
        log.info("stripe_sandbox_listening", url=self.base_url)
        return self

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        if self._sock is not None:
            self._sock.close()
        self._server = self._task = self._sock = None

    # --- ASGI --------------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                break
        target = scope["path"] + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
        status, headers, payload = await self.handle(request.method, target, list(request.headers.items()), body)
        await Response(payload, status, headers, media_type="application/json")(scope, receive, send)

    async def handle(self, method: str, target: str, raw_headers: list[tuple[str, str]],
                     body: bytes) -> tuple[int, dict[str, str], bytes]:
        """One request: (status, headers, JSON body), as Stripe would answer it."""
        request_id = new_id("req", 14)
        headers = Headers(raw_headers)
        out = {"Request-Id": request_id, "Stripe-Version": headers.get("Stripe-Version") or API_VERSION}
        try:
            if len(body) > MAX_BODY:
                raise ApiError(413, "Request body too large.")
            url = urlsplit(target)
            path = unquote(url.path)
            try:
                query = parse_form(parse_qsl(url.query, keep_blank_values=True))
                form = parse_form(parse_qsl(body.decode("utf-8"), keep_blank_values=True)) if body else {}
            except UnicodeDecodeError:
                raise ApiError(400, "Invalid request body: not UTF-8.") from None
            payload, extra = await self._process(method, path, headers, {**query, **form}, request_id)
            status = 200
        except ApiError as e:
            status, payload, extra = e.status, e.body(request_id), e.headers
        except SupportError as e:  # the database: Stripe's own 500, the gateway retries or reports it
            log.warning("stripe_sandbox_unavailable", error=str(e))
            err = ApiError(500, SERVER_ERROR[2], type="api_error", headers={"Stripe-Should-Retry": "true"})
            status, payload, extra = 500, err.body(request_id), err.headers
        except Exception:  # a bug in the sandbox: logged, answered like Stripe's 500
            log.exception("stripe_sandbox_error", method=method, path=target[:200])
            err = ApiError(500, SERVER_ERROR[2], type="api_error")
            status, payload, extra = 500, err.body(request_id), {}
        out.update(extra)
        return status, out, (json.dumps(payload, indent=2) + "\n").encode("utf-8")

    async def _process(self, method: str, path: str, headers: Headers, params: dict[str, Any],
                       request_id: str) -> tuple[dict[str, Any], dict[str, str]]:
        key = authenticate(headers, lambda k: secrets.compare_digest(k, self.api_key))
        account_id = headers.get("Stripe-Account") or None
        if account_id is None or not account_id.startswith("acct_") or len(account_id) > 64:
            raise account_invalid(key, account_id)
        idem = headers.get("Idempotency-Key") if method == "POST" else None
        if idem is not None and len(idem) > 255:
            raise ApiError(400, "Idempotency-Key must be at most 255 characters long.")
        request = {"method": method, "path": path, "params": params}
        async with self.db.admin_scope() as conn:
            loaded = await store.load(conn, account_id, write=method == "POST")
            if loaded is None:
                raise account_invalid(key, account_id)
            if idem is not None:
                seen = await queries.sandbox_get_idempotency(conn, account_id=account_id, key=idem)
                if seen is not None:
                    if seen["request"] != request:
                        raise idempotency_mismatch(idem)
                    return seen["body"], {"Idempotency-Key": idem, "Idempotent-Replayed": "true",
                                          "Original-Request": seen["request_id"]}
            answer = dispatch(loaded.acct, method, path, params)
            if method == "POST":
                await store.save(conn, loaded)
                if idem is not None:
                    await queries.sandbox_put_idempotency(conn, account_id=account_id, key=idem, request=request,
                                                          request_id=request_id, body=answer)
        extra = {"Idempotency-Key": idem, "Original-Request": request_id} if idem is not None else {}
        return answer, extra


async def start_sandbox(db: Database, gateway: StripeGateway) -> SandboxListener:
    """Start this process's sandbox listener and send the gateway's sandbox tenants to it."""
    if db.admin_pool is None:
        raise NotPermitted("the Stripe sandbox keeps its accounts in admin-only tables: it needs the database "
                           "owner (SUPPORT_MCP_DATABASE_ADMIN_URL); this process has only the app role's URL")
    listener = await SandboxListener(db, port=db.settings.stripe_sandbox_port).start()
    gateway.use_sandbox(listener.base_url, listener.api_key)
    return listener
