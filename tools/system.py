"""Global tools (no tenant): status and calculator."""

import time
from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from support_mcp import __version__
from support_mcp.calculator import CalculatorError, evaluate, format_result
from support_mcp.errors import InvalidInput
from support_mcp.status import AuditStatus, DatabaseStatus, database_status
from support_mcp.guard import current_principal
from support_mcp.toolkit import app_of, tool


class StatusResult(BaseModel):
    version: str
    uptime_seconds: float
    database: DatabaseStatus
    tenants_total: int | None = Field(
        description="Tenants on this server (only shown to all-tenant clients; null if the database is down)."
    )
    accessible_tenants: list[str] | None = Field(
        description="Tenant slugs this client may use; null means every tenant."
    )
    backends: dict[str, str] = Field(description="Each backend: postgres ok/unavailable; qdrant embedded/server; stripe configured/not configured "
                                     "(its calls report their own errors).")
    audit: AuditStatus | None = Field(
        default=None, description="Audit trail health of this server process: rows pending, dropped, unstorable, "
        "lost, last error (only shown to all-tenant clients)."
    )


class CalculatorResult(BaseModel):
    expression: str
    result: str = Field(description="Exact decimal result as a string, e.g. '0.3'.")


def register(server: MCPServer) -> None:
    @tool(server, "global", title="Server status")
    async def status(ctx: Context) -> StatusResult:
        """Health of support-mcp: version, uptime, database reachability and round trip,
        number of tenants, which tenants this client may use, and each backend's state."""
        app = app_of(ctx)
        principal = current_principal()
        db = await database_status(app.db, count_tenants=principal.tenants is None)
        return StatusResult(
            version=__version__,
            uptime_seconds=round(time.monotonic() - app.started_at, 1),
            database=db,
            tenants_total=db.tenants,
            accessible_tenants=None if principal.tenants is None else sorted(principal.tenants),
            backends={"postgres": "ok" if db.reachable else "unavailable",
                      "qdrant": "server" if app.settings.qdrant_url else "embedded",
                      "stripe": "configured" if app.stripe.configured else "not configured"},
            audit=None if principal.tenants is not None else AuditStatus(
                **app.audit.stats(), retention_days=app.settings.audit_retention_days),
        )

    @tool(server, "global", title="Calculator")
    async def calculator(
        expression: Annotated[str, Field(
            description="Arithmetic with exact decimals for money: + - * / // % ** ( ), unary minus, "
            "percentages, round(x[, n]), abs, min, max, sqrt. A percentage added or subtracted applies to what "
            "stands before it, as on a calculator: '19.99 * 3 - 10%' = 53.973 (10% off), '200 + 15%' = 230; "
            "elsewhere p% is p/100: '200 * 15%' = 30. 'a % b' between numbers is the remainder.",
            max_length=1000)],
    ) -> CalculatorResult:
        """Evaluate an arithmetic expression exactly (0.1 + 0.2 = 0.3). No variables or other functions."""
        try:
            return CalculatorResult(expression=expression, result=format_result(evaluate(expression)))
        except CalculatorError as exc:
            raise InvalidInput(str(exc)) from None
