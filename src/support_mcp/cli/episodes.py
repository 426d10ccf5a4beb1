"""`support-mcp episodes ...`: ephemeral seeded tenants for evaluation runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from .. import keys
from ..db import Database
from ..episodes import service
from ..episodes.tasks import BUILTIN_FIXTURES
from ..kb.service import KnowledgeBase
from ..payments.gateway import StripeGateway
from ..payments.webhooks import WebhookReceiver
from ..stripe_sandbox.listener import start_sandbox
from ..stripe_sandbox.trigger import EVENTS
from .common import fail, run_with_db, usage

app = typer.Typer(help="Evaluation episodes: a seeded tenant and its own API key per run.", no_args_is_help=True)
out = Console(soft_wrap=True)


def _dump(obj: object) -> str:
    return json.dumps(obj, default=str, indent=2)


@app.command("create")
def create(
    fixture: Path = typer.Option(..., "--fixture", metavar="FILE",
                                 help="Fixture file (.json, .yaml or .yml), or a built-in name: acme, suite."),
    ttl: str = typer.Option("30m", "--ttl", help="Lifetime of the episode and its key: 30m, 12h, 2d, 1w."),
    deterministic: bool = typer.Option(False, "--deterministic",
                                       help="Freeze the clock and seed ids: the same tool calls give the same "
                                            "state hash (README \"Determinism rules\")."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Create an episode: a tenant seeded from FILE and a key for that tenant only (printed once)."""
    lifetime = usage(keys.parse_duration, ttl)

    if not fixture.exists() and str(fixture) in BUILTIN_FIXTURES:
        fixture = BUILTIN_FIXTURES[str(fixture)]

    async def go(db: Database) -> dict[str, Any]:
        kb = KnowledgeBase(db.settings, db)
        try:
            return await service.create(db, kb, fixture, lifetime, deterministic=deterministic)
        finally:
            await kb.close()

    made = run_with_db(go)
    if as_json:
        typer.echo(_dump(made))
        return
    frozen = f", deterministic (clock {made['clock']})" if made.get("deterministic") else ""
    typer.echo(f"created episode {made['episode']} (tenant {made['tenant']}){frozen}, expires {made['expires_at']}; "
               "its key, shown once:")
    typer.echo(made["api_key"])


@app.command("state")
def state(
    episode_id: str = typer.Argument(..., metavar="ID", help="The episode's id."),
    as_json: bool = typer.Option(False, "--json", help="Print the state too, as JSON."),
) -> None:
    """Print the episode's state hash (with --json: {"state_hash", "state"})."""
    got = run_with_db(lambda db: service.state(db, episode_id))
    typer.echo(_dump(got) if as_json else got["state_hash"])


@app.command("destroy")
def destroy(episode_id: str = typer.Argument(..., metavar="ID", help="The episode's id (never a tenant).")) -> None:
    """Destroy an episode: its key, tenant (data, audit rows) and search namespace."""

    async def go(db: Database) -> dict[str, Any]:
        kb = KnowledgeBase(db.settings, db)
        try:
            return await service.destroy(db, episode_id, kb)
        finally:
            await kb.close()

    gone = run_with_db(go)
    typer.echo(f"destroyed episode {gone['episode']} (tenant {gone['tenant']})")


@app.command("reset")
def reset(episode_id: str = typer.Argument(..., metavar="ID", help="The episode's id (never a tenant).")) -> None:
    """Put an episode back to its fixture, in place (same id, tenant, key and expiry)."""

    async def go(db: Database) -> dict[str, Any]:
        kb = KnowledgeBase(db.settings, db)
        try:
            return await service.reset(db, kb, episode_id)
        finally:
            await kb.close()

    done = run_with_db(go)
    typer.echo(f"reset episode {done['episode']} (tenant {done['tenant']}) to its fixture")


@app.command("sweep")
def sweep() -> None:
    """Destroy every expired episode now (a server does it every SUPPORT_MCP_EPISODES_SWEEP_SECONDS)."""

    async def go(db: Database) -> list[dict[str, Any]]:
        kb = KnowledgeBase(db.settings, db)
        try:
            return await service.sweep(db, kb)
        finally:
            await kb.close()

    gone = run_with_db(go)
    for ep in gone:
        typer.echo(f"destroyed expired episode {ep['episode']} (tenant {ep['tenant']})")
    typer.echo(f"{len(gone)} expired episode(s) destroyed")


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List episodes (never their keys)."""
    rows = run_with_db(service.list_)
    if as_json:
        typer.echo(_dump(rows))
        return
    table = Table("id", "tenant", "fixture sha256", "deterministic", "expires", "created")
    for r in rows:
        table.add_row(str(r["id"]), r["tenant"], r["fixture_sha256"][:12], "yes" if r["deterministic"] else "no",
                      f"{r['expires_at']:%Y-%m-%d %H:%M}", f"{r['created_at']:%Y-%m-%d %H:%M}")
    out.print(table)
    out.print(f"{len(rows)} episode(s)")


@app.command("trigger")
def trigger(
    episode_id: str = typer.Argument(..., metavar="ID", help="The episode's id."),
    event_type: str = typer.Argument(..., metavar="EVENT_TYPE", help="One of: " + ", ".join(EVENTS) + "."),
    object_id: str = typer.Option(None, "--object", metavar="OBJ_ID",
                                  help="The sandbox object it happens to: a charge ch_... (charge.*), a payment "
                                  "intent pi_... (payment_intent.*)."),
    amount: int = typer.Option(None, "--amount", min=1, help="charge.refunded: how much (default: all that is left)."),
    reason: str = typer.Option(None, "--reason", help="charge.dispute.created: the dispute's reason (default general)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Make a Stripe event happen on the episode's sandbox account and deliver it, signed, through the
    webhook path, so the episode's tenant processes it as it would a real one."""

    async def go(db: Database) -> dict[str, Any]:
        gateway = StripeGateway(db.settings, db)
        listener = await start_sandbox(db, gateway)  # the webhook path looks objects up in the sandbox
        try:
            return await service.trigger(db, WebhookReceiver(db.settings, db, gateway), episode_id, event_type,
                                         object_id, amount=amount, reason=reason)
        finally:
            await gateway.close()
            await listener.stop()

    done = run_with_db(go)
    if as_json:
        typer.echo(_dump(done))
    else:
        outcome = done["response"].get("outcome") or done["response"].get("error") or ""
        typer.echo(f"delivered {done['type']} {done['event']} ({done['object']}): HTTP {done['status']} {outcome}")
    if done["status"] != 200:
        raise fail(f"the webhook answered {done['status']}: {done['response'].get('error') or done['response']}")
