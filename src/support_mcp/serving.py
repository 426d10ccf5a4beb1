"""Serving: open the database once, check what the flags promised (tenants exist, a public
listener has keys or OAuth), build the server and run a transport until it stops. The CLI's
`support-mcp serve` parses its flags and calls `run`."""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import signal
from collections.abc import Coroutine
from enum import Enum
from typing import Any

from . import keys, migrations, tenancy
from .access import Principal
from .errors import NotPermitted
from .logging import get_logger
from .server import build_server
from .sessions import bound_sessions
from .settings import Settings

log = get_logger(__name__)


class Transport(str, Enum):
    stdio = "stdio"
    sse = "sse"
    http = "http"


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def run(s: Settings, principal: Principal | None, transport: Transport, host: str, port: int, *,
        stateless: bool = False, json_response: bool = False, read_only: bool = False,
        tenants: list[str] | None = None) -> None:
    """Serve until stopped (stdio: SIGTERM, which is how clients stop a server, cancels cleanly;
    uvicorn handles it for HTTP)."""
    main = _serve(s, principal, transport, host, port, stateless, json_response, read_only, tenants or [])
    asyncio.run(_until_sigterm(main) if transport is Transport.stdio else main)


async def _until_sigterm(main: Coroutine[Any, Any, None]) -> None:
    """Run until done or SIGTERM, then return normally so the database is closed cleanly."""
    task = asyncio.ensure_future(main)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        log.info("stopped", reason="SIGTERM")
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


async def _serve(s: Settings, principal: Principal | None, transport: Transport, host: str, port: int,
                 stateless: bool, json_response: bool, read_only: bool, tenants: list[str]) -> None:
    db = await migrations.database(s).start()  # started once here, shared by every session
    try:
        await tenancy.check_servable(db, tenants)  # a --tenant missing here: fail now, naming where we looked
        bearer = transport is not Transport.stdio and principal is None
        if bearer and db.admin_pool is not None:  # api_keys: the admin's (skipped with only the app URL)
            active = await keys.count_active(db)
            if not active and not is_loopback(host) and not s.oauth_issuer:
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
            await keys.KeyVerifier(db).principal(s.api_key.get_secret_value() if s.api_key else "")
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
