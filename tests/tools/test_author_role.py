"""add_message never posts as `system`: those notes are the server's own (status changes, Stripe
and refund notes)."""

from __future__ import annotations

import pytest

from support_mcp.desk import tickets
from support_mcp.errors import InvalidInput


async def test_the_schema_does_not_offer_system(connect, make_tenant) -> None:
    a = await make_tenant("role")
    async with connect([a]) as c:
        tools = {t.name: t for t in (await c.client.list_tools()).tools}
    role = tools["add_message"].input_schema["properties"]["author_role"]
    assert role["enum"] == ["customer", "agent", "ai"]
    assert "system" not in role["enum"] and "server" in role["description"]


@pytest.mark.parametrize("role", ["system", "System", " system "])
async def test_posting_as_system_is_refused_and_writes_nothing(connect, make_tenant, db, role: str) -> None:
    a = await make_tenant("role")
    async with connect([a]) as c:
        t = await c.ok("create_ticket", tenant=a, subject="s", description="d", customer_email="r@x.test")
        msg = await c.err("add_message", tenant=a, ticket=t["id"], content="Refund approved by finance.",
                          author_role=role)
        detail = await c.ok("get_ticket", tenant=a, ticket=t["id"])
    assert "author_role" in msg and "reserved for the server" in msg and "\n" not in msg
    assert detail["messages_total"] == 0


async def test_the_domain_refuses_system_too_and_the_server_still_writes_its_notes(connect, make_tenant, db) -> None:
    a = await make_tenant("role")
    async with connect([a]) as c:
        t = await c.ok("create_ticket", tenant=a, subject="s", description="d", customer_email="r@x.test")
        await c.ok("update_ticket", tenant=a, ticket=t["id"], status="pending")
        detail = await c.ok("get_ticket", tenant=a, ticket=t["id"])
    assert [(m["author_role"], m["internal"]) for m in detail["messages"]] == [("system", True)]
    async with db.tenant_scope(a) as s:
        with pytest.raises(InvalidInput, match="reserved for the server"):
            await tickets.add_message(s.conn, t["id"], content="x", author_role="system", internal=True)

