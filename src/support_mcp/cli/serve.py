"""`support-mcp serve`: run the MCP server over stdio (default), SSE or Streamable HTTP."""

from __future__ import annotations

import asyncio
from enum import Enum

import typer

from ..access import Principal
from ..db import Database
from ..errors import SupportError
from ..logging import get_logger
from ..server import build_server
from ..settings import Settings
from .common import fail, settings

log = get_logger(__name__)


class Transport(str, Enum):
    stdio = "stdio"
    sse = "sse"
    http = "http"


def serve(
    transport: Transport = typer.Option(Transport.stdio, "--transport", "-t",
                                        help="stdio (what Claude Desktop runs), sse, or http (Streamable HTTP at /mcp)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Bind address for sse/http."),
    port: int = typer.Option(8000, "--port", help="Port for sse/http."),
    stateless: bool = typer.Option(False, "--stateless",
                                   help="Streamable HTTP without sessions (for replicas behind a load balancer)."),
    json_response: bool = typer.Option(False, "--json-response",
                                       help="Streamable HTTP answers with plain JSON instead of SSE streams."),
    tenant: list[str] = typer.Option(None, "--tenant", help="Serve this tenant (repeatable)."),
    all_tenants: bool = typer.Option(False, "--all-tenants", help="Serve every tenant (operator use)."),
) -> None:
    """Run the MCP server. Tenant access must be explicit: --tenant SLUG ... or --all-tenants."""
    s = settings()
    try:
        principal = Principal.operator(tenant or None, all_tenants)
    except SupportError as exc:
        raise fail(str(exc), 2) from None
    try:
        asyncio.run(_serve(s, principal, transport, host, port, stateless, json_response))
    except SupportError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        pass


async def _serve(s: Settings, principal: Principal, transport: Transport, host: str, port: int,
                 stateless: bool, json_response: bool) -> None:
    db = await Database(s).start()  # started once here, shared by every session
    try:
        server = build_server(s, principal, db=db)
        if transport is Transport.stdio:
            log.info("serving", transport="stdio", principal=principal.name)
            await server.run_stdio_async()
            return
        import uvicorn  # noqa: PLC0415

        if transport is Transport.sse:
            app = server.sse_app(host=host)
        else:
            app = server.streamable_http_app(stateless_http=stateless, json_response=json_response, host=host)
        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                                lifespan="on", timeout_graceful_shutdown=5)
        log.info("serving", transport=transport.value, host=host, port=port, principal=principal.name)
        await uvicorn.Server(config).serve()
    finally:
        await db.close()
