"""The bulk paths an episode's fixture takes (episodes/seed.py, episodes/documents.py) write what the
per-row domain functions (fixtures.apply_fixture, the tools' own path) write: same state export."""

from __future__ import annotations

import json

from support_mcp.episodes.fixtures import apply_fixture, parse_fixture, write_documents
from support_mcp.episodes.seed import write_desk_fast
from support_mcp.episodes.state import export_state

from .test_episodes import ACME

RICH = {
    "tenant": {"name": "Rich Co"},
    "customers": [{"name": "Ann", "email": "Ann@Example.com", "phone": "+1 555"}, {"name": "Bob", "email": "bob@x.co"},
                  {"name": "Cy", "email": "cy@x.co"}],
    "tickets": [
        {"subject": "Refund ch_ABC12345 please", "description": "Charged twice: see pi_XYZ78901.",
         "customer_email": "ann@example.com", "status": "solved", "priority": "urgent", "tags": ["Billing", "vip"],
         "assignee": "  sam@x.co ", "messages": [
             {"author_role": "customer", "content": "Also dp_DIS10000 is open"},
             {"author_role": "system", "content": "Imported", "internal": True},
             {"author_role": "agent", "content": "Looking", "internal": True},
             {"author_role": "ai", "content": "Refund re_R1000000 issued"}]},
        {"subject": "Closed one", "description": "x", "customer_email": "bob@x.co", "status": "closed"},
        {"subject": "Assigned only", "description": "y", "customer_email": "bob@x.co", "assignee": "lee@x.co"},
        {"subject": "Pending", "description": "z", "customer_email": "cy@x.co", "status": "pending",
         "messages": [{"author_role": "customer", "content": "hello"}]},
        {"subject": "Blank assignee", "description": "w", "customer_email": "cy@x.co", "assignee": "  "},
    ],
}


async def test_bulk_desk_equals_domain_path(db, kb, make_tenant) -> None:
    for data in (RICH, json.loads(ACME.read_text()) | {"documents": []}):
        fixture = parse_fixture(data)
        a, b = await make_tenant("slow"), await make_tenant("fast")
        await apply_fixture(db, kb, a, fixture)
        async with db.tenant_scope(b) as s:
            await write_desk_fast(s.conn, fixture)
        sa, sb = await export_state(db, a), await export_state(db, b)
        assert sa == sb and sa["tickets"]
        async with db.tenant_scope(a) as s:
            refs_a = sorted(tuple(r) for r in await s.conn.fetch(
                "SELECT r.ref, t.number FROM ticket_stripe_refs r JOIN tickets t ON t.id = r.ticket_id"))
        async with db.tenant_scope(b) as s:
            refs_b = sorted(tuple(r) for r in await s.conn.fetch(
                "SELECT r.ref, t.number FROM ticket_stripe_refs r JOIN tickets t ON t.id = r.ticket_id"))
        assert refs_a == refs_b
        if data is RICH:
            assert {r for r, _ in refs_a} >= {"ch_ABC12345", "pi_XYZ78901", "dp_DIS10000", "re_R1000000"}


async def test_bulk_documents_equal_ingest_path(db, kb, make_tenant) -> None:
    data = json.loads(ACME.read_text())
    data["documents"].append({"title": "Shipping", "text": "Replaced text for the same source.",
                              "source_uri": "https://help.acme.example/shipping"})
    fixture = parse_fixture({"documents": data["documents"]})
    a, b = await make_tenant("dslow"), await make_tenant("dfast")
    await apply_fixture(db, kb, a, fixture)
    await write_documents(kb, b, fixture)
    assert (await export_state(db, a))["documents"] == (await export_state(db, b))["documents"]
    for slug in (a, b):
        hits = await kb.search(slug, "replaced text", limit=3)
        assert "Replaced text" in json.dumps(hits.model_dump(mode="json"))
