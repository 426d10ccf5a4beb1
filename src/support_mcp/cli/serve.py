"""`support-mcp serve`: run the MCP server over stdio (default), SSE or Streamable HTTP."""

from __future__ import annotations

import typer

from ..access import Principal
from ..errors import SupportError
from ..serving import Transport, is_loopback, run
from .common import fail, settings


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
    elif operator and not is_loopback(host):
        raise fail(f"operator flags serve without authentication, so only on a loopback address (not {host}); "
                   "create API keys (`support-mcp keys create`) and drop --tenant/--all-tenants", 2)
    try:
        run(s, principal, transport, host, port, stateless=stateless, json_response=json_response,
            read_only=read_only, tenants=tenant)
    except SupportError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        pass
