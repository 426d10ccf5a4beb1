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
from ..kb.service import KnowledgeBase
from .common import run_with_db

app = typer.Typer(help="Evaluation episodes: a seeded tenant and its own API key per run.", no_args_is_help=True)
out = Console(soft_wrap=True)


def _dump(obj: object) -> str:
    return json.dumps(obj, default=str, indent=2)


@app.command("create")
def create(
    fixture: Path = typer.Option(..., "--fixture", metavar="FILE", help="Fixture file (.json, .yaml or .yml)."),
    ttl: str = typer.Option("30m", "--ttl", help="Lifetime of the episode and its key: 30m, 12h, 2d, 1w."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Create an episode: a tenant seeded from FILE and a key for that tenant only (printed once)."""

    async def go(db: Database) -> dict[str, Any]:
        lifetime = keys.parse_duration(ttl)
        kb = KnowledgeBase(db.settings, db)
        try:
            return await service.create(db, kb, fixture, lifetime)
        finally:
            await kb.close()

    made = run_with_db(go)
    if as_json:
        typer.echo(_dump(made))
        return
    typer.echo(f"created episode {made['episode']} (tenant {made['tenant']}), expires {made['expires_at']}; "
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
    table = Table("id", "tenant", "fixture sha256", "expires", "created")
    for r in rows:
        table.add_row(str(r["id"]), r["tenant"], r["fixture_sha256"][:12],
                      f"{r['expires_at']:%Y-%m-%d %H:%M}", f"{r['created_at']:%Y-%m-%d %H:%M}")
    out.print(table)
    out.print(f"{len(rows)} episode(s)")
