"""`support-mcp stripe connect/disconnect/retry` against the test database."""

from __future__ import annotations

import os
import subprocess
import sys

from support_mcp.stripe_sandbox import make_event


def _cli(settings, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "SUPPORT_MCP_DATA_DIR": str(settings.data_dir), "SUPPORT_MCP_LOG_LEVEL": "WARNING",
           "SUPPORT_MCP_STRIPE_API_KEY": settings.stripe_api_key.get_secret_value(),
           "SUPPORT_MCP_STRIPE_API_BASE": settings.stripe_api_base}
    env.pop("DATABASE_URL", None)
    if settings.database_url is not None:
        env["SUPPORT_MCP_DATABASE_URL"] = settings.database_url.get_secret_value()
    return subprocess.run([sys.executable, "-m", "support_mcp", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


async def test_connect_then_disconnect(db, make_tenant, stripe_double, connect) -> None:
    slug, other = await make_tenant("cli"), await make_tenant("cli")
    acct = stripe_double.add_account()
    ch = acct.charge(amount=300)
    r = _cli(db.settings, "stripe", "connect", slug, "--account", acct.id, "--webhook-secret", "-",
             stdin="whsec_fromstdin123\n")
    assert r.returncode == 0, r.stderr
    taken = _cli(db.settings, "stripe", "connect", other, "--account", acct.id)
    assert taken.returncode == 1 and "already connected to another tenant" in taken.stderr
    bad = _cli(db.settings, "stripe", "connect", slug, "--account", "nope")
    assert bad.returncode == 1 and "acct_" in bad.stderr
    async with connect([slug]) as c:
        assert (await c.ok("lookup_charge", tenant=slug, id=ch["id"]))["amount"] == 300
    async with db.admin_scope() as conn:
        assert await conn.fetchval("SELECT stripe_webhook_secret FROM public.tenants WHERE slug=$1", slug) \
            == "whsec_fromstdin123"
    assert _cli(db.settings, "stripe", "disconnect", slug).returncode == 0
    async with connect([slug]) as c:
        assert "not connected" in await c.err("lookup_charge", tenant=slug, id=ch["id"])


async def test_retry_processes_stored_failures(db, stripe_tenant, stripe_double) -> None:
    from support_mcp.payments.gateway import StripeGateway
    from support_mcp.payments.webhooks import WebhookReceiver

    t = await stripe_tenant()
    ch = t.acct.charge(amount=800, customer=t.acct.customer(email="h@example.com"))
    event = make_event("charge.dispute.created", t.acct.dispute(charge=ch), account=t.account_id)
    gateway = StripeGateway(db.settings, db)
    receiver = WebhookReceiver(db.settings, db, gateway)
    acct = await gateway.account(t.slug)
    await receiver._store(acct, event)  # stored; its processing "crashed" before it ran
    try:
        r = _cli(db.settings, "stripe", "retry", "--tenant", t.slug)
    finally:
        await gateway.close()
    assert r.returncode == 0, r.stderr
    assert f"{t.slug}: 1 processed, 0 failed" in r.stdout
    async with db.tenant_scope(t.slug) as s:
        assert await s.conn.fetchval("SELECT count(*) FROM tickets") == 1
        assert await s.conn.fetchval("SELECT count(*) FROM stripe_events WHERE processed_at IS NULL") == 0
