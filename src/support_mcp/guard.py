"""The request guard (ServerMiddleware): one gate for every request kind that reaches tenant
data. It establishes the caller, then for tools/call, resources/read and prompts/get enforces
the scope (a tool's own; `read` for resources and prompts), read-only mode, the rate limit and
(for tools) argument validation, and writes exactly one audit row per request, allowed or
refused; resources/templates/list is gated the same way. Audit `tool` column: the tool name,
`resource:<template name>` (e.g. `resource:ticket`), `prompt:<name>` (e.g. `prompt:draft_reply`),
`resources/list` (it lists the caller's tenants' data) or `resources/templates/list`. The other
listings (tools/list, prompts/list) need an identified caller; tools/list shows only what the
caller may use."""

from __future__ import annotations

import asyncio
import time
from contextvars import ContextVar
from typing import Any

from mcp.server.context import CallNext, HandlerResult
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_REQUEST, CallToolResult, TextContent
from pydantic import ValidationError

from . import sdk_internals
from .access import Principal
from .app import App
from .audit import AuditRecord
from .db import SLUG_RE
from .errors import InvalidInput, NotPermitted, SupportError
from .logging import get_logger
from .registry import READ_SCOPE, TOOLS, spec_of
from .validation import summarize

log = get_logger("support_mcp.requests")

_principal: ContextVar[Principal | None] = ContextVar("support_mcp_principal", default=None)
_call: ContextVar[dict[str, Any] | None] = ContextVar("support_mcp_call", default=None)

# Requests that reach tenant data: caller check, scope, rate limit and one audit row each.
# resources/templates/list is counted with them: it is how a client discovers what to read.
# resources/list too: it lists the caller's tenants' profiles and recent tickets (resources/listing.py).
_DATA_METHODS = {"tools/call", "resources/read", "resources/list", "resources/templates/list", "prompts/get"}
# Listings of static metadata: the caller must be identified (nothing else is spent on them).
_LIST_METHODS = {"tools/list", "prompts/list"}


def current_principal() -> Principal:
    principal = _principal.get()
    if principal is None:  # fail closed: nothing established who is calling
        raise NotPermitted("the caller is not identified")
    return principal


def note_call(**info: Any) -> None:
    """Tools report facts about the current call (tenant id, outcome) for its audit row."""
    current = _call.get()
    if current is not None:
        current.update(info)


def request_scope() -> str | None:
    """The scope the guard requires for the current request (None outside a guarded request)."""
    current = _call.get()
    return current.get("scope") if current is not None else None


def _error(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


class Guard:
    server: MCPServer | None = None  # set right after the server is built

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, ctx: Any, call_next: CallNext) -> HandlerResult:
        if ctx.method not in _DATA_METHODS and ctx.method not in _LIST_METHODS:
            return await call_next(ctx)  # handshake, discovery, pings, notifications
        started = time.perf_counter()
        info: dict[str, Any] = {}
        p_token, c_token = _principal.set(None), _call.set(info)
        try:
            principal: Principal | None = None
            refusal: SupportError | None = None
            try:
                principal = await self.app.resolve_principal()
            except SupportError as exc:
                refusal = exc
            _principal.set(principal)
            if ctx.method in _LIST_METHODS:
                if refusal is not None:
                    raise MCPError(INVALID_REQUEST, str(refusal))
                result = await call_next(ctx)
                return self._visible(result, principal) if ctx.method == "tools/list" else result
            return await self._data_request(ctx, call_next, principal, refusal, info, started)
        finally:
            _principal.reset(p_token)
            _call.reset(c_token)

    async def _data_request(self, ctx: Any, call_next: CallNext, principal: Principal | None,
                            refusal: SupportError | None, info: dict[str, Any], started: float) -> HandlerResult:
        """tools/call, resources/read, prompts/get: the same checks and one audit row each.
        A refused tool call answers an is_error result; a refused read or prompt a one-line
        protocol error (those are the only error shapes their clients understand)."""
        params = ctx.params if isinstance(ctx.params, dict) else {}
        is_tool = ctx.method == "tools/call"
        name, arguments, tenant, scope, kind = self._describe(ctx.method, params)
        info["scope"] = scope
        result: HandlerResult = None
        outcome: str | None = None
        try:
            if refusal is not None:
                if self.app.metrics is not None:
                    self.app.metrics.auth_failure("invalid_token")
                raise refusal
            assert principal is not None
            await self.app.check_rate(principal)
            self._check_allowed(name, kind, scope, principal)
            if is_tool:
                self._validate(name, arguments)
            result = await call_next(ctx)
            return result
        except SupportError as exc:
            outcome = info.get("outcome") or exc.kind
            if not is_tool:
                raise MCPError(INVALID_REQUEST, str(exc)) from None
            result = _error(str(exc))
            return result
        except MCPError as exc:  # the SDK's answer for a bad read or prompt (not found, bad arguments)
            text = exc.error.message.lower()
            outcome = info.get("outcome") or ("not_found" if "not found" in text or text.startswith("unknown")
                                              else "error")
            raise
        except BaseException as exc:
            outcome = "cancelled" if isinstance(exc, asyncio.CancelledError) else "internal"
            raise
        finally:
            if outcome is None and isinstance(result, dict) and "inputRequests" in result:
                outcome = "input_required"  # a round that asks the user (a dialog); the answer is the next request
            if outcome is None:
                is_error = bool(getattr(result, "is_error", False)
                                or (isinstance(result, dict) and result.get("isError")))
                outcome = info.get("outcome") or ("ok" if not is_error else
                                                  ("unknown_tool" if is_tool and name not in TOOLS else "error"))
            elapsed = time.perf_counter() - started
            if not info.get("logged"):  # a tool that ran logged its own summary line (toolkit.tool)
                log.info("tool_call" if is_tool else "request", **({"tool": name} if is_tool else
                         {"method": ctx.method, "name": name}), tenant=tenant if isinstance(tenant, str) else None,
                         outcome=outcome, ms=round(elapsed * 1000, 2))
            if self.app.metrics is not None:
                self.app.metrics.call(name, outcome, elapsed, tenant if info.get("tenant_id") is not None else None)
            self.app.audit.record(AuditRecord(
                tool=name, principal=principal.name if principal else "unauthenticated", outcome=outcome,
                duration_ms=round(elapsed * 1000, 3), arguments=arguments,
                tenant_slug=tenant if isinstance(tenant, str) and SLUG_RE.match(tenant) else None,
                tenant_id=info.get("tenant_id"), key_id=principal.key_id if principal else None))

    def _describe(self, method: str, params: dict[str, Any]) -> tuple[str, Any, Any, str | None, str]:
        """(audit name, arguments, tenant slug, scope needed, kind) of a data request."""
        if method == "tools/call":
            name = str(params.get("name", ""))[:100]
            arguments = params.get("arguments") or {}
            spec = spec_of(name)
            kind, scope = spec.kind, spec.scope
            tenant = arguments.get("tenant") if isinstance(arguments, dict) else None
            return name, arguments, tenant, scope, kind
        if method == "prompts/get":
            arguments = params.get("arguments") or {}
            tenant = arguments.get("tenant") if isinstance(arguments, dict) else None
            return f"prompt:{str(params.get('name', ''))[:80]}", arguments, tenant, READ_SCOPE, "read"
        if method in ("resources/templates/list", "resources/list"):
            return method, {}, None, READ_SCOPE, "read"
        uri = str(params.get("uri", ""))[:2000]
        template, values = self._template_of(uri)
        return f"resource:{template}", {"uri": uri}, values.get("slug"), READ_SCOPE, "read"

    def _template_of(self, uri: str) -> tuple[str, dict[str, Any]]:
        if self.server is not None:
            for template in sdk_internals.resource_templates(self.server):
                try:
                    values = template.matches(uri)
                except Exception:  # noqa: BLE001 - a URI the SDK's security policy rejects
                    values = None
                if values is not None:
                    return template.name, values
        return "unknown", {}

    def _check_allowed(self, name: str, kind: str, scope: str | None, principal: Principal) -> None:
        if self.app.read_only and kind in ("write", "destructive"):
            raise NotPermitted(f"{name} is disabled: this server runs in read-only mode")
        if scope is not None and scope not in principal.scopes:
            if self.app.metrics is not None:
                self.app.metrics.auth_failure("insufficient_scope")
            what = name if kind != "read" or name in TOOLS else "reading resources and prompts"
            raise NotPermitted(f"{what} needs the '{scope}' scope, which this client's key does not have")
    def _validate(self, name: str, arguments: Any) -> None:
        tool = sdk_internals.registered_tool(self.server, name) if self.server else None
        if tool is None:
            return  # the SDK answers unknown tools itself
        model = tool.fn_metadata.arg_model
        try:
            model.model_validate(arguments)
        except ValidationError as exc:
            raise InvalidInput(summarize(exc)) from None
        unknown = sorted(set(arguments) - set(model.model_fields)) if isinstance(arguments, dict) else []
        if unknown:
            known = ", ".join(model.model_fields)
            raise InvalidInput(f"invalid arguments: {', '.join(u[:40] for u in unknown[:5])}: "
                               f"not an argument of this tool (its arguments: {known})")

    def _visible(self, result: HandlerResult, principal: Principal | None) -> HandlerResult:
        """Drop tools this caller cannot use (the chain returns the wire dict here)."""
        if principal is None or not isinstance(result, dict) or not isinstance(result.get("tools"), list):
            return result

        def usable(tool: Any) -> bool:
            spec = spec_of(str(tool.get("name")))
            if self.app.read_only and spec.writes:
                return False
            return spec.scope is None or spec.scope in principal.scopes

        return {**result, "tools": [t for t in result["tools"] if usable(t)]}
