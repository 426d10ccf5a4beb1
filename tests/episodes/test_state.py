"""The state export (issue 12, deterministic state): canonical, complete, isolated."""

from __future__ import annotations

import hashlib
import json

import pytest

from support_mcp.episodes.state import canonical_json, export_state, state_hash
from support_mcp.errors import SupportError


async def _script(c, slug: str) -> dict:  # noqa: ANN001 - Caller
    """The same tool calls, whatever the tenant: returns the first ticket."""
    t = await c.ok("create_ticket", tenant=slug, subject="Charged twice", description="Order 77 billed twice",
                   customer_email="Jane@Example.com", customer_name="Jane Doe", priority="high",
                   tags=["vip", "billing"])
    await c.ok("create_ticket", tenant=slug, subject="Where is my parcel?", description="Ordered last week",
               customer_email="bo@example.com", customer_name="Bo")
    await c.ok("create_customer", tenant=slug, name="Ann Zed", phone="+1 555 0100")
    await c.ok("add_message", tenant=slug, ticket=t["id"], content="Any news?", author_role="customer")
    await c.ok("add_message", tenant=slug, ticket=f"#{t['number']}", content="Checking", author_role="agent",
               internal=True)
    await c.ok("update_ticket", tenant=slug, ticket=str(t["number"]), status="pending", assignee="sam",
               add_tags=["refund"])
    # a customer reply reopens it (after the status change's system note)
    await c.ok("add_message", tenant=slug, ticket=t["id"], content="Still waiting", author_role="customer")
    return t


async def test_same_calls_same_hash_despite_uuids_and_times(connect, make_tenant, db) -> None:
    a, b = await make_tenant("sa"), await make_tenant("sb")
    async with connect([a, b]) as c:
        ta = await _script(c, a)
        tb = await _script(c, b)
    assert ta["id"] != tb["id"] and ta["created_at"] != tb["created_at"]
    sa, sb = await export_state(db, a), await export_state(db, b)
    assert sa == sb and state_hash(sa) == state_hash(sb)
    text = canonical_json(sa)
    assert ta["id"] not in text and ta["customer_id"] not in text and ta["created_at"][:10] not in text
    # the export has what an agent changed, keyed naturally
    first = sa["tickets"][0]
    assert first["number"] == ta["number"] and first["customer"] == "Jane@Example.com"
    assert first["tags"] == ["billing", "refund", "vip"] and first["status"] == "open" and first["assignee"] == "sam"
    assert [(m["author_role"], m["content"]) for m in first["messages"]][:2] == [
        ("customer", "Any news?"), ("agent", "Checking")]
    assert len(first["messages"]) == 4
    assert [x["email"] for x in sa["customers"]] == ["bo@example.com", "Jane@Example.com", None]


async def test_export_is_stable_and_canonical(connect, make_tenant, db) -> None:
    a = await make_tenant("st")
    async with connect([a]) as c:
        await _script(c, a)
    one, two = await export_state(db, a), await export_state(db, a)
    assert canonical_json(one) == canonical_json(two) and state_hash(one) == state_hash(two)
    text = canonical_json(one)
    assert json.loads(text) == one and ": " not in text and ", " not in text.replace('", "', "")
    assert len(state_hash(one)) == 64 and int(state_hash(one), 16) >= 0
    # non-ASCII text stays as is (ensure_ascii=False), hashed as UTF-8
    assert state_hash({"k": "é"}) == hashlib.sha256('{"k":"é"}'.encode()).hexdigest()


async def test_every_agent_change_changes_the_hash(connect, make_tenant, db) -> None:
    a = await make_tenant("ch")
    async with connect([a], confirm_fallback=True) as c:
        t = await _script(c, a)
        ref = str(t["number"])
        seen = {state_hash(await export_state(db, a))}

        async def changed(what: str) -> None:
            h = state_hash(await export_state(db, a))
            assert h not in seen, f"{what} did not change the state hash"
            seen.add(h)

        await c.ok("update_ticket", tenant=a, ticket=ref, status="solved")
        await changed("status")
        await c.ok("update_ticket", tenant=a, ticket=ref, priority="low")
        await changed("priority")
        await c.ok("update_ticket", tenant=a, ticket=ref, add_tags=["urgent-followup"])
        await changed("a tag added")
        await c.ok("update_ticket", tenant=a, ticket=ref, remove_tags=["vip"])
        await changed("a tag removed")
        await c.ok("update_ticket", tenant=a, ticket=ref, assignee="kim")
        await changed("assignee")
        await c.ok("update_ticket", tenant=a, ticket=ref, assignee="")
        await changed("unassigned")
        await c.ok("add_message", tenant=a, ticket=ref, content="Refund sent", author_role="agent")
        await changed("a message")
        await c.ok("add_message", tenant=a, ticket=ref, content="note", author_role="agent", internal=True)
        await changed("an internal note")
        await c.ok("create_customer", tenant=a, name="New Person", email="new@example.com")
        await changed("a customer")
        extra = await c.ok("create_ticket", tenant=a, subject="Another", description="",
                           customer_email="new@example.com")
        await changed("a new ticket")
        await c.ok("ingest_document", tenant=a, title="Refund policy", text="Refunds within 30 days.",
                   source_uri="kb://refunds")
        await changed("a document")
        await c.ok("ingest_document", tenant=a, title="Refund policy", text="Refunds within 14 days.",
                   source_uri="kb://refunds")
        await changed("a document's text")
        await c.ok("delete_ticket", tenant=a, ticket=str(extra["number"]), confirm=extra["id"])
        await changed("a deleted ticket")


async def test_export_never_contains_another_tenants_data(connect, make_tenant, db) -> None:
    a, b = await make_tenant("ia"), await make_tenant("ib")
    async with connect([a, b]) as c:
        await _script(c, a)
        before = state_hash(await export_state(db, a))
        await c.ok("create_ticket", tenant=b, subject="Secret of B", description="only in b",
                   customer_email="b-only@example.com")
        await c.ok("create_ticket", tenant=a, subject="x", description="", customer_email="shared@example.com")
        await c.ok("create_ticket", tenant=b, subject="y", description="", customer_email="shared@example.com")
        after_a = await export_state(db, a)
        # B's writes never show in A's export
        await c.ok("update_ticket", tenant=b, ticket="1001", status="solved")
        assert state_hash(await export_state(db, a)) == state_hash(after_a) != before
    text = canonical_json(after_a)
    assert "Secret of B" not in text and "b-only@example.com" not in text
    assert "Secret of B" in canonical_json(await export_state(db, b))


async def test_empty_tenant_exports_empty_lists(make_tenant, db) -> None:
    a = await make_tenant("em")
    assert await export_state(db, a) == {"version": 2, "customers": [], "tickets": [], "refunds": [],
                                          "documents": [], "stripe": None}


async def test_refunds_and_stripe_refs_are_in_the_state(connect, stripe_tenant, db) -> None:
    t = await stripe_tenant()
    ch = t.acct.charge(amount=3000)
    async with connect([t.slug], confirm_fallback=True) as c:
        ticket = await c.ok("create_ticket", tenant=t.slug, subject="Refund", description=f"please refund {ch['id']}",
                            customer_email="r@example.com")
        before = state_hash(await export_state(db, t.slug))
        args = dict(tenant=t.slug, charge=ch["id"], amount=1000, reason="duplicate", confirm=ch["id"],
                    ticket=str(ticket["number"]))
        first = await c.ok("create_refund", **args)
        state = await export_state(db, t.slug)
        await c.ok("create_refund", **args)  # an idempotent replay changes nothing
        assert state_hash(await export_state(db, t.slug)) == state_hash(state) != before
    assert state["refunds"] == [{"refund_id": first["refund_id"], "charge_id": ch["id"], "amount": 1000, "currency": first["currency"],
                                 "reason": "duplicate", "ticket": ticket["number"]}]
    assert state["tickets"][0]["stripe_refs"] == sorted([ch["id"], first["refund_id"]])
    # nothing a key or the clock chose: who asked and the idempotency key stay out
    assert "support-mcp-refund-" not in canonical_json(state) and "requested_by" not in state["refunds"][0]


async def test_unknown_or_bad_tenant_is_a_clear_error(db) -> None:
    for slug in ("nosuch_tenant_xyz", "Bad Slug!"):
        with pytest.raises(SupportError) as err:
            await export_state(db, slug)
        assert "\n" not in str(err.value) and "SELECT" not in str(err.value)


async def test_messages_written_in_one_transaction_have_a_canonical_order(connect, make_tenant, db) -> None:
    """Same now(), random uuids: the thread order falls back to content, never to the uuid."""
    from support_mcp.db import queries

    a, b = await make_tenant("oa"), await make_tenant("ob")
    async with connect([a, b]) as c:
        for slug in (a, b):
            await c.ok("create_ticket", tenant=slug, subject="s", description="d", customer_email="o@example.com")
    for slug, order in ((a, ("zeta", "alpha")), (b, ("alpha", "zeta"))):
        async with db.tenant_scope(slug) as s:
            ticket = await queries.lock_ticket(s.conn, id=None, number=1001)
            for content in order:
                await queries.insert_message(s.conn, ticket_id=ticket["id"], author_role="system", internal=True,
                                             content=content)
    sa, sb = await export_state(db, a), await export_state(db, b)
    assert [m["content"] for m in sa["tickets"][0]["messages"]] == ["alpha", "zeta"]
    assert state_hash(sa) == state_hash(sb)
