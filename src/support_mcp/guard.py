"""The request guard (ServerMiddleware): establishes the caller of every request, then for
tools/call enforces the rate limit, read-only mode and argument validation, and writes one
audit row per call, allowed or refused. tools/list shows only what the caller may use."""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Any

from mcp.server.context import CallNext, HandlerResult
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_REQUEST, CallToolResult, TextContent
from pydantic import ValidationError

from .access import Principal
from .app import App
from .audit import AuditRecord
from .db import SLUG_RE
from .errors import InvalidInput, NotPermitted, SupportError
from .validation import summarize

_principal: ContextVar[Principal | None] = ContextVar("support_mcp_principal", default=None)
_call: ContextVar[dict[str, Any] | None] = ContextVar("support_mcp_call", default=None)

# Requests that reach tenant data: the caller must be established for each of them.
_DATA_METHODS = {"tools/call", "resources/read", "prompts/get"}

#: tool name -> (kind, scope or None); filled by toolkit.tool
TOOL_POLICY: dict[str, tuple[str, str | None]] = {}


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


def _error(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


class Guard:
    server: MCPServer | None = None  # set right after the server is built

    def __init__(self, app: App, *, minimal: bool = False) -> None:
        # minimal: establish the caller only (no rate limit, argument check or audit); a baseline
        # for benchmarking what the rest costs, never a serving mode
        self.app, self.minimal = app, minimal

    async def __call__(self, ctx: Any, call_next: CallNext) -> HandlerResult:
        if ctx.method not in _DATA_METHODS and ctx.method != "tools/list":
            return await call_next(ctx)  # handshake, discovery, listings of static metadata
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
            if ctx.method == "tools/list":
                return self._visible(await call_next(ctx), principal)
            if ctx.method == "tools/call" and not self.minimal:
                return await self._tool_call(ctx, call_next, principal, refusal, info, started)
            if refusal is not None:
                raise MCPError(INVALID_REQUEST, str(refusal))
            return await call_next(ctx)
        finally:
            _principal.reset(p_token)
            _call.reset(c_token)

    async def _tool_call(self, ctx: Any, call_next: CallNext, principal: Principal | None,
                         refusal: SupportError | None, info: dict[str, Any], started: float) -> HandlerResult:
        params = ctx.params if isinstance(ctx.params, dict) else {}
        name = str(params.get("name", ""))[:100]
        arguments = params.get("arguments") or {}
        result: HandlerResult = None
        try:
            if refusal is not None:
                raise refusal
            assert principal is not None
            await self.app.check_rate(principal)
            self._check_allowed(name, principal)
            self._validate(name, arguments)
            result = await call_next(ctx)
            return result
        except SupportError as exc:
            info.setdefault("outcome", exc.kind)
            result = _error(str(exc))
            return result
        finally:
            is_error = bool(getattr(result, "is_error", False) or (isinstance(result, dict) and result.get("isError")))
            outcome = info.get("outcome") or ("ok" if not is_error else
                                              ("unknown_tool" if name not in TOOL_POLICY else "error"))
            tenant = arguments.get("tenant") if isinstance(arguments, dict) else None
            self.app.audit.record(AuditRecord(
                tool=name, principal=principal.name if principal else "unauthenticated", outcome=outcome,
                duration_ms=round((time.perf_counter() - started) * 1000, 3), arguments=arguments,
                tenant_slug=tenant if isinstance(tenant, str) and SLUG_RE.match(tenant) else None,
                tenant_id=info.get("tenant_id"), key_id=principal.key_id if principal else None))

    def _check_allowed(self, name: str, principal: Principal) -> None:
        kind, scope = TOOL_POLICY.get(name, ("global", None))
        if self.app.read_only and kind in ("write", "destructive"):
            raise NotPermitted(f"{name} is disabled: this server runs in read-only mode")
        if scope is not None and scope not in principal.scopes:
            raise NotPermitted(f"{name} needs the '{scope}' scope, which this client's key does not have")

    def _validate(self, name: str, arguments: Any) -> None:
        tool = self.server._tool_manager.get_tool(name) if self.server else None  # noqa: SLF001
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
            kind, scope = TOOL_POLICY.get(str(tool.get("name")), ("global", None))
            if self.app.read_only and kind in ("write", "destructive"):
                return False
            return scope is None or scope in principal.scopes

        return {**result, "tools": [t for t in result["tools"] if usable(t)]}
