"""How tools are declared: one wrapper gives every tool the same error, logging, audit and
authorization behaviour, and `scoped()` is the one authorization + scoping path.

A data tool that finishes without having gone through `scoped()` for its own `tenant`
argument fails closed (and a registry test checks every data tool).
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from . import access, clientlog
from .app import App
from .db import Scope
from .errors import SupportError
from . import registry
from .guard import current_principal, note_call, request_scope
from .logging import bind_context, get_logger, unbind_context
from .payments.gateway import TenantStripe
from .registry import Kind
from .untrusted import tool_description

log = get_logger("support_mcp.tools")

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

TenantArg = Annotated[
    str,
    Field(description="Tenant slug (the company whose data to use), e.g. 'acme'. Required on every data tool.",
          min_length=1, max_length=40),
]

_authorized: ContextVar[str | None] = ContextVar("support_mcp_authorized", default=None)
_tool_scope: ContextVar[str | None] = ContextVar("support_mcp_tool_scope", default=None)

_ANNOTATIONS: dict[Kind, ToolAnnotations] = {
    "global": ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                              open_world_hint=False),
    "read": ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                            open_world_hint=False),
    "write": ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                             open_world_hint=False),
    "destructive": ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False,
                                   open_world_hint=False),
}
#: the client-log level of a finished call by outcome (other outcomes: refused or bad input)
_FINISH_LEVEL: dict[str, clientlog.LoggingLevel] = {"ok": "info", "internal": "error"}


def _scope() -> str:
    """The scope the current request needs: the running tool's, else what the guard decided for
    this request (a destructive tool's scope while its confirmation resolver runs; `read` for
    resources and prompts)."""
    return _tool_scope.get() or request_scope() or "read"


def app_of(ctx: Context) -> App:
    return ctx.request_context.lifespan_context


@asynccontextmanager
async def scoped(ctx: Context, tenant: str) -> AsyncIterator[Scope]:
    """Authorize the caller for `tenant` (with the current tool's scope), then enter its scope."""
    try:
        authorize(ctx, tenant)
        async with app_of(ctx).db.tenant_scope(tenant) as s:
            note_call(tenant_id=s.tenant_id)
            yield s
    except SupportError as exc:  # the audit row's outcome, also for resources and prompts
        note_call(outcome=exc.kind)
        raise


def authorize(ctx: Context, tenant: str) -> None:
    """Authorize the caller for `tenant` (current tool's scope) for code that opens its own
    tenant scopes (the knowledge base runs several transactions per call)."""
    try:
        access.authorize(current_principal(), tenant, _scope())
    except SupportError as exc:
        note_call(outcome=exc.kind)
        raise
    _authorized.set(tenant)


async def stripe_for(ctx: Context, tenant: str) -> TenantStripe:
    """Authorize the caller for `tenant`, then the tenant's Stripe connected account (the Stripe
    scoping point: every call made through it carries that account)."""
    authorize(ctx, tenant)
    stripe = await app_of(ctx).stripe.for_tenant(tenant)
    note_call(tenant_id=stripe.account.tenant_id)
    return stripe


def tool(server: MCPServer, kind: Kind, *, title: str | None = None, scope: str | None = None,
         idempotent: bool | None = None, open_world: bool = False) -> Callable[[F], F]:
    """Register `fn` as an MCP tool of the given kind (see module doc)."""
    needed = scope or registry.DEFAULT_SCOPE[kind]

    def deco(fn: F) -> F:
        name = fn.__name__

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            tenant = kwargs.get("tenant")
            tokens = (_authorized.set(None), _tool_scope.set(needed or "read"))
            ref = secrets.token_hex(4)
            bind_context(tool=name, tenant=tenant, call=ref)
            outcome, started = "ok", time.perf_counter()
            try:
                await clientlog.emit("debug", "tool_started", tool=name, tenant=tenant, call=ref)
                result = await fn(*args, **kwargs)
                if kind != "global" and _authorized.get() != tenant:
                    raise RuntimeError(f"data tool {name} returned without authorizing its tenant")
                return result
            except SupportError as exc:
                outcome = exc.kind
                raise ToolError(str(exc)) from None
            except ToolError:
                outcome = "invalid_input"
                raise
            except Exception:
                outcome = "internal"
                log.exception("tool_crashed")
                raise ToolError(f"internal error in {name} (reference {ref}); the server log has details") from None
            finally:
                note_call(outcome=outcome, logged=True)  # the guard logs no second line for it
                ms = round((time.perf_counter() - started) * 1000, 2)
                log.info("tool_call", outcome=outcome, ms=ms)
                unbind_context("tool", "tenant", "call")
                _authorized.reset(tokens[0])
                _tool_scope.reset(tokens[1])
                await clientlog.emit(_FINISH_LEVEL.get(outcome, "warning"), "tool_finished", tool=name,
                                     tenant=tenant, call=ref, outcome=outcome, ms=ms)

        ann = _ANNOTATIONS[kind]
        if idempotent is not None:
            ann = ann.model_copy(update={"idempotent_hint": idempotent})
        if open_world:  # talks to an outside system (Stripe)
            ann = ann.model_copy(update={"open_world_hint": True})
        server.tool(name=name, title=title, annotations=ann, description=tool_description(fn))(wrapper)
        registry.declare(name, kind, needed)
        return fn

    return deco
