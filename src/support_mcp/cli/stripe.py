"""`support-mcp stripe ...`: connect a tenant to its Stripe account, retry stored webhook events, list
quarantined ones."""

from __future__ import annotations

import sys

import typer

from ..payments import accounts
from .common import run_with_db, settings

app = typer.Typer(help="Stripe Connect: tenant accounts and webhook events.", no_args_is_help=True)


@app.command("connect")
def connect(
    slug: str = typer.Argument(..., help="The tenant."),
    account: str = typer.Option(..., "--account", help="The tenant's connected account id acct_..."),
    webhook_secret: str | None = typer.Option(
        None, "--webhook-secret", help="The signing secret (whsec_...) of the tenant's webhook endpoint; '-' reads "
        "it from stdin (keeps it out of the process list and shell history)."),
) -> None:
    """Connect (or re-connect) a tenant to its Stripe connected account."""
    if webhook_secret == "-":
        webhook_secret = sys.stdin.readline().strip()
    run_with_db(lambda db: accounts.connect(db, slug, account, webhook_secret))
    typer.echo(f"'{slug}' is connected to {account}" + ("" if webhook_secret else
               " (no webhook secret: its webhook endpoint refuses every event until one is set)"))


@app.command("disconnect")
def disconnect(slug: str = typer.Argument(..., help="The tenant.")) -> None:
    """Remove a tenant's connected account and webhook secret (payment tools then refuse)."""
    run_with_db(lambda db: accounts.disconnect(db, slug))
    typer.echo(f"'{slug}' is no longer connected to Stripe")


@app.command("retry")
def retry(
    tenant: list[str] = typer.Option(None, "--tenant", help="Only this tenant (repeatable). Default: every tenant."),
    max_attempts: int = typer.Option(100, "--max-attempts", min=1, help="Skip events that already failed this often."),
) -> None:
    """Process stored webhook events whose processing failed (oldest first)."""
    s = settings()
    result = run_with_db(lambda db: accounts.retry(s, db, tenant, max_attempts=max_attempts), s)
    done = sum(d for d, _ in result.values())
    failed = sum(f for _, f in result.values())
    for slug, (d, f) in sorted(result.items()):
        if d or f:
            typer.echo(f"{slug}: {d} processed, {f} failed")
    typer.echo(f"{done} event(s) processed, {failed} failed")
    if failed:
        raise typer.Exit(1)


@app.command("quarantine")
def quarantine(
    tenant: list[str] = typer.Option(None, "--tenant", help="Only this tenant (repeatable). Default: every tenant."),
    limit: int = typer.Option(50, "--limit", min=1, max=10_000, help="At most this many events per tenant, newest first."),
    max_attempts: int | None = typer.Option(
        None, "--max-attempts", min=1, help="Also list stored events that failed this often "
        "(default: SUPPORT_MCP_STRIPE_WEBHOOK_MAX_ATTEMPTS, where retries stop)."),
) -> None:
    """List webhook events kept in quarantine: signed events of the tenant's account that can never
    be stored or processed (NUL characters, unpaired surrogates, non-finite numbers, absurd timestamps),
    then stored events whose processing stopped after SUPPORT_MCP_STRIPE_WEBHOOK_MAX_ATTEMPTS failures."""
    s = settings()
    found = run_with_db(lambda db: accounts.quarantine(
        db, tenant, limit=limit, max_attempts=max_attempts or s.stripe_webhook_max_attempts), s)
    kept, gave_up = found.kept, found.gave_up
    for slug, r in kept:
        typer.echo(f"{slug}\t{r['event_id']}\t{r['type']}\t{r['received_at']:%Y-%m-%d %H:%M:%S}\t"
                   f"{r['deliveries']} deliveries\t{r['bytes']} bytes\t{r['reason']}")
    typer.echo(f"{len(kept)} quarantined event(s)")
    for slug, r in gave_up:
        typer.echo(f"{slug}\t{r['id']}\t{r['type']}\t{r['received_at']:%Y-%m-%d %H:%M:%S}\t"
                   f"failed {r['attempts']} times\t{r['last_error'] or ''}")
    if gave_up:
        typer.echo(f"{len(gave_up)} event(s) whose processing stopped after failing; "
                   "`support-mcp stripe retry` processes them again")
