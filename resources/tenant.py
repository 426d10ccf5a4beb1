"""Resources: tenant://{slug}/profile and ticket://{slug}/{number}."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

from support_mcp import tenancy
from support_mcp.db import Scope
from support_mcp.desk import tickets
from support_mcp.desk.render import ticket_markdown
from support_mcp.errors import NotFound, SupportError
from support_mcp.toolkit import app_of, scoped


@asynccontextmanager
async def resource_scope(ctx: Context, slug: str) -> AsyncIterator[Scope]:
    """The tools' authorization + scoping path, with errors as resource errors."""
    try:
        async with scoped(ctx, slug) as s:
            yield s
    except NotFound as exc:
        raise ResourceNotFoundError(str(exc)) from None
    except SupportError as exc:
        raise ResourceError(str(exc)) from None


def register(server: MCPServer) -> None:
    @server.resource("tenant://{slug}/profile", name="tenant_profile", mime_type="application/json",
                     description="A tenant's name, branding and support policies.")
    async def tenant_profile(slug: str, ctx: Context) -> str:
        async with resource_scope(ctx, slug):
            pass  # authorized, and the tenant exists and is active
        return json.dumps(await tenancy.get_profile(app_of(ctx).db, slug), indent=2)

    @server.resource("ticket://{slug}/{number}", name="ticket", mime_type="text/markdown",
                     description="A ticket and its thread as markdown (customer text in untrusted blocks).")
    async def ticket(slug: str, number: str, ctx: Context) -> str:
        async with resource_scope(ctx, slug) as s:
            try:
                detail = await tickets.get(s.conn, number, messages_limit=200, newest=True)
            except NotFound as exc:
                raise ResourceNotFoundError(str(exc)) from None
            except SupportError as exc:
                raise ResourceError(str(exc)) from None
        return ticket_markdown(detail)
