"""The isolation walk through MCP: write in two tenants, then try every way across."""

from __future__ import annotations

import uuid

import mcp
import pytest


async def _populate(c, tenant: str, email: str) -> dict:
    t = await c.ok("create_ticket", tenant=tenant, subject=f"{tenant} secret subject",
                   description=f"{tenant} private description", customer_email=email)
    await c.ok("add_message", tenant=tenant, ticket=t["id"], content=f"{tenant} private message",
               author_role="customer")
    return t


async def test_isolation_walk(connect, make_tenant) -> None:
    a, b = await make_tenant("iso_a"), await make_tenant("iso_b")
    async with connect(all_tenants=True) as op:
        ta = await _populate(op, a, "shared@x.test")
        tb = await _populate(op, b, "shared@x.test")  # same email in both tenants: two customers
        await _populate(op, b, "only_b@x.test")
        assert len((await op.ok("list_tickets", tenant=a))["tickets"]) == 1
        assert len((await op.ok("list_tickets", tenant=b))["tickets"]) == 2
        assert ta["customer_id"] != tb["customer_id"]
        before_b = await op.ok("get_ticket", tenant=b, ticket=tb["id"])

    async with connect([a]) as c:
        random_id = str(uuid.uuid4())

        async def same_as_missing(tool: str, **args: object) -> None:
            real = await c.err(tool, tenant=a, **args)
            fake_args = {k: (random_id if v in (tb["id"], tb["customer_id"]) else v) for k, v in args.items()}
            fake = await c.err(tool, tenant=a, **fake_args)
            assert real.replace(tb["id"], "ID").replace(tb["customer_id"], "ID") == \
                fake.replace(random_id, "ID"), (tool, real, fake)
            assert "not found" in real

        await same_as_missing("get_ticket", ticket=tb["id"])
        await same_as_missing("update_ticket", ticket=tb["id"], status="pending")
        await same_as_missing("add_message", ticket=tb["id"], content="hi", author_role="agent")
        await same_as_missing("get_customer", customer=tb["customer_id"])
        await same_as_missing("create_ticket", subject="s", description="d", customer_id=tb["customer_id"])
        # b's data never shows up in a's answers
        assert (await c.ok("list_tickets", tenant=a, customer=tb["customer_id"]))["tickets"] == []
        assert (await c.ok("find_customers", tenant=a, email="only_b@x.test"))["customers"] == []
        listed = await c.ok("list_tickets", tenant=a, query="secret")
        assert [t["id"] for t in listed["tickets"]] == [ta["id"]]
        # ticket numbers overlap across tenants (each starts at 1001): a's number means a's ticket
        mine = await c.ok("get_ticket", tenant=a, ticket=str(tb["number"]))
        assert mine["id"] == ta["id"] and b not in str(mine)
        # every tool naming b is refused
        assert "not available" in await c.err("get_ticket", tenant=b, ticket=tb["id"])
        for uri in (f"ticket://{b}/{tb['number']}", f"tenant://{b}/profile"):
            with pytest.raises(mcp.MCPError, match="not available"):
                await c.client.read_resource(uri)
        with pytest.raises(mcp.MCPError, match="not available"):
            await c.client.get_prompt("draft_reply", {"tenant": b, "ticket": str(tb["number"])})

    async with connect([b]) as cb:  # and b is exactly as it was
        assert await cb.ok("get_ticket", tenant=b, ticket=tb["id"]) == before_b
        assert len((await cb.ok("list_tickets", tenant=b))["tickets"]) == 2
