"""The demo tenants (`support-mcp demo`): acme and globex with a seeded ticket each, and acme's
help-center articles. Reset on every run, so a second demo in the same data dir shows the same
thing. Only tenants the demo made are reset: an acme or globex of the operator's own is refused."""

from __future__ import annotations

from . import tenancy
from .db import Database
from .desk import tickets
from .errors import Conflict, NotFound
from .kb.ingest import NewDocument
from .kb.service import KnowledgeBase
from .logging import get_logger

log = get_logger(__name__)

DEMO_MARK = {"demo": True}  # branding of the tenants the demo made
DEMO_TENANTS = {
    "acme": ("Acme Corp", "Refunds within 30 days of purchase. Be friendly and concise."),
    "globex": ("Globex Inc", "No refunds on annual plans after 14 days. Escalate outages as urgent."),
}
SEED = {
    "acme": [("Login loop on mobile app", "After the update I keep getting sent back to login.", "maria@example.com")],
    "globex": [("Invoice shows wrong VAT", "Our invoice for March has 19% VAT, we are exempt.", "ops@initech.example")],
}
ARTICLES = {
    "acme": [
        ("Refunds and duplicate charges",
         "# Refunds and duplicate charges\n\nA duplicate charge for the same order is refunded in full, at once, "
         "to the original card: it takes 5-10 business days to appear. Other refunds are possible within 30 days "
         "of purchase.\n"),
        ("Mobile app: stuck on the login screen",
         "# Mobile app: stuck on the login screen\n\nIf the app keeps returning to the login screen after an "
         "update, sign out on every device, clear the app's cache and sign in again. Version 4.2.1 fixes the "
         "loop.\n"),
    ],
}


def _is_demo(info: tenancy.TenantInfo) -> bool:
    name, policies = DEMO_TENANTS[info.slug]
    made_by_demo = (info.branding or {}).get("demo") is True
    return made_by_demo or (info.name, info.policies) == (name, policies)  # from a demo before the mark


async def reset_demo_tenants(db: Database, kb: KnowledgeBase) -> list[str]:
    """Delete the demo tenants (with their search namespaces) if the demo made them, then create them
    afresh: a seeded ticket each, and acme's articles in its knowledge base."""
    for slug in DEMO_TENANTS:
        try:
            info = await tenancy.get_tenant(db, slug)
        except NotFound:
            continue
        if not _is_demo(info):
            raise Conflict(f"tenant '{slug}' exists and is not the demo's: run the demo with another --data-dir")
        await tenancy.delete_tenant(db, slug)
        await kb.drop_tenant_namespace(info.rag_index_namespace)
    for slug, (name, policies) in DEMO_TENANTS.items():
        await tenancy.create_tenant(db, slug, name, policies=policies, branding=DEMO_MARK)
        async with db.tenant_scope(slug) as s:
            for subject, description, email in SEED[slug]:
                await tickets.create(s.conn, subject=subject, description=description, customer_email=email,
                                     customer_id=None, customer_name=None, priority="normal", tags=["demo"])
        if slug in ARTICLES:
            await kb.ingest_documents(slug, [NewDocument(title, text) for title, text in ARTICLES[slug]])
    log.info("demo_tenants_ready", tenants=list(DEMO_TENANTS))
    return list(DEMO_TENANTS)
