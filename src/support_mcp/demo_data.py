"""The demo tenants (`support-mcp demo`): acme and globex with their policies and a first ticket each."""

from __future__ import annotations

from . import tenancy
from .db import Database
from .desk import tickets
from .errors import Conflict

DEMO_TENANTS = {
    "acme": ("Acme Corp", "Refunds within 30 days of purchase. Be friendly and concise."),
    "globex": ("Globex Inc", "No refunds on annual plans after 14 days. Escalate outages as urgent."),
}
SEED = {
    "acme": [("Login loop on mobile app", "After the update I keep getting sent back to login.", "maria@example.com")],
    "globex": [("Invoice shows wrong VAT", "Our invoice for March has 19% VAT, we are exempt.", "ops@initech.example")],
}


async def ensure_demo_tenants(db: Database) -> list[str]:
    """Create the demo tenants and a first ticket each, if missing (idempotent)."""
    for slug, (name, policies) in DEMO_TENANTS.items():
        try:
            await tenancy.create_tenant(db, slug, name, policies=policies)
        except Conflict:
            continue
        async with db.tenant_scope(slug) as s:
            for subject, description, email in SEED[slug]:
                await tickets.create(s.conn, subject=subject, description=description, customer_email=email,
                                     customer_id=None, customer_name=None, priority="normal", tags=["demo"])
    return list(DEMO_TENANTS)
