"""`support-mcp audit` and `support-mcp analytics`."""

from __future__ import annotations

import json
from dataclasses import asdict

import typer
from rich.console import Console
from rich.table import Table

from .. import audit_retention, reports
from ..db import Database
from .common import run_with_db, settings, since_arg

out = Console(soft_wrap=True)


audit_app = typer.Typer(help="The audit trail: list it (no subcommand) or prune it.",
                        invoke_without_command=True)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
    app.command("analytics")(analytics)


@audit_app.command("prune")
def prune(
    days: int | None = typer.Option(None, "--days", min=1,
                                    help="Delete rows older than this (default: SUPPORT_MCP_AUDIT_RETENTION_DAYS)."),
) -> None:
    """Delete audit rows past retention (and rows of deleted tenants stored after their deletion)."""
    s = settings()
    keep = days if days is not None else s.audit_retention_days
    if keep == 0:
        typer.echo("audit prune: SUPPORT_MCP_AUDIT_RETENTION_DAYS is 0 (keep forever); nothing pruned "
                   "(pass --days N to prune anyway)")
        return

    async def go(db: Database) -> int:
        return await audit_retention.prune(db, keep)

    gone = run_with_db(go, s)
    typer.echo(f"audit prune: {gone} row(s) older than {keep} day(s) deleted")


@audit_app.callback()
def audit(
    ctx: typer.Context,
    tenant: str | None = typer.Option(None, "--tenant", help="Only calls naming this tenant."),
    since: str | None = typer.Option(None, "--since", help="1h, 7d, or an ISO timestamp."),
    limit: int = typer.Option(100, "--limit", min=1, max=100_000),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show the audit trail of tool calls (newest first; arguments are masked). `audit prune`
    deletes rows past retention."""
    if ctx.invoked_subcommand is not None:
        return
    start = since_arg(since)

    async def go(db: Database) -> list[dict]:
        return await reports.audit_rows(db, tenant=tenant, since=start, limit=limit)

    rows = run_with_db(go)
    if as_json:
        typer.echo(json.dumps(rows, default=str, indent=2))
        return
    table = Table("at", "tenant", "tool", "outcome", "ms", "principal")
    for r in rows:
        table.add_row(f"{r['at']:%Y-%m-%d %H:%M:%S}", r["tenant_slug"] or "-", r["tool"], r["outcome"],
                      f"{r['duration_ms']:.1f}", r["principal"])
    out.print(table)


def analytics(
    since: str | None = typer.Option(None, "--since", help="Window for call and rating stats: 1h, 7d, ISO."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Per-tenant ticket counts by status, tool calls, error rate, p50 latency and ratings."""
    start = since_arg(since)

    async def go(db: Database) -> list[reports.TenantStats]:
        return await reports.analytics(db, since=start,
                                       concurrency=db.settings.migrate_concurrency)

    rows = run_with_db(go)
    if as_json:
        typer.echo(json.dumps([{**asdict(r), "error_rate": r.error_rate} for r in rows], default=str, indent=2))
        return
    table = Table("tenant", "status", "open", "pending", "solved", "closed", "calls", "errors", "p50 ms", "rating")
    for r in rows:
        t = r.tickets
        table.add_row(r.slug, r.status, *(str(t.get(k, 0)) for k in ("open", "pending", "solved", "closed")),
                      str(r.calls), f"{r.error_rate:.1%}" if r.error_rate is not None else "-",
                      f"{r.p50_ms:.1f}" if r.p50_ms is not None else "-",
                      f"{r.avg_rating:.2f} ({r.ratings})" if r.avg_rating is not None else "-")
    out.print(table)
