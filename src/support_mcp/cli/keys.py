"""`support-mcp keys ...`: create, list, show, rotate and revoke API keys."""

from __future__ import annotations

import json
import sys
from typing import Any

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
    scope: list[str] = typer.Option(["read"], "--scope", show_default=True,
                                    help=f"Grant a scope (repeatable): {', '.join(SCOPES)}."),
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


def _when(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else "-"


def keys_table(rows: list[dict[str, Any]]) -> Table:
    """The key listing; the id column never wraps or shrinks (`keys revoke` needs it whole)."""
    table = Table()
    table.add_column("id", no_wrap=True, min_width=36)
    for heading in ("name", "tenants", "scopes", "confirm arg", "expires", "last used", "revoked"):
        table.add_column(heading)
    for r in rows:
        table.add_row(str(r["id"]), r["name"], "ALL" if r["all_tenants"] else ", ".join(r["tenants"]),
                      ", ".join(r["scopes"]), "allowed" if r["allow_confirm_argument"] else "-",
                      _when(r["expires_at"]), _when(r["last_used_at"]),
                      _when(r["revoked_at"]) if r["revoked_at"] else ("rotated" if r["replaced_by"] else "-"))
    return table


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List keys (never the keys themselves). Not on a terminal: one tab-separated line per key."""
    rows = run_with_db(keys.list_keys)
    if as_json:
        typer.echo(json.dumps(rows, default=str, indent=2))
        return
    if not sys.stdout.isatty():  # a pipe: whole values, one key per line, nothing cut to a width
        typer.echo("id\tname\ttenants\tscopes\texpires\trevoked")
        for r in rows:
            typer.echo("\t".join([str(r["id"]), r["name"], "ALL" if r["all_tenants"] else ",".join(r["tenants"]),
                                  ",".join(r["scopes"]), _when(r["expires_at"]), _when(r["revoked_at"])]))
        return
    out.print(keys_table(rows))


@app.command("show")
def show(key_id: str = typer.Argument(..., metavar="ID", help="The key's id from `keys list`.")) -> None:
    """Show one key as JSON: name, tenants, scopes, expiry, last use, revocation, replacement."""
    typer.echo(json.dumps(run_with_db(lambda db: keys.get_key(db, key_id)), default=str, indent=2))


@app.command("rotate")
def rotate(
    key_id: str = typer.Argument(..., metavar="ID", help="The key's id from `keys list`."),
    grace: str = typer.Option("1h", "--grace", metavar="DURATION",
                              help="How long the old key keeps working: 30m, 1h, 2d, 1w; 0m ends it now."),
) -> None:
    """Replace a key's secret: a new key with the same name, tenants, scopes and expiry (printed once,
    as the last line of stdout); the old key keeps working for the grace period."""
    period = usage(keys.parse_duration, grace)
    rotated = run_with_db(lambda db: keys.rotate_key(db, key_id, period))
    typer.echo(f"rotated key {rotated.old_id} to {rotated.new.id} ({rotated.new.name}); the old key works until "
               f"{rotated.old_expires_at:%Y-%m-%d %H:%M:%S %Z}. Store the new key now, it is not shown again:")
    typer.echo(rotated.new.key)


@app.command("revoke")
def revoke(key_id: str = typer.Argument(..., metavar="ID", help="The key's id from `keys list`.")) -> None:
    """Revoke a key (takes effect within SUPPORT_MCP_CACHE_SECONDS on running servers)."""
    run_with_db(lambda db: keys.revoke_key(db, key_id))
    typer.echo(f"revoked {key_id}")
