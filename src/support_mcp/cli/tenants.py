"""`support-mcp tenants ...`: provision, inspect, suspend, delete, back up and restore."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from .. import backup, offboarding, tenancy
from ..db import Database
from .common import fail, json_object_arg, run_with_db, text_arg

app = typer.Typer(help="Manage tenants (one schema, role and namespace each).", no_args_is_help=True)
out = Console(soft_wrap=True)


def _dump(obj: object) -> str:
    return json.dumps(obj, default=str, indent=2)


@app.command("create")
def create(
    slug: str = typer.Argument(..., help="1-40 chars: a-z, 0-9, _; not starting with a digit."),
    name: str = typer.Option(..., "--name", help="Display name of the company."),
    stripe_account: str | None = typer.Option(None, "--stripe-account", help="Connected account acct_..."),
    webhook_secret: str | None = typer.Option(None, "--webhook-secret", help="The tenant's whsec_... secret."),
    policies: str | None = typer.Option(None, "--policies", help="Support policies text (or @file)."),
) -> None:
    """Create a tenant: schema, role, latest template and registry row in one transaction."""
    policies = text_arg(policies, "--policies")

    async def go(db: Database) -> tenancy.TenantInfo:
        return await tenancy.create_tenant(
            db, slug, name, stripe_account_id=stripe_account,
            stripe_webhook_secret=webhook_secret, policies=policies,
        )

    info = run_with_db(go)
    typer.echo(f"created tenant '{info.slug}' ({info.name}), id {info.id}")


@app.command("update")
def update(
    slug: str = typer.Argument(..., metavar="SLUG", help="The tenant."),
    name: str | None = typer.Option(None, "--name", help="New display name."),
    policies: str | None = typer.Option(None, "--policies", metavar="TEXT|@FILE",
                                        help="New support policies: the text, or @FILE (UTF-8)."),
    branding: str | None = typer.Option(None, "--branding", metavar="JSON|@FILE",
                                        help="New branding: a JSON object, or @FILE.json (replaces the old one)."),
) -> None:
    """Change a tenant's name, policies or branding (what is not given stays)."""
    if name is None and policies is None and branding is None:
        raise fail("give --name, --policies and/or --branding", 2)
    text = text_arg(policies, "--policies")
    brand = json_object_arg(branding, "--branding")
    run_with_db(lambda db: tenancy.set_profile(db, slug, name=name, policies=text, branding=brand))
    changed = [what for what, value in (("name", name), ("policies", text), ("branding", brand)) if value is not None]
    typer.echo(f"updated '{slug}': {', '.join(changed)}")


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List tenants."""
    rows = run_with_db(tenancy.list_tenants)
    if as_json:
        typer.echo(_dump([asdict(r) for r in rows]))
        return
    table = Table("slug", "name", "status", "stripe account", "created")
    for r in rows:
        table.add_row(r.slug, r.name, r.status, r.stripe_account_id or "-", f"{r.created_at:%Y-%m-%d %H:%M}")
    out.print(table)
    out.print(f"{len(rows)} tenant(s)")


@app.command("show")
def show(slug: str) -> None:
    """Show one tenant (secrets are never printed)."""
    info = run_with_db(lambda db: tenancy.get_tenant(db, slug))
    typer.echo(_dump(asdict(info)))


@app.command("suspend")
def suspend(slug: str) -> None:
    """Suspend a tenant: every data tool refuses it until resumed."""
    run_with_db(lambda db: tenancy.set_status(db, slug, "suspended"))
    typer.echo(f"suspended '{slug}'")


@app.command("resume")
def resume(slug: str) -> None:
    """Resume a suspended tenant."""
    run_with_db(lambda db: tenancy.set_status(db, slug, "active"))
    typer.echo(f"resumed '{slug}'")


@app.command("delete")
def delete(
    slug: str,
    yes: bool = typer.Option(False, "--yes", help="Required: confirms that all data goes."),
) -> None:
    """Delete a tenant with all its data: schema, role and registry row."""
    if not yes:
        raise fail(f"deleting '{slug}' removes all its data; repeat with --yes to confirm", 2)
    for warning in run_with_db(lambda db: offboarding.delete_tenant(db, slug)):
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"deleted '{slug}'")


@app.command("allow-global-docs")
def allow_global_docs(slug: str, off: bool = typer.Option(False, "--off", help="Disallow instead.")) -> None:
    """Let the tenant's agents also search the shared global documents (search_docs include_global)."""
    run_with_db(lambda db: tenancy.set_allow_global_docs(db, slug, not off))
    typer.echo(f"'{slug}' {'may not' if off else 'may'} search the global documents")


@app.command("backup")
def backup_(
    slug: str,
    output: Path = typer.Option(..., "-o", "--output", help="Archive file to write."),
) -> None:
    """Back up one tenant (its schema and registry row) with the server's own pg_dump."""
    size = run_with_db(lambda db: backup.backup_tenant(db, slug, output))
    typer.echo(f"backed up '{slug}' to {output} ({size} bytes)")


@app.command("restore")
def restore(
    archive: Path = typer.Argument(..., exists=True, dir_okay=False, help="File from `tenants backup`."),
    as_slug: str | None = typer.Option(None, "--as", help="Restore under a new slug."),
) -> None:
    """Restore a tenant from a backup, optionally under a new slug."""
    slug = run_with_db(lambda db: backup.restore_tenant(db, archive, as_slug=as_slug))
    typer.echo(f"restored '{slug}' from {archive}")
