"""HTTP answers when a backend is down where the SDK cannot produce a tool error.

The SDK verifies bearer keys in Starlette's AuthenticationMiddleware, before any MCP message
exists: when key verification needs the database and the database is down, the verifier raises
UpstreamUnavailable and Starlette would answer a plain-text 500 (and log a traceback). This
outermost middleware turns an UpstreamUnavailable that reaches the ASGI layer before a response
started into 503 + Retry-After with a one-line JSON body (OAuth's `temporarily_unavailable`).
`SupportServer` attaches it to every HTTP app the SDK builds (Streamable HTTP and SSE, also via
`run()`), so no way of serving forgets it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import UpstreamUnavailable
from .logging import get_logger

log = get_logger(__name__)


class UnavailableAs503:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except UpstreamUnavailable as exc:
            if started:  # too late for a status line: let the server end the response
                raise
            log.warning("http_unavailable", path=str(scope.get("path", ""))[:100], error=str(exc))
            response = JSONResponse({"error": "temporarily_unavailable", "error_description": str(exc)},
                                    status_code=503, headers={"Retry-After": str(UpstreamUnavailable.retry_after)})
            await response(scope, receive, send)


def with_unavailable_as_503(app: Starlette) -> Starlette:
    app.add_middleware(UnavailableAs503)  # outermost of the app's own middleware (before auth)
    return app


class SupportServer(MCPServer):
    """MCPServer whose HTTP apps answer a backend outage with 503 + Retry-After, never a bare 500.
    `app_hooks` run on every HTTP app built (the OAuth resource server's routes, see oauth.http);
    `http_middleware`: more ASGI middleware (class, kwargs) for every HTTP app, inside the 503 one
    (the metrics' auth-failure counter)."""

    app_hooks: tuple[Callable[[Starlette], None], ...] = ()
    http_middleware: tuple[tuple[type, dict[str, Any]], ...] = ()

    def _wrap(self, app: Starlette) -> Starlette:
        for hook in self.app_hooks:
            hook(app)
        for cls, kwargs in self.http_middleware:
            app.add_middleware(cls, **kwargs)
        return with_unavailable_as_503(app)

    def streamable_http_app(self, **kwargs: Any) -> Starlette:
        return self._wrap(super().streamable_http_app(**kwargs))

    def sse_app(self, **kwargs: Any) -> Starlette:
        return self._wrap(super().sse_app(**kwargs))
