"""`support-mcp serve`: run the MCP server over stdio (default), SSE or Streamable HTTP."""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import signal
from collections.abc import Coroutine
from enum import Enum
from typing import Any

import typer

from .. import tenancy
from ..access import Principal
from ..db import Database, queries
from ..errors import NotPermitted, SupportError
from ..keys import KeyVerifier
from ..logging import get_logger
from ..server import build_server
from ..sessions import bound_sessions
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
    tenant: list[str] = typer.Option(None, "--tenant", help="Operator access to this tenant (repeatable)."),
    all_tenants: bool = typer.Option(False, "--all-tenants", help="Operator access to every tenant."),
    read_only: bool = typer.Option(False, "--read-only", help="Hide and refuse every tool that writes."),
    stripe_sandbox: bool = typer.Option(False, "--stripe-sandbox", help="Host the Stripe sandbox for evaluation "
                                        "episodes (as SUPPORT_MCP_STRIPE_SANDBOX=on)."),
) -> None:
    """Run the MCP server. Who may use which tenant is never implicit:

    stdio: --tenant SLUG ... / --all-tenants (operator), or SUPPORT_MCP_API_KEY (a key's grants).
    sse/http: API keys (or OAuth access tokens with SUPPORT_MCP_OAUTH_ISSUER) as `Authorization: Bearer ...`;
    operator flags only on a loopback address.
    Every --tenant must exist (and be active) in the database opened: else exit 1 at start.
    --data-dir / --database-url (global options) may also follow `serve`, e.g. in an MCP client's args.
    """
    s = settings()
    if stripe_sandbox:
        s = s.model_copy(update={"stripe_sandbox": True})
    operator = bool(tenant) or all_tenants
    try:
        principal = Principal.operator(tenant or None, all_tenants) if operator else None
    except SupportError as exc:
        raise fail(str(exc), 2) from None
    if transport is Transport.stdio:
        if operator and s.api_key is not None:
            raise fail("give either operator flags or SUPPORT_MCP_API_KEY, not both", 2)
        if not operator and s.api_key is None:
            raise fail("no tenant access configured: set SUPPORT_MCP_API_KEY, or pass --tenant SLUG / "
                       "--all-tenants", 2)
    elif operator and not _is_loopback(host):
        raise fail(f"operator flags serve without authentication, so only on a loopback address (not {host}); "
                   "create API keys (`support-mcp keys create`) and drop --tenant/--all-tenants", 2)
    try:
        main = _serve(s, principal, transport, host, port, stateless, json_response, read_only, tenant or [])
        # stdio: SIGTERM (how clients stop a server) cancels cleanly; uvicorn handles it for HTTP
        asyncio.run(_until_sigterm(main) if transport is Transport.stdio else main)
    except SupportError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        pass


async def _until_sigterm(run: Coroutine[Any, Any, None]) -> None:
    """Run until done or SIGTERM, then return normally so the database is closed cleanly."""
    task = asyncio.ensure_future(run)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        log.info("stopped", reason="SIGTERM")
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def _serve(s: Settings, principal: Principal | None, transport: Transport, host: str, port: int,
                 stateless: bool, json_response: bool, read_only: bool, tenants: list[str]) -> None:
    db = await Database(s).start()  # started once here, shared by every session
    try:
        await tenancy.check_servable(db, tenants)  # a --tenant missing here: fail now, naming where we looked
        bearer = transport is not Transport.stdio and principal is None
        if bearer and db.admin_pool is not None:  # api_keys: the admin's (skipped with only the app URL)
            async with db.admin_scope() as conn:
                active = await queries.count_active_api_keys(conn)
            if not active and not _is_loopback(host) and not s.oauth_issuer:
                raise NotPermitted(f"refusing to listen on {host} without API keys or OAuth: create a key with "
                                   "`support-mcp keys create` or set SUPPORT_MCP_OAUTH_ISSUER first")
            if not active and not s.oauth_issuer:
                log.warning("no_api_keys", hint="every request will get 401 until `support-mcp keys create`")
        server = build_server(s, principal, db=db, bearer=bearer, read_only=read_only,
                              issuer_url=f"http://{host}:{port}")
        # Everything imported so far lives as long as the process: move it out of the collector's
        # way, so a full collection (80-100 ms with the SDKs loaded) does not stall requests.
        gc.collect()
        gc.freeze()
        if principal is None and not bearer:  # stdio with SUPPORT_MCP_API_KEY: check it now, fail fast
            await KeyVerifier(db).principal(s.api_key.get_secret_value() if s.api_key else "")
        who = principal.name if principal else ("bearer API keys" + (f" + OAuth ({s.oauth_issuer})" if s.oauth_issuer
                                                                     else "") if bearer else "SUPPORT_MCP_API_KEY")
        if transport is Transport.stdio:
            log.info("serving", transport="stdio", principal=who, read_only=read_only)
            await server.run_stdio_async()
            return
        import uvicorn  # noqa: PLC0415

        if transport is Transport.sse:
            app = server.sse_app(host=host)
        else:
            app = server.streamable_http_app(stateless_http=stateless, json_response=json_response, host=host,
                                             session_idle_timeout=s.session_idle_seconds,
                                             max_sessions=s.max_sessions)
        bound_sessions(server, app, s, sse=transport is Transport.sse)
        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                                lifespan="on", timeout_graceful_shutdown=5)
        log.info("serving", transport=transport.value, host=host, port=port, principal=who, read_only=read_only)
        # uvicorn shuts down gracefully on SIGINT/SIGTERM and then re-raises the signal to the handler
        # that was installed before it: with the default SIGTERM handler the process dies right there
        # (exit -15), skipping db.close() below and atexit (the embedded PostgreSQL stays running).
        # A no-op handler for the duration of serve() lets it return normally instead.
        previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            await uvicorn.Server(config).serve()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    finally:
        await db.close()
