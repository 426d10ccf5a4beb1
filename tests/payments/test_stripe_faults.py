"""Stripe faults seen through the tools: 5xx, 429, timeouts, bad keys, revoked accounts, and a
database failure after Stripe already refunded."""

from __future__ import annotations

import pytest

from support_mcp.payments import refunds


async def test_server_errors_are_retried_then_reported(connect, stripe_tenant, stripe_double) -> None:
    t = await stripe_tenant()
    ch = t.acct.charge(amount=100)
    path = f"/v1/charges/{ch['id']}"
    async with connect([t.slug]) as c:
        stripe_double.fail_next(2, 500, path=path)  # two failures, then the third try succeeds
        stripe_double.clear_requests()
        ok = await c.ok("lookup_charge", tenant=t.slug, id=ch["id"])
        tries = len([r for r in stripe_double.requests if r.path == path])
        stripe_double.fail_next(3, 503, path=path)  # every try fails
        down = await c.err("lookup_charge", tenant=t.slug, id=ch["id"])
    assert ok["id"] == ch["id"] and tries == 3
    assert "Stripe had an internal error (Stripe request req_" in down and "retry shortly" in down
    assert "Traceback" not in down and "sk_" not in down


async def test_rate_limits_say_so(connect, stripe_tenant, stripe_double) -> None:
    t = await stripe_tenant()
    ch = t.acct.charge(amount=100)
    async with connect([t.slug]) as c:
        stripe_double.rate_limit_next(1, path=f"/v1/charges/{ch['id']}")
        text = await c.err("lookup_charge", tenant=t.slug, id=ch["id"])
    assert "Stripe is rate limiting requests" in text


async def test_a_slow_stripe_times_out_with_a_clear_error(connect_key, make_key, stripe_tenant, stripe_double) -> None:
    t = await stripe_tenant()
    ch = t.acct.charge(amount=100)
    key = await make_key([t.slug])
    try:
        stripe_double.delay(1.5, path=f"/v1/charges/{ch['id']}")
        async with connect_key(key, stripe_timeout_seconds=0.3, stripe_max_network_retries=0) as c:
            text = await c.err("lookup_charge", tenant=t.slug, id=ch["id"])
    finally:
        stripe_double.reset_faults()
    assert "Stripe did not answer" in text and "0.3 s" in text


async def test_unreachable_stripe(connect_key, make_key, stripe_tenant) -> None:
    t = await stripe_tenant()
    key = await make_key([t.slug])
    async with connect_key(key, stripe_api_base="http://127.0.0.1:9", stripe_max_network_retries=0) as c:
        text = await c.err("lookup_charge", tenant=t.slug, id="ch_12345678")
    assert "Stripe did not answer" in text


@pytest.mark.parametrize(("status", "code", "expected"), [
    (401, None, "rejected the platform API key"),
    (403, "account_invalid", "refused access to tenant"),
    (403, None, "restricted key lacks this permission"),
    (402, "card_declined", "card error"),
])
async def test_stripe_refusals_map_to_clear_errors(connect, stripe_tenant, stripe_double, status, code,
                                                   expected) -> None:
    t = await stripe_tenant()
    ch = t.acct.charge(amount=100)
    async with connect([t.slug]) as c:
        stripe_double.fail_next(1, status, code=code, path=f"/v1/charges/{ch['id']}")
        text = await c.err("lookup_charge", tenant=t.slug, id=ch["id"])
    assert expected in text and "sk_test" not in text


async def test_not_configured_platform_key(connect_key, make_key, stripe_tenant, stripe_double) -> None:
    t = await stripe_tenant()
    key = await make_key([t.slug])
    stripe_double.clear_requests()
    async with connect_key(key, stripe_api_key=None) as c:
        text = await c.err("lookup_charge", tenant=t.slug, id="ch_12345678")
        status = await c.ok("status")
    assert "SUPPORT_MCP_STRIPE_API_KEY" in text and stripe_double.requests == []
    assert status["backends"]["stripe"] == "not configured"


async def test_malformed_ids_never_reach_stripe(connect, stripe_tenant, stripe_double) -> None:
    t = await stripe_tenant()
    stripe_double.clear_requests()
    async with connect([t.slug]) as c:
        for bad in ("ch_", "cus_123", "ch_abc/../../v1/customers", "ch_a b", "pi_x?expand[]=y", "re_12345678", "x" * 81):
            text = await c.err("lookup_charge", tenant=t.slug, id=bad)
            assert "not a charge" in text or "at most 80" in text or "at least 4" in text, (bad, text)
    assert stripe_double.requests == []


async def test_another_tenants_charge_cannot_be_refunded(connect, stripe_tenant, stripe_double) -> None:
    a, b = await stripe_tenant("ra"), await stripe_tenant("rb")
    theirs = b.acct.charge(amount=900)
    stripe_double.clear_requests()
    async with connect([a.slug, b.slug], confirm_fallback=True) as c:
        text = await c.err("create_refund", tenant=a.slug, charge=theirs["id"], reason="fraudulent",
                           confirm=theirs["id"])
    assert text.endswith(f"charge {theirs['id']} not found")
    assert {r.headers.get("Stripe-Account") for r in stripe_double.requests} == {a.account_id}
    assert [r for r in stripe_double.requests if r.method == "POST"] == []
    assert b.acct.get(theirs["id"])["amount_refunded"] == 0


async def test_a_database_failure_after_the_refund_loses_nothing(connect, stripe_tenant, monkeypatch) -> None:
    t = await stripe_tenant()
    ch = t.acct.charge(amount=1200)
    real = refunds._record
    calls = {"n": 0}

    async def flaky(*args, **kwargs):  # noqa: ANN002, ANN003
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionResetError("database went away")
        return await real(*args, **kwargs)

    monkeypatch.setattr(refunds, "_record", flaky)
    args = dict(tenant=t.slug, charge=ch["id"], amount=400, reason="requested_by_customer", confirm=ch["id"])
    async with connect([t.slug], confirm_fallback=True) as c:
        ticket = await c.ok("create_ticket", tenant=t.slug, subject="s", description="d", customer_email="z@example.com")
        crashed = await c.err("create_refund", **args, ticket=str(ticket["number"]))
        retried = await c.ok("create_refund", **args, ticket=str(ticket["number"]))
        thread = (await c.ok("get_ticket", tenant=t.slug, ticket=str(ticket["number"])))["messages"]
    assert "internal error" in crashed and "database went away" not in crashed
    assert retried["replayed"]  # Stripe answered from its idempotency store
    assert t.acct.get(ch["id"])["amount_refunded"] == 400  # refunded once
    assert len([m for m in thread if retried["refund_id"] in m["content"]]) == 1  # noted once
