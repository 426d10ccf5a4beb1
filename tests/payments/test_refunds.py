"""create_refund: scope, confirmation, validation, idempotency and the ticket note."""

from __future__ import annotations

from mcp.types import ElicitResult


async def _ticket(c, slug: str, text: str = "please refund") -> dict:
    return await c.ok("create_ticket", tenant=slug, subject="Refund", description=text, customer_email="r@example.com")


async def test_refund_needs_confirmation_then_refunds_once_and_notes_the_ticket(
        connect_key, make_key, stripe_tenant, stripe_double) -> None:
    t = await stripe_tenant()
    ch = t.acct.charge(amount=2500)
    key = await make_key([t.slug], scopes=["read", "write", "refund"], allow_confirm_argument=True)
    async with connect_key(key) as c:  # the operator allowed this key the confirm argument
        ticket = await _ticket(c, t.slug)
        asked = await c.err("create_refund", tenant=t.slug, charge=ch["id"], amount=1000,
                            reason="requested_by_customer", ticket=str(ticket["number"]))
        wrong = await c.err("create_refund", tenant=t.slug, charge=ch["id"], amount=1000,
                            reason="requested_by_customer", confirm="yes")
        preview = await c.ok("create_refund", tenant=t.slug, charge=ch["id"], amount=1000,
                             reason="requested_by_customer", dry_run=True)
        assert t.acct.get(ch["id"])["amount_refunded"] == 0  # nothing happened yet
        args = dict(tenant=t.slug, charge=ch["id"], amount=1000, reason="requested_by_customer",
                    ticket=f"#{ticket['number']}", confirm=ch["id"])
        first = await c.ok("create_refund", **args)
        again = await c.ok("create_refund", **args)
        detail = await c.ok("get_ticket", tenant=t.slug, ticket=str(ticket["number"]))
        looked = await c.ok("lookup_charge", tenant=t.slug, id=ch["id"])
    assert f"confirm='{ch['id']}'" in asked and "10.00 USD" in asked
    assert f"confirm must repeat '{ch['id']}'" in wrong
    assert preview["status"] == "preview" and preview["refund_id"] is None and preview["amount_formatted"] == "10.00 USD"
    assert first["status"] == "succeeded" and not first["replayed"] and first["charge_amount_refunded"] == 1000
    assert again["replayed"] and again["refund_id"] == first["refund_id"]
    assert t.acct.get(ch["id"])["amount_refunded"] == 1000  # one refund in Stripe
    notes = [m for m in detail["messages"] if m["author_role"] == "system"]
    assert len(notes) == 1 and first["refund_id"] in notes[0]["content"] and notes[0]["internal"]
    assert looked["amount_refunded"] == 1000 and looked["refundable_amount"] == 1500
    assert looked["tickets"] == [ticket["number"]]
    posts = [r for r in stripe_double.requests if r.method == "POST" and r.form.get("charge") == ch["id"]]
    assert len(posts) == 1 and posts[0].headers.get("Stripe-Account") == t.account_id
    assert posts[0].headers.get("Idempotency-Key", "").startswith("support-mcp-refund-")


async def test_a_new_request_id_refunds_the_same_amount_again(connect, stripe_tenant) -> None:
    t = await stripe_tenant()
    ch = t.acct.charge(amount=3000)
    args = dict(tenant=t.slug, charge=ch["id"], amount=1000, reason="duplicate", confirm=ch["id"])
    async with connect([t.slug], confirm_fallback=True) as c:
        a = await c.ok("create_refund", **args, request_id="r1")
        b = await c.ok("create_refund", **args, request_id="r2")
        a2 = await c.ok("create_refund", **args, request_id="r1")
    assert a["refund_id"] != b["refund_id"] and a2["refund_id"] == a["refund_id"] and a2["replayed"]
    assert t.acct.get(ch["id"])["amount_refunded"] == 2000


async def test_refund_amount_checks(connect, stripe_tenant) -> None:
    t = await stripe_tenant()
    ch = t.acct.charge(amount=2500)
    disputed = t.acct.charge(amount=900)
    t.acct.dispute(charge=disputed)
    failed = t.acct.charge(amount=900, status="failed")
    base = dict(tenant=t.slug, reason="requested_by_customer")
    async with connect([t.slug], confirm_fallback=True) as c:
        too_much = await c.err("create_refund", **base, charge=ch["id"], amount=2501, confirm=ch["id"])
        zero = await c.err("create_refund", **base, charge=ch["id"], amount=0, confirm=ch["id"])
        negative = await c.err("create_refund", **base, charge=ch["id"], amount=-5, confirm=ch["id"])
        bad_id = await c.err("create_refund", **base, charge="ch_'; drop", confirm="x")
        bad_reason = await c.err("create_refund", tenant=t.slug, charge=ch["id"], reason="because", confirm=ch["id"])
        on_dispute = await c.err("create_refund", **base, charge=disputed["id"], confirm=disputed["id"])
        on_failed = await c.err("create_refund", **base, charge=failed["id"], confirm=failed["id"])
        no_ticket = await c.err("create_refund", **base, charge=ch["id"], ticket="#999999", confirm=ch["id"])
        full = await c.ok("create_refund", **base, charge=ch["id"], confirm=ch["id"])
        after = await c.err("create_refund", **base, charge=ch["id"], amount=1, confirm=ch["id"])
    assert "more than the 25.00 USD still refundable" in too_much
    assert "amount" in zero and "greater than 0" in zero and "greater than 0" in negative
    assert "not a charge id" in bad_id
    assert "reason" in bad_reason
    assert "disputed" in on_dispute and "status is failed" in on_failed
    assert "ticket #999999 not found" in no_ticket
    assert full["amount"] == 2500 and "already fully refunded" in after
    assert t.acct.get(ch["id"])["amount_refunded"] == 2500


async def test_refund_needs_the_refund_scope_and_is_hidden_in_read_only(connect_key, make_key, stripe_tenant) -> None:
    t = await stripe_tenant()
    ch = t.acct.charge(amount=500)
    plain = await make_key([t.slug], scopes=["read", "write", "admin"])
    refunder = await make_key([t.slug], scopes=["read", "refund"])
    args = dict(tenant=t.slug, charge=ch["id"], reason="requested_by_customer", confirm=ch["id"])
    async with connect_key(plain) as c:
        denied = await c.err("create_refund", **args)
        assert "create_refund" not in [x.name for x in (await c.client.list_tools()).tools]
    async with connect_key(refunder, read_only=True) as c:
        read_only = await c.err("create_refund", **args)
    assert "needs the 'refund' scope" in denied
    assert "read-only" in read_only
    assert t.acct.get(ch["id"])["amount_refunded"] == 0


async def test_refund_confirmed_by_elicitation_names_the_amount(connect_key, make_key, stripe_tenant) -> None:
    t = await stripe_tenant()
    ch = t.acct.charge(amount=4200, currency="eur")
    key = await make_key([t.slug], scopes=["read", "refund"])
    asked: list[str] = []

    async def answer(context, params):  # noqa: ANN001
        asked.append(params.message)
        return ElicitResult(action="accept" if len(asked) == 2 else "decline",
                            content={"confirm": True} if len(asked) == 2 else None)

    async with connect_key(key, elicitation_callback=answer) as c:
        declined = await c.err("create_refund", tenant=t.slug, charge=ch["id"], reason="requested_by_customer")
        assert t.acct.get(ch["id"])["amount_refunded"] == 0
        done = await c.ok("create_refund", tenant=t.slug, charge=ch["id"], amount=200, reason="requested_by_customer")
    assert "42.00 EUR" in asked[0] and "2.00 EUR" in asked[1]
    assert "declin" in declined.lower()
    assert done["amount"] == 200 and t.acct.get(ch["id"])["amount_refunded"] == 200
