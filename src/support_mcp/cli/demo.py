"""`support-mcp demo`: provision demo tenants with data, then show them."""

from __future__ import annotations

import typer

from .. import tenancy
from ..db import Database
from ..errors import Conflict
from .common import run_with_db

DEMO_TENANTS = {
    "acme": ("Acme Corp", "Refunds within 30 days of purchase. Be friendly and concise."),
    "globex": ("Globex Inc", "No refunds on annual plans after 14 days. Escalate outages as urgent."),
}


async def ensure_demo_tenants(db: Database) -> list[str]:
    """Create the demo tenants if missing (idempotent); returns their slugs."""
    for slug, (name, policies) in DEMO_TENANTS.items():
        try:
            await tenancy.create_tenant(db, slug, name, policies=policies)
        except Conflict:
            pass
    return list(DEMO_TENANTS)


def demo() -> None:
    """Provision the demo tenants (acme, globex) on the configured database and list them."""

    async def go(db: Database) -> list[tenancy.TenantInfo]:
        await ensure_demo_tenants(db)
        return await tenancy.list_tenants(db)

    for t in run_with_db(go):
        typer.echo(f"{t.slug:<12} {t.name:<20} {t.status}")
