"""Who may touch which tenant, through the real MCP client with API keys."""

from __future__ import annotations

import asyncio
import json

import mcp
import pytest
from mcp.types import ElicitResult

from support_mcp import keys, reports
from test_registry import ARGS  # every data tool with minimal valid arguments


async def test_key_for_one_tenant_cannot_touch_another(connect_key, make_tenant, make_key) -> None:
    acme, globex = await make_tenant("acme"), await make_tenant("globex")
    key = await make_key(tenants=[acme], scopes=["read", "write", "admin", "refund"])
    async with connect_key(await make_key(tenants=[globex], scopes=["read", "write"])) as g:
        gt = await g.ok("create_ticket", tenant=globex, subject="globex only", description="g",
                        customer_email="boss@globex.test")
    async with connect_key(key) as c:
        for name, args in ARGS.items():
            other = await c.err(name, tenant=globex, **args)
            missing = await c.err(name, tenant="no_such_tenant", **args)
            assert "not available to this client" in other, name
            assert other == missing.replace("no_such_tenant", globex), name
        for bad in ("globex; DROP TABLE tickets", "../globex", "tenant_globex", "GLOBEX", "pg_catalog", "public"):
            msg = await c.err("list_tickets", tenant=bad)
            assert "globex only" not in msg and ("invalid tenant slug" in msg or "reserved" in msg or
                                                 "not available" in msg)
        # globex's ticket id under acme: answered like a missing ticket
        assert "not found" in await c.err("get_ticket", tenant=acme, ticket=gt["id"])
        status = await c.ok("status")
        assert status["accessible_tenants"] == [acme]


async def test_scopes_are_enforced_and_named(connect_key, make_tenant, make_key) -> None:
    a = await make_tenant("sc")
    reader = await make_key(tenants=[a], scopes=["read"])
    async with connect_key(reader) as c:
        names = {t.name for t in (await c.client.list_tools()).tools}
        assert "list_tickets" in names and "create_ticket" not in names and "delete_ticket" not in names
        msg = await c.err("create_ticket", tenant=a, subject="s", description="d", customer_email="x@x.test")
        assert "needs the 'write' scope" in msg
        assert "needs the 'admin' scope" in await c.err("delete_ticket", tenant=a, ticket="1001", dry_run=True)
        await c.ok("list_tickets", tenant=a)


async def test_read_only_server_hides_and_refuses_writes(connect_key, make_tenant, make_key) -> None:
    a = await make_tenant("ro")
    key = await make_key(tenants=[a], scopes=["read", "write", "admin"])
    async with connect_key(key, read_only=True) as c:
        names = {t.name for t in (await c.client.list_tools()).tools}
        assert names.isdisjoint({"create_ticket", "update_ticket", "add_message", "create_customer",
                                 "record_feedback", "delete_ticket"})
        assert "read-only" in await c.err("create_ticket", tenant=a, subject="s", description="d",
                                          customer_email="x@x.test")
        await c.ok("list_tickets", tenant=a)


async def test_revoked_and_expired_keys_stop_working_mid_session(connect_key, db, make_tenant, make_key) -> None:
    from datetime import timedelta

    a = await make_tenant("rv")
    key = await make_key(tenants=[a])
    async with connect_key(key, cache_seconds=0) as c:
        await c.ok("list_tickets", tenant=a)
        p = await keys.KeyVerifier(db, ttl=0).principal(key)
        await keys.revoke_key(db, str(p.key_id))
        assert "revoked" in await c.err("list_tickets", tenant=a)
    short = await make_key(tenants=[a], expires_in=timedelta(seconds=1))
    async with connect_key(short, cache_seconds=0) as c:
        await c.ok("list_tickets", tenant=a)
        await asyncio.sleep(1.2)
        assert "expired" in await c.err("list_tickets", tenant=a)
    async with connect_key("smk_deadbeef_" + "A" * 43) as c:  # forged
        assert "invalid" in await c.err("list_tickets", tenant=a)
        with pytest.raises(mcp.MCPError):
            await c.client.read_resource(f"tenant://{a}/profile")


async def test_rate_limit_per_key(connect_key, make_tenant, make_key, db) -> None:
    from test_ratelimit import _early_in_window

    a = await make_tenant("rl")
    await _early_in_window(db, 10)  # the shared limit counts per fixed minute: stay inside one
    async with connect_key(await make_key(tenants=[a]), rate_limit_per_minute=5) as c:
        for _ in range(5):
            await c.ok("list_tickets", tenant=a)
        msg = await c.err("list_tickets", tenant=a)
        assert msg.startswith("slow down") and "5 calls per minute" in msg


async def test_delete_needs_admin_and_confirmation(connect_key, make_tenant, make_key) -> None:
    a = await make_tenant("dl")
    key = await make_key(tenants=[a], scopes=["read", "write", "admin"])
    async with connect_key(key, confirm_fallback=True) as c:  # the operator allows the confirm argument
        t = await c.ok("create_ticket", tenant=a, subject="to delete", description="d", customer_email="d@x.test")
        ref = f"#{t['number']}"
        preview = await c.ok("delete_ticket", tenant=a, ticket=ref, dry_run=True)
        assert preview["deleted"] is False and "would delete" in preview["note"]
        assert "confirm=" in await c.err("delete_ticket", tenant=a, ticket=ref)  # no elicitation support
        assert "must repeat" in await c.err("delete_ticket", tenant=a, ticket=ref, confirm="#999999")
        await c.ok("get_ticket", tenant=a, ticket=ref)  # still there
        done = await c.ok("delete_ticket", tenant=a, ticket=ref, confirm=t["id"])
        assert done["deleted"] is True
        assert "not found" in await c.err("get_ticket", tenant=a, ticket=ref)


@pytest.mark.parametrize("action", ["accept", "decline"])
async def test_delete_confirms_by_elicitation_when_the_client_can(connect_key, make_tenant, make_key,
                                                                  action: str) -> None:
    a = await make_tenant("el")
    asked: list[str] = []

    async def answer(_ctx, params):  # noqa: ANN001
        asked.append(params.message)
        return ElicitResult(action=action, content={"confirm": True} if action == "accept" else None)

    key = await make_key(tenants=[a], scopes=["read", "write", "admin"])
    async with connect_key(key, elicitation_callback=answer) as c:
        t = await c.ok("create_ticket", tenant=a, subject="elicit", description="d", customer_email="e@x.test")
        r = await c.client.call_tool("delete_ticket", {"tenant": a, "ticket": str(t["number"])})
        assert asked and f"{t['number']}" in asked[0]
        if action == "accept":
            assert not r.is_error and r.structured_content["deleted"] is True
        else:
            assert r.is_error
            await c.ok("get_ticket", tenant=a, ticket=t["id"])


async def test_audit_rows_and_feedback_analytics(connect_key, db, make_tenant, make_key) -> None:
    a = await make_tenant("au")
    key = await make_key(tenants=[a])
    card, email = "4242 4242 4242 4242", "secret.person@example.com"
    async with connect_key(key) as c:
        t = await c.ok("create_ticket", tenant=a, subject=f"card {card}", description=f"mail me at {email}",
                       customer_email=email)
        await c.err("list_tickets", tenant="globex_x")
        await c.err("list_tickets", tenant=a, limit=0)
        await c.ok("record_feedback", tenant=a, ticket=str(t["number"]), rating=4, comment=f"call {email}")
        assert "rating:" in await c.err("record_feedback", tenant=a, ticket=str(t["number"]), rating=9)
        server_app = c.server._lowlevel_server  # noqa: SLF001 - reach the lifespan app to flush
    rows = await reports.audit_rows(db, tenant=None, since=None, limit=100)
    mine = [r for r in rows if r["principal"] == "key:test" and r["arguments"].get("tenant") in (a, "globex_x")]
    outcomes = sorted(r["outcome"] for r in mine)
    assert outcomes == sorted(["ok", "not_permitted", "invalid_input", "ok", "invalid_input"])
    dump = json.dumps([dict(r) for r in mine], default=str)
    assert card not in dump and email not in dump and key not in dump
    assert any(r["tenant_slug"] == a and r["outcome"] == "ok" for r in mine)
    stats = {s.slug: s for s in await reports.analytics(db)}
    assert stats[a].tickets == {"open": 1} and stats[a].calls >= 3 and stats[a].ratings == 1
    assert server_app is not None


async def test_logs_carry_no_pii_or_keys(connect_key, make_tenant, make_key, capfd) -> None:
    from support_mcp.logging import configure_logging

    a = await make_tenant("lg")
    key = await make_key(tenants=[a])
    email, card, phone = "leaky.person@example.org", "4111 1111 1111 1111", "+44 20 7946 0958"
    configure_logging("DEBUG", "json")
    try:
        async with connect_key(key) as c:
            await c.ok("create_ticket", tenant=a, subject=f"card {card}", description=f"call {phone}",
                       customer_email=email)
            await c.err("create_customer", tenant=a, name="dup", email=email)  # error text names the email
            await c.err("list_tickets", tenant=a, query="x" * 500)
            await c.err("get_customer", tenant=a, customer=f"{email}x")
    finally:
        configure_logging("WARNING", "console")
    err = capfd.readouterr().err
    assert "tool_call" in err  # the calls were logged...
    for secret in (email, card, phone, key, key.split("_", 2)[2]):
        assert secret not in err  # ...without their personal data or the key
