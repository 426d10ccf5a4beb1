"""A bare MCPServer for bench/mcp_calls.py: the Python SDK's own floor for create_ticket + get_ticket
over HTTP, so the bench can say how much of the gap to raw asyncpg is ours and how much is the SDK's.

Only the SDK's `mcp.server.mcpserver.MCPServer` and asyncpg are on its request path; no support-mcp
module is imported. Two tools run the same SQL as the bench's raw_asyncpg mode (INS_TICKET and
GET_TICKET below; mcp_calls.py imports them from here) on the one plain schema `bench_single`, through
an asyncpg pool opened in the lifespan with that schema as its search_path, one autocommit statement
per call. Served like `support-mcp serve --transport http --stateless --json-response`: the SDK's
streamable HTTP app (stateless, JSON responses) under uvicorn with the same Config as
support_mcp.serving (no log config, no access log), and gc.freeze() after startup as serving does.

Left out, all of which our server does on every call: authentication (no bearer token, API key or
OAuth), the guard (authorization per tenant and scope, rate limit, argument pre-check), audit rows,
tenancy (no tenant argument, no tenant lookup, no transaction with SET LOCAL search_path/role or the
RLS tenant setting), the request log middleware and structlog context, wrapping of untrusted text in
outputs, the error hierarchy (a missing ticket is a plain ValueError), metrics. `description` is
accepted (the request is the same size as ours) but not stored: raw_asyncpg does not store it either.
Tool outputs are small pydantic models, so they carry structured content and an output schema that
the client validates, as ours do.

Run: BENCH_BARE_DSN=<admin DSN> python bench/bare_mcp_server.py --port N [--pool-size 16]
(the DSN comes from the environment so it stays out of the process list). Logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated
from uuid import UUID

import asyncpg
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

INS_TICKET = "INSERT INTO tickets (customer_id, subject) VALUES ($1, $2) RETURNING id"
GET_TICKET = "SELECT id, number, subject, status, created_at FROM tickets WHERE id = $1"
SCHEMA = "bench_single"


class Created(BaseModel):
    id: str


class TicketRow(BaseModel):
    id: str
    number: int
    subject: str
    status: str
    created_at: datetime


def build(dsn: str, pool_size: int, max_queries: int) -> MCPServer:
    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[asyncpg.Pool]:
        pool = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size, max_queries=max_queries,
                                         server_settings={"search_path": SCHEMA})
        try:
            yield pool
        finally:
            await pool.close()

    server = MCPServer("bare-mcp-bench", lifespan=lifespan, log_level="WARNING")

    @server.tool()
    async def create_ticket(ctx: Context,
                            customer_id: Annotated[UUID, Field(description="The customer's id.")],
                            subject: Annotated[str, Field(description="One-line summary.", max_length=200)],
                            description: Annotated[str, Field(description="The problem.", max_length=20000)],
                            ) -> Created:
        """Open a ticket."""
        pool: asyncpg.Pool = ctx.request_context.lifespan_context
        return Created(id=str(await pool.fetchval(INS_TICKET, customer_id, subject)))

    @server.tool()
    async def get_ticket(ctx: Context, ticket_id: Annotated[UUID, Field(description="The ticket's id.")]) -> TicketRow:
        """One ticket by id."""
        pool: asyncpg.Pool = ctx.request_context.lifespan_context
        row = await pool.fetchrow(GET_TICKET, ticket_id)
        if row is None:
            raise ValueError(f"no ticket {ticket_id}")
        return TicketRow(**{**row, "id": str(row["id"])})

    return server


async def serve(server: MCPServer, port: int) -> None:
    app = server.streamable_http_app(stateless_http=True, json_response=True, host="127.0.0.1")
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on",
                            timeout_graceful_shutdown=5)
    gc.collect()
    gc.freeze()
    # as in support_mcp.serving: uvicorn re-raises SIGTERM to the previous handler after its graceful
    # shutdown; a no-op handler lets serve() return, so the lifespan closes the pool
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    await uvicorn.Server(config).serve()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pool-size", type=int, default=16)
    ap.add_argument("--max-queries", type=int, default=50_000)
    a = ap.parse_args()
    asyncio.run(serve(build(os.environ["BENCH_BARE_DSN"], a.pool_size, a.max_queries), a.port))


if __name__ == "__main__":
    main()
