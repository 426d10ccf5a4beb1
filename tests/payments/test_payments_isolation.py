"""The isolation walk for payments: two tenants with look-alike Stripe data; every way across
from tenant A answers like a missing object and every Stripe call carries A's account."""

from __future__ import annotations


async def test_payments_isolation_walk(connect, stripe_tenant, stripe_double) -> None:
    a, b = await stripe_tenant("pia"), await stripe_tenant("pib")
    cus_b = b.acct.customer(email="same@example.com")
    pi_b = b.acct.payment_intent(amount=5000, customer=cus_b)
    ch_b = pi_b["latest_charge"]
    dp_b = b.acct.dispute(charge=b.acct.charge(amount=700, customer=cus_b))
    a.acct.customer(email="same@example.com")  # same email on A's account
    async with connect([a.slug], confirm_fallback=True) as c:
        await c.ok("create_customer", tenant=a.slug, name="Same", email="same@example.com")
        stripe_double.clear_requests()

        async def like_missing(tool: str, fake: dict, **args: object) -> str:
            real = await c.err(tool, tenant=a.slug, **args)
            missing = await c.err(tool, tenant=a.slug, **fake)
            for k, v in args.items():
                real = real.replace(str(v), f"<{k}>")
            for k, v in fake.items():
                missing = missing.replace(str(v), f"<{k}>")
            assert real == missing, (tool, real, missing)
            return real

        assert "not found" in await like_missing("lookup_charge", {"id": "ch_missing12345"}, id=ch_b)
        assert "not found" in await like_missing("lookup_charge", {"id": "pi_missing12345"}, id=pi_b["id"])
        assert "not found" in await like_missing(
            "create_refund", {"charge": "ch_missing12345", "reason": "fraudulent", "confirm": "ch_missing12345"},
            charge=ch_b, reason="fraudulent", confirm=ch_b)
        assert "not found" in await like_missing(
            "create_refund", {"charge": "ch_missing12345", "reason": "fraudulent", "dry_run": True},
            charge=ch_b, reason="fraudulent", dry_run=True)
        # B's Stripe customer and dispute ids show nothing of B's
        assert (await c.ok("list_charges", tenant=a.slug, customer=cus_b["id"]))["charges"] == []
        assert "no Stripe customer linked" in await c.err("list_charges", tenant=a.slug, customer="same@example.com")
        assert (await c.ok("list_disputes", tenant=a.slug))["disputes"] == []
        assert "not found" in await like_missing("list_disputes", {"cursor": "dp_missing12345"}, cursor=dp_b["id"])
        # naming B is refused before any lookup
        for tool, args in (("lookup_charge", {"id": ch_b}), ("list_disputes", {}),
                           ("create_refund", {"charge": ch_b, "reason": "fraudulent", "confirm": ch_b})):
            assert "not available to this client" in await c.err(tool, tenant=b.slug, **args)
    accounts = {r.headers.get("Stripe-Account") for r in stripe_double.requests}
    assert accounts == {a.account_id}, accounts
    assert not [r for r in stripe_double.requests if r.method == "POST"]
    assert b.acct.get(ch_b)["amount_refunded"] == 0
