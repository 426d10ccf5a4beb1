"""The one Stripe wrapper: the only place that reaches Stripe, never a process-global key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import stripe

from support_mcp.errors import NotConnected, NotFound, TenantUnavailable
from support_mcp.payments.gateway import StripeGateway

ROOT = Path(__file__).resolve().parents[2]


def test_only_the_gateway_and_the_webhook_verifier_import_stripe() -> None:
    users = set()
    for d in ("src/support_mcp", "tools", "resources"):
        for path in (ROOT / d).rglob("*.py"):
            if "stripe_sandbox" in path.parts:
                continue  # the sandbox: Stripe's side of the wire (its SDK use: a client helper, the API version)
            if re.search(r"^\s*(import stripe|from stripe)", path.read_text(), re.M):
                users.add(str(path.relative_to(ROOT)))
    assert users == {"src/support_mcp/payments/gateway.py", "src/support_mcp/payments/webhooks.py"}, users
    webhooks = (ROOT / "src/support_mcp/payments/webhooks.py").read_text()
    assert "StripeClient(" not in webhooks and ".v1." not in webhooks  # it verifies signatures only


async def test_calls_never_set_a_global_key_and_always_name_the_account(db, stripe_tenant, stripe_double) -> None:
    t = await stripe_tenant()
    ch = t.acct.charge(amount=100)
    gateway = StripeGateway(db.settings, db)
    try:
        stripe_double.clear_requests()
        tenant_stripe = await gateway.for_tenant(t.slug)
        await tenant_stripe.retrieve_charge(ch["id"])
        await tenant_stripe.list_charges(limit=1)
        await tenant_stripe.list_disputes(limit=1)
    finally:
        await gateway.close()
    assert stripe.api_key is None and stripe.api_base == "https://api.stripe.com"
    assert [r.headers.get("Stripe-Account") for r in stripe_double.requests] == [t.account_id] * 3
    assert all(r.headers.get("Authorization") for r in stripe_double.requests)  # the platform key, per request


async def test_for_tenant_refuses_unknown_suspended_and_unconnected(db, make_tenant, stripe_tenant) -> None:
    from support_mcp import tenancy

    plain = await make_tenant("gw")
    t = await stripe_tenant()
    gateway = StripeGateway(db.settings.model_copy(update={"stripe_cache_seconds": 0}), db)
    with pytest.raises(NotFound, match="unknown tenant"):
        await gateway.for_tenant("gw_nobody")
    with pytest.raises(NotConnected, match="not connected"):
        await gateway.for_tenant(plain)
    await tenancy.set_status(db, t.slug, "suspended")
    with pytest.raises(TenantUnavailable):
        await gateway.for_tenant(t.slug)
    await tenancy.set_status(db, t.slug, "active")
    assert (await gateway.for_tenant(t.slug)).account.account_id == t.account_id
