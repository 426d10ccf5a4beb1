"""Session bounds for the HTTP transports: at most N open sessions per API key (per process).

Streamable HTTP (stateful): the SDK's session manager already closes idle sessions
(`session_idle_timeout`) and caps sessions per process (`max_sessions`, 503); here a request that
would open one more session for a key that already holds the maximum gets HTTP 429 with a
JSON-RPC error body, before any session state is created. SSE: the same cap on open streams.

The key is the bearer credential's client id (our API key's id, see server.BearerKeys); operator
mode (loopback, no keys) has no key and only the per-process cap."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp_types import INVALID_REQUEST, ErrorData, JSONRPCError
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from . import sdk_internals
from .logging import get_logger

log = get_logger(__name__)
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]


def _key_of(scope: Scope) -> str | None:
    user = scope.get("user")
    return user.access_token.client_id if isinstance(user, AuthenticatedUser) else None


def _too_many(limit: int, what: str, hint: str) -> Response:
    message = f"too many open {what} for this API key (the limit is {limit}): {hint}"
    body = JSONRPCError(jsonrpc="2.0", id=None, error=ErrorData(code=INVALID_REQUEST, message=message))
    return Response(body.model_dump_json(by_alias=True, exclude_unset=True), status_code=429,
                    media_type="application/json")


def cap_streamable_sessions(manager: StreamableHTTPSessionManager, per_key: int, idle_seconds: float) -> None:
    """Wrap the manager's stateful handler: refuse a new session for a key at its maximum."""
    # Opens between our check and the SDK registering the session, per key: counted and reserved
    # without an await in between, so concurrent opens cannot overshoot.
    opening: Counter[str] = Counter()
    reservation: ContextVar[list[str] | None] = ContextVar("support_mcp_session_reservation", default=None)
    hint = (f"end one (HTTP DELETE with its {MCP_SESSION_ID_HEADER} header) or let an idle one expire "
            f"({idle_seconds:g} s without requests)")

    def open_sessions(key: str) -> int:
        return sum(1 for owner in sdk_internals.session_owners(manager) if owner.get("client_id") == key)

    def release() -> None:
        held = reservation.get()
        if held:
            key = held.pop()
            opening[key] -= 1
            if opening[key] <= 0:
                del opening[key]

    def wrap_admit(admit: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def admit_and_release(requestor: Any) -> Any:
            try:
                return admit(requestor)  # registered now (or refused by the per-process cap)
            finally:
                release()

        return admit_and_release

    def wrap_handle(inner: Handler) -> Handler:
        async def handle(scope: Scope, receive: Receive, send: Send) -> None:
            key = _key_of(scope)
            headers = dict(scope.get("headers") or [])
            if key is None or MCP_SESSION_ID_HEADER.lower().encode() in headers:
                await inner(scope, receive, send)  # an existing session (or no key): nothing to count
                return
            if open_sessions(key) + opening[key] >= per_key:
                log.warning("session_refused", key_id=key, limit=per_key, reason="per_key_limit")
                await _too_many(per_key, "sessions", hint)(scope, receive, send)
                return
            opening[key] += 1
            token = reservation.set([key])
            try:
                await inner(scope, receive, send)
            finally:
                release()  # if the SDK never got to admitting it
                reservation.reset(token)

        return handle

    sdk_internals.wrap_session_admission(manager, wrap_handle, wrap_admit)


class _CapStreams:
    """ASGI wrapper around the SSE stream endpoint: at most `per_key` open streams per key."""

    def __init__(self, app: ASGIApp, per_key: int) -> None:
        self.app, self.per_key, self.open = app, per_key, Counter[str]()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _key_of(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        if self.open[key] >= self.per_key:
            log.warning("session_refused", key_id=key, limit=self.per_key, reason="per_key_limit", transport="sse")
            await _too_many(self.per_key, "SSE streams", "close one first")(scope, receive, send)
            return
        self.open[key] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.open[key] -= 1
            if self.open[key] <= 0:
                del self.open[key]


def cap_sse_streams(app: Starlette, per_key: int, sse_path: str = "/sse") -> None:
    for route in app.routes:
        if isinstance(route, Route) and route.path == sse_path:
            route.app = _CapStreams(route.app, per_key)


def bound_sessions(server: Any, app: Starlette, settings: Any, *, sse: bool) -> None:
    """Apply the per-key caps to a built HTTP app (serve --transport http|sse)."""
    if sse:
        cap_sse_streams(app, settings.max_sessions_per_key)
    else:
        cap_streamable_sessions(server.session_manager, settings.max_sessions_per_key,
                                settings.session_idle_seconds)
