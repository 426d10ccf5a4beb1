"""The HTTP side of the resource server: clear 401s, protected resource metadata (RFC 9728), step-up.

401: a request without a verified credential is answered before the SDK's own 401, saying what
to send (an API key, or with OAuth a token) and, with OAuth, where the metadata is.

PRM is served at `/.well-known/oauth-protected-resource` and at the path-suffixed form for the
resource (`/.well-known/oauth-protected-resource/mcp`), ahead of the SDK's own route (which
would list no scopes). Every 401 the SDK sends then names it in `WWW-Authenticate`.

Step-up: the guard enforces every scope (a tool error, the same for API keys and tokens). For an
OAuth token, a `tools/call` (or resource/prompt read) whose scope the token lacks is answered
earlier, at HTTP level, with 403 `insufficient_scope` and the scope to ask for, as the MCP
authorization specification describes, so an OAuth client can re-authorize. API keys keep the
tool error: a key's scopes change only by issuing another key.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlsplit

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.routes import build_resource_metadata_url, cors_middleware
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..registry import READ_SCOPE, spec_of
from ..settings import Settings
from .verifier import principal_of

PRM_ROOT = "/.well-known/oauth-protected-resource"
NO_OAUTH = ("this server takes API keys, not OAuth: send 'Authorization: Bearer smk_...' "
            "(an operator creates one with `support-mcp keys create`)")
MAX_INSPECTED_BODY = 4 * 1024 * 1024  # larger bodies go on unchecked here (the guard still checks)
#: why the bearer API key of the current request was refused (set by server.BearerKeys, which runs in
#: the same task just before ClearUnauthorized): expired, revoked or deleted (an episode's key)
KEY_REFUSAL: ContextVar[str | None] = ContextVar("support_mcp_key_refusal", default=None)


def metadata_url(settings: Settings) -> str:
    assert settings.oauth_resource
    return str(build_resource_metadata_url(settings.oauth_resource))  # type: ignore[arg-type]


def protected_resource_metadata(settings: Settings) -> dict[str, Any]:
    return {"resource": settings.oauth_resource, "authorization_servers": [settings.oauth_issuer],
            "scopes_supported": list(dict.fromkeys(settings.oauth_scopes.values())),
            "bearer_methods_supported": ["header"], "resource_name": "support-mcp"}


def install(app: Starlette, settings: Settings) -> None:
    """On every HTTP app in bearer mode: a clear 401 on the MCP endpoint; with OAuth also PRM routes
    (first, so they win over the SDK's) and step-up."""
    if settings.oauth_resource:
        body = protected_resource_metadata(settings)

        async def prm(_request: Request) -> Response:
            return JSONResponse(body, headers={"Cache-Control": "public, max-age=3600"})

        paths = dict.fromkeys([PRM_ROOT, urlsplit(metadata_url(settings)).path])
        app.router.routes[:0] = [Route(p, endpoint=cors_middleware(prm, ["GET", "OPTIONS"]), methods=["GET", "OPTIONS"])
                                 for p in paths]
    else:
        # API keys only. An OAuth client that gets our 401 and finds no metadata falls back to this
        # origin's default registration endpoint (MCP 2025-03-26 compatibility; the MCP Inspector
        # does): answer it with an RFC 7591 error that says what to send, not a bare 404.
        async def register(_request: Request) -> Response:
            return JSONResponse({"error": "invalid_client_metadata", "error_description": NO_OAUTH}, status_code=400)

        app.router.routes[:0] = [Route("/register", endpoint=register, methods=["POST"])]
    for route in app.router.routes:
        if isinstance(route, Route) and route.path == "/mcp":
            inner = StepUp(route.app, settings) if settings.oauth_resource else route.app
            route.app = ClearUnauthorized(inner, settings)


class ClearUnauthorized:
    """Answers a request without a verified credential before the SDK does, saying what to send:
    RFC 6750 (no error code when no credential came, `invalid_token` when one did not verify) and,
    with OAuth, `resource_metadata` (RFC 9728) so clients find the authorization server."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.metadata = metadata_url(settings) if settings.oauth_resource else None
        self.what = "an OAuth access token or an API key" if self.metadata else "an API key (smk_...)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or isinstance(scope.get("user"), AuthenticatedUser):
            await self.app(scope, receive, send)
            return
        sent = any(name.lower() == b"authorization" for name, _ in scope.get("headers", ()))
        reason = KEY_REFUSAL.get() if sent else None
        description = (f"the credential was not accepted{f' ({reason})' if reason else ''}: send {self.what} as "
                       "'Authorization: Bearer ...'" if sent
                       else f"authentication required: send {self.what} as 'Authorization: Bearer ...'")
        parts = ['error="invalid_token"'] if sent else []
        parts.append(f'error_description="{description}"')
        if self.metadata:
            parts.append(f'resource_metadata="{self.metadata}"')
        body = {"error": "invalid_token" if sent else "unauthorized", "error_description": description}
        await JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer " + ", ".join(parts)})(
            scope, receive, send)


class StepUp:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings
        self.metadata = metadata_url(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = scope.get("user")
        principal = principal_of(user.access_token) if isinstance(user, AuthenticatedUser) else None
        if scope["type"] != "http" or scope.get("method") != "POST" or principal is None:
            await self.app(scope, receive, send)
            return
        received: list[Message] = []
        size, more = 0, True
        while more and size <= MAX_INSPECTED_BODY:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            more = bool(message.get("more_body", False))
        needed = self._scope_needed(b"".join(m.get("body", b"") for m in received)) if not more else None
        if needed is not None and needed not in principal.scopes:
            await self._insufficient(needed, principal.scopes)(scope, receive, send)
            return

        async def replay() -> Message:
            return received.pop(0) if received else await receive()

        await self.app(scope, replay, send)

    def _scope_needed(self, body: bytes) -> str | None:
        try:
            message = json.loads(body)
        except ValueError:
            return None
        if not isinstance(message, dict) or not isinstance(message.get("params"), dict):
            return None
        method = message.get("method")
        if method == "tools/call":
            return spec_of(str(message["params"].get("name"))).scope
        if method in ("resources/read", "resources/templates/list", "prompts/get"):
            return READ_SCOPE
        return None

    def _insufficient(self, needed: str, held: frozenset[str]) -> Response:
        names = self.settings.oauth_scopes
        wanted = " ".join(dict.fromkeys([*(names[s] for s in sorted(held) if s in names), names.get(needed, needed)]))
        description = f"this call needs the '{names.get(needed, needed)}' scope, which the access token lacks"
        header = (f'Bearer error="insufficient_scope", scope="{wanted}", resource_metadata="{self.metadata}", '
                  f'error_description="{description}"')
        return JSONResponse({"error": "insufficient_scope", "error_description": description, "scope": wanted},
                            status_code=403, headers={"WWW-Authenticate": header})
