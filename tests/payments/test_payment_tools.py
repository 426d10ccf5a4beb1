"""lookup_charge, list_charges, list_disputes through the real MCP client, the real stripe SDK
and the local Stripe double."""

from __future__ import annotations


async def test_lookup_charge_by_charge_and_payment_intent(connect, stripe_tenant, stripe_double) -> None:
    t = await stripe_tenant()
    cus = t.acct.customer(email="ann@example.com", name="Ann")
    pi = t.acct.payment_intent(amount=2500, customer=cus)
    charge = pi["latest_charge"]
    async with connect([t.slug]) as c:
        await c.ok("create_customer", tenant=t.slug, name="Ann", email="ann@example.com",
                   stripe_customer_id=cus["id"])
        ticket = await c.ok("create_ticket", tenant=t.slug, subject="Charged twice?",
                            description=f"I see {charge} on my card", customer_email="ann@example.com")
        by_charge = await c.ok("lookup_charge", tenant=t.slug, id=charge)
        by_pi = await c.ok("lookup_charge", tenant=t.slug, id=pi["id"])
    assert by_charge == by_pi
    assert by_charge["amount"] == 2500 and by_charge["amount_formatted"] == "25.00 USD"
    assert by_charge["status"] == "succeeded" and by_charge["refundable_amount"] == 2500
    assert by_charge["customer"]["email"] == "ann@example.com"
    assert by_charge["tickets"] == [ticket["number"]]
    assert by_charge["receipt_url"].startswith("https://")
    assert by_charge["dispute"] is None


async def test_every_stripe_call_carries_the_tenants_account(connect, stripe_tenant, stripe_double) -> None:
    a, b = await stripe_tenant("pa"), await stripe_tenant("pb")
    ch_a, ch_b = a.acct.charge(amount=100), b.acct.charge(amount=200)
    stripe_double.clear_requests()
    async with connect([a.slug, b.slug]) as c:
        await c.ok("lookup_charge", tenant=a.slug, id=ch_a["id"])
        await c.ok("lookup_charge", tenant=b.slug, id=ch_b["id"])
        crossed = await c.err("lookup_charge", tenant=a.slug, id=ch_b["id"])
        missing = await c.err("lookup_charge", tenant=a.slug, id="ch_doesnotexist0000")
    assert crossed == missing.replace("ch_doesnotexist0000", ch_b["id"])
    assert "not found" in crossed
    seen = [(r.path, r.headers.get("Stripe-Account")) for r in stripe_double.requests]
    assert seen == [(f"/v1/charges/{ch_a['id']}", a.account_id), (f"/v1/charges/{ch_b['id']}", b.account_id),
                    (f"/v1/charges/{ch_b['id']}", a.account_id), ("/v1/charges/ch_doesnotexist0000", a.account_id)]


async def test_a_tenant_without_stripe_is_told_so(connect, make_tenant, stripe_double) -> None:
    slug = await make_tenant("nostripe")
    stripe_double.clear_requests()
    async with connect([slug]) as c:
        text = await c.err("lookup_charge", tenant=slug, id="ch_123456789")
    assert text.endswith(f"Stripe is not connected for tenant '{slug}': an operator must set its connected account " \
                   "(support-mcp stripe connect)")
    assert stripe_double.requests == []  # never a platform-account call


async def test_list_charges_by_local_customer_email_and_stripe_id(connect, stripe_tenant) -> None:
    t = await stripe_tenant()
    cus = t.acct.customer(email="bo@example.com")
    other = t.acct.customer(email="cy@example.com")
    ids = [t.acct.charge(amount=100 + i, customer=cus, created=1_700_000_000 + i)["id"] for i in range(5)]
    t.acct.charge(amount=999, customer=other)
    async with connect([t.slug]) as c:
        unlinked = await c.ok("create_customer", tenant=t.slug, name="Dee", email="dee@example.com")
        await c.ok("create_customer", tenant=t.slug, name="Bo", email="bo@example.com", stripe_customer_id=cus["id"])
        first = await c.ok("list_charges", tenant=t.slug, customer="bo@example.com", limit=3)
        second = await c.ok("list_charges", tenant=t.slug, customer=cus["id"], limit=3, cursor=first["next_cursor"])
        no_link = await c.err("list_charges", tenant=t.slug, customer=unlinked["id"])
        bad = await c.err("list_charges", tenant=t.slug, customer="not an id")
        bad_cursor = await c.err("list_charges", tenant=t.slug, customer=cus["id"], cursor="drop table")
    got = [x["id"] for x in first["charges"]] + [x["id"] for x in second["charges"]]
    assert got == list(reversed(ids))
    assert second["next_cursor"] is None and first["customer"]["email"] == "bo@example.com"
    assert "no Stripe customer linked" in no_link
    assert "cus_" in bad
    assert "not a charge id" in bad_cursor


async def test_list_disputes_filters_by_status_and_names_tickets(connect, stripe_tenant) -> None:
    t = await stripe_tenant()
    open_ = [t.acct.dispute(charge=t.acct.charge(amount=500), status="needs_response") for _ in range(3)]
    t.acct.dispute(charge=t.acct.charge(amount=700), status="won")
    async with connect([t.slug]) as c:
        ticket = await c.ok("create_ticket", tenant=t.slug, subject="chargeback",
                            description=f"about {open_[0]['charge']}", customer_email="x@example.com")
        page = await c.ok("list_disputes", tenant=t.slug, status="needs_response", limit=2)
        rest = await c.ok("list_disputes", tenant=t.slug, status="needs_response", limit=2,
                          cursor=page["next_cursor"])
        everything = await c.ok("list_disputes", tenant=t.slug, limit=10)
        charge = await c.ok("lookup_charge", tenant=t.slug, id=open_[0]["charge"])
    ids = [d["id"] for d in page["disputes"] + rest["disputes"]]
    assert sorted(ids) == sorted(d["id"] for d in open_) and rest["next_cursor"] is None
    assert len(everything["disputes"]) == 4
    tagged = {d["id"]: d["tickets"] for d in everything["disputes"]}
    assert tagged[open_[0]["id"]] == [ticket["number"]]
    assert charge["disputed"] and charge["dispute"]["id"] == open_[0]["id"]
    assert charge["refundable_amount"] == 0
