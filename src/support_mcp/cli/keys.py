"""`support-mcp keys ...`: create, list and revoke API keys."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from .. import keys
from ..access import SCOPES
from ..db import Database
from .common import run_with_db, usage

app = typer.Typer(help="API keys: which tenants and scopes a client gets.", no_args_is_help=True)
out = Console(soft_wrap=True)


@app.command("create")
def create(
    name: str = typer.Option(..., "--name", help="Who or what uses the key."),
    tenant: list[str] = typer.Option(None, "--tenant", help="Grant this tenant (repeatable)."),
    all_tenants: bool = typer.Option(False, "--all-tenants", help="Grant every tenant (platform operators)."),
    scope: list[str] = typer.Option(None, "--scope", help=f"Grant a scope (repeatable): {', '.join(SCOPES)}."),
    expires: str | None = typer.Option(None, "--expires", help="Lifetime such as 30m, 12h, 30d, 8w."),
    allow_confirm_argument: bool = typer.Option(
        False, "--allow-confirm-argument", help="Let this key confirm destructive tools with the `confirm` argument "
        "when its client cannot show confirmation dialogs (the model could then confirm by itself)."),
) -> None:
    """Create a key. The plaintext key is printed once, as the last line of stdout."""
    lifetime = usage(keys.parse_duration, expires) if expires else None

    async def go(db: Database) -> keys.CreatedKey:
        return await keys.create_key(db, name, tenants=tenant or [], all_tenants=all_tenants,
                                     scopes=scope or ["read"], expires_in=lifetime,
                                     allow_confirm_argument=allow_confirm_argument)

    created = run_with_db(go)
    typer.echo(f"created key {created.id} ({created.name}); store it now, it is not shown again:")
    typer.echo(created.key)


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List keys (never the keys themselves)."""
    rows = run_with_db(keys.list_keys)
    if as_json:
        typer.echo(json.dumps(rows, default=str, indent=2))
        return
    table = Table("id", "name", "tenants", "scopes", "confirm arg", "expires", "last used", "revoked")
    for r in rows:
        table.add_row(str(r["id"]), r["name"], "ALL" if r["all_tenants"] else ", ".join(r["tenants"]),
                      ", ".join(r["scopes"]), "allowed" if r["allow_confirm_argument"] else "-",
                      f"{r['expires_at']:%Y-%m-%d %H:%M}" if r["expires_at"] else "-",
                      f"{r['last_used_at']:%Y-%m-%d %H:%M}" if r["last_used_at"] else "-",
                      f"{r['revoked_at']:%Y-%m-%d %H:%M}" if r["revoked_at"] else "-")
    out.print(table)


@app.command("revoke")
def revoke(key_id: str = typer.Argument(..., help="The key's id from `keys list`.")) -> None:
    """Revoke a key (takes effect within SUPPORT_MCP_KEY_CACHE_SECONDS on running servers)."""
    run_with_db(lambda db: keys.revoke_key(db, key_id))
    typer.echo(f"revoked {key_id}")
