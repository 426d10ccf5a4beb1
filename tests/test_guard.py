"""The guard covers every request kind: tools/call, resources/read, prompts/get (and listings).

Regression for issue 10 finding 3: a rate-limited key could still read resources and get
prompts (each draft_reply runs a knowledge-base search), and none of them left an audit row."""

from __future__ import annotations

import secrets
from collections import Counter

import mcp
import pytest

from support_mcp import reports


async def _rows(db, principal: str) -> list[dict]:  # noqa: ANN001
    rows = await reports.audit_rows(db, tenant=None, since=None, limit=100_000)
    return [r for r in rows if r["principal"] == principal]


async def test_a_rate_limited_key_is_refused_on_resources_and_prompts(connect_key, make_tenant, make_key) -> None:
    a = await make_tenant("rl")
    async with connect_key(await make_key(tenants=[a]), rate_limit_per_minute=3) as c:
        t = await c.ok("create_ticket", tenant=a, subject="s", description="d", customer_email="r@x.test")
        await c.client.read_resource(f"ticket://{a}/{t['number']}")
        await c.client.get_prompt("summarize_ticket", {"tenant": a, "ticket": t["id"]})
        with pytest.raises(mcp.MCPError, match="slow down: this key is limited to 3 calls per minute") as read:
            await c.client.read_resource(f"ticket://{a}/{t['number']}")
        with pytest.raises(mcp.MCPError, match="slow down") as prompt:
            await c.client.get_prompt("draft_reply", {"tenant": a, "ticket": t["id"]})
        assert "slow down" in await c.err("get_ticket", tenant=a, ticket=t["id"])
    for exc in (read.value, prompt.value):
        assert "\n" not in exc.error.message


async def test_resources_share_the_limit_with_tools(connect_key, make_tenant, make_key) -> None:
    a = await make_tenant("rs")
    async with connect_key(await make_key(tenants=[a]), rate_limit_per_minute=2) as c:
        for _ in range(2):
            await c.client.read_resource(f"tenant://{a}/profile")
        assert "slow down" in await c.err("list_tickets", tenant=a)


async def test_resource_templates_listing_is_guarded_like_a_read(connect_key, db, make_tenant, make_key) -> None:
    """resources/templates/list passes the same gate: read scope, rate limit, one audit row."""
    a = await make_tenant("tl")
    name = f"tmpl-{secrets.token_hex(3)}"
    async with connect_key(await make_key(tenants=[a], name=name), rate_limit_per_minute=2) as c:
        listed = await c.client.list_resource_templates()
        assert {t.name for t in listed.resource_templates} >= {"ticket", "tenant_profile", "kb_document"}
        await c.client.read_resource(f"tenant://{a}/profile")
        with pytest.raises(mcp.MCPError, match="slow down"):
            await c.client.list_resource_templates()
    async with connect_key(await make_key(tenants=[a], scopes=["refund"])) as c:
        with pytest.raises(mcp.MCPError, match="needs the 'read' scope"):
            await c.client.list_resource_templates()
    rows = await _rows(db, f"key:{name}")  # the server's shutdown flushed its audit rows
    assert sorted((r["tool"], r["outcome"]) for r in rows) == [
        ("resource:tenant_profile", "ok"), ("resources/templates/list", "ok"),
        ("resources/templates/list", "rate_limited")]


async def test_every_read_and_prompt_leaves_exactly_one_audit_row(connect_key, db, make_tenant, make_key) -> None:
    a, b = await make_tenant("aa"), await make_tenant("ab")
    name = f"guard-{secrets.token_hex(3)}"
    key = await make_key(tenants=[a], name=name)
    async with connect_key(key, rate_limit_per_minute=11) as c:
        t = await c.ok("create_ticket", tenant=a, subject="audit me", description="d", customer_email="q@x.test")
        await c.client.read_resource(f"ticket://{a}/{t['number']}")  # ok
        await c.client.read_resource(f"tenant://{a}/profile")  # ok
        await c.client.get_prompt("draft_reply", {"tenant": a, "ticket": t["id"]})  # ok
        await c.client.get_prompt("summarize_ticket", {"tenant": a, "ticket": t["id"]})  # ok
        with pytest.raises(mcp.MCPError):
            await c.client.read_resource(f"ticket://{a}/999999")  # not found
        with pytest.raises(mcp.MCPError):
            await c.client.read_resource(f"ticket://{b}/1")  # another tenant
        with pytest.raises(mcp.MCPError):
            await c.client.get_prompt("draft_reply", {"tenant": b, "ticket": "1"})  # another tenant
        with pytest.raises(mcp.MCPError):
            await c.client.read_resource(f"kb://{a}/documents/not-a-uuid")  # not found
        with pytest.raises(mcp.MCPError):
            await c.client.read_resource("nosuch://thing")  # no such resource
        await c.client.read_resource(f"tenant://{a}/profile")  # ok: the 11th request
        with pytest.raises(mcp.MCPError, match="slow down"):
            await c.client.get_prompt("draft_reply", {"tenant": a, "ticket": t["id"]})  # rate limited
    rows = await _rows(db, f"key:{name}")
    counts = Counter((r["tool"], r["outcome"]) for r in rows)
    assert counts == Counter({
        ("create_ticket", "ok"): 1,
        ("resource:ticket", "ok"): 1, ("resource:tenant_profile", "ok"): 2,
        ("prompt:draft_reply", "ok"): 1, ("prompt:summarize_ticket", "ok"): 1,
        ("resource:ticket", "not_found"): 1, ("resource:ticket", "not_permitted"): 1,
        ("prompt:draft_reply", "not_permitted"): 1, ("resource:kb_document", "not_found"): 1,
        ("resource:unknown", "not_found"): 1, ("prompt:draft_reply", "rate_limited"): 1,
    }), counts
    ok_read = next(r for r in rows if r["tool"] == "resource:ticket" and r["outcome"] == "ok")
    assert ok_read["tenant_slug"] == a and ok_read["arguments"] == {"uri": f"ticket://{a}/{t['number']}"}
    other = next(r for r in rows if r["tool"] == "prompt:draft_reply" and r["outcome"] == "not_permitted")
    assert other["tenant_slug"] == b
    async with db.admin_scope() as conn:  # the tenant id comes from the scoping point, the key id from the guard
        ids = await conn.fetch('SELECT tool, outcome, tenant_id, key_id FROM "global".audit_log WHERE principal = $1',
                               f"key:{name}")
    assert all(r["key_id"] is not None for r in ids)
    assert all(r["tenant_id"] is not None for r in ids if r["outcome"] == "ok")


async def test_resources_and_prompts_need_the_read_scope(connect_key, db, make_tenant, make_key) -> None:
    a = await make_tenant("sc")
    name = f"noread-{secrets.token_hex(3)}"
    async with connect_key(await make_key(tenants=[a], scopes=["refund"], name=name)) as c:
        with pytest.raises(mcp.MCPError, match="needs the 'read' scope") as read:
            await c.client.read_resource(f"tenant://{a}/profile")
        with pytest.raises(mcp.MCPError, match="needs the 'read' scope"):
            await c.client.get_prompt("summarize_ticket", {"tenant": a, "ticket": "1"})
    assert "\n" not in read.value.error.message
    rows = await _rows(db, f"key:{name}")
    assert sorted((r["tool"], r["outcome"]) for r in rows) == [
        ("prompt:summarize_ticket", "not_permitted"), ("resource:tenant_profile", "not_permitted")]


async def test_another_tenant_in_a_uri_or_prompt_answers_like_a_missing_one(connect_key, make_tenant,
                                                                           make_key) -> None:
    a, b = await make_tenant("ta"), await make_tenant("tb")
    missing = f"zz_{secrets.token_hex(4)}"
    async with connect_key(await make_key(tenants=[a], scopes=["read", "write"])) as c:
        await c.ok("create_ticket", tenant=a, subject="mine", description="d", customer_email="m@x.test")

        async def answer(call) -> str:  # noqa: ANN001
            with pytest.raises(mcp.MCPError) as exc:
                await call
            return exc.value.error.message

        for uri in ("ticket://{}/1", "tenant://{}/profile",
                    "kb://{}/documents/00000000-0000-0000-0000-000000000000"):
            there = await answer(c.client.read_resource(uri.format(b)))
            nowhere = await answer(c.client.read_resource(uri.format(missing)))
            assert there.replace(b, "X") == nowhere.replace(missing, "X")
            assert "not available to this client" in there
        for prompt in ("draft_reply", "summarize_ticket"):
            there = await answer(c.client.get_prompt(prompt, {"tenant": b, "ticket": "1"}))
            nowhere = await answer(c.client.get_prompt(prompt, {"tenant": missing, "ticket": "1"}))
            assert there.replace(b, "X") == nowhere.replace(missing, "X")
            assert "not available to this client" in there


async def test_listings_need_an_identified_caller(connect_key) -> None:
    forged = "smk_00000000_" + "A" * 43
    async with connect_key(forged) as c:
        for listing in (c.client.list_resource_templates, c.client.list_resources, c.client.list_prompts,
                        c.client.list_tools):
            with pytest.raises(mcp.MCPError, match="invalid, expired or revoked API key"):
                await listing()
