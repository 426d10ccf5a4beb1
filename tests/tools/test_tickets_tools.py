"""Ticket tools through the real MCP client (in memory)."""

from __future__ import annotations

import pytest


async def test_ticket_lifecycle(connect, make_tenant) -> None:
    a = await make_tenant("tk")
    async with connect([a]) as c:
        t = await c.ok("create_ticket", tenant=a, subject="Charged twice", description="Order 77 billed twice",
                       customer_email="Jane.Doe@Example.com", customer_name="Jane Doe", priority="high",
                       tags=["Billing", "billing", "vip"])
        assert t["number"] >= 1001 and t["id"] and t["status"] == "open" and t["priority"] == "high"
        assert t["tags"] == ["billing", "vip"]
        # the customer was created from the email and is found again (case-insensitive)
        again = await c.ok("create_ticket", tenant=a, subject="Second", description="",
                           customer_email="jane.doe@example.com")
        assert again["customer_id"] == t["customer_id"] and again["number"] == t["number"] + 1
        for ref in (str(t["number"]), f"#{t['number']}", t["id"], f" #{t['number']} "):
            got = await c.ok("get_ticket", tenant=a, ticket=ref)
            assert got["id"] == t["id"] and got["customer"]["email"] == "Jane.Doe@Example.com"
        m = await c.ok("add_message", tenant=a, ticket=f"#{t['number']}", content="Any news?", author_role="customer")
        assert m["message"]["author_role"] == "customer" and m["ticket_number"] == t["number"]
        await c.ok("add_message", tenant=a, ticket=t["id"], content="Checking with billing", author_role="agent",
                   internal=True)
        up = await c.ok("update_ticket", tenant=a, ticket=str(t["number"]), status="pending", assignee="sam",
                        add_tags=["refund"], remove_tags=["vip"])
        assert set(up["changed"]) == {"status", "assignee", "tags"}
        assert up["ticket"]["tags"] == ["billing", "refund"] and up["ticket"]["assignee"] == "sam"
        # a customer reply reopens a pending ticket
        m2 = await c.ok("add_message", tenant=a, ticket=t["id"], content="Still waiting", author_role="customer")
        assert m2["ticket_status"] == "open"
        detail = await c.ok("get_ticket", tenant=a, ticket=t["id"])
        roles = [(x["author_role"], x["internal"]) for x in detail["messages"]]
        assert roles == [("customer", False), ("agent", True), ("system", True), ("customer", False)]
        assert detail["messages_total"] == 4


async def test_thread_pagination(connect, make_tenant) -> None:
    a = await make_tenant("page")
    async with connect([a]) as c:
        t = await c.ok("create_ticket", tenant=a, subject="s", description="d", customer_email="p@x.test")
        for i in range(7):
            await c.ok("add_message", tenant=a, ticket=t["id"], content=f"m{i}", author_role="agent")
        seen, cursor = [], None
        while True:
            page = await c.ok("get_ticket", tenant=a, ticket=t["id"], messages_limit=3,
                              **({"messages_cursor": cursor} if cursor else {}))
            seen += [m["content"] for m in page["messages"]]
            cursor = page["messages_next_cursor"]
            if not cursor:
                break
        assert seen == [f"m{i}" for i in range(7)]


async def test_list_filters_and_cursor(connect, make_tenant) -> None:
    a = await make_tenant("ls")
    async with connect([a]) as c:
        made = []
        for i in range(25):
            made.append(await c.ok(
                "create_ticket", tenant=a, subject=f"Issue {i} {'printer' if i % 5 == 0 else 'login'}",
                description="100% broken_thing" if i == 3 else "x", customer_email=f"u{i % 3}@x.test",
                priority="urgent" if i % 4 == 0 else "normal", tags=["even"] if i % 2 == 0 else []))
        await c.ok("update_ticket", tenant=a, ticket=made[1]["id"], status="solved", assignee="kim")
        numbers, cursor = [], None
        while True:
            page = await c.ok("list_tickets", tenant=a, limit=10, **({"cursor": cursor} if cursor else {}))
            numbers += [t["number"] for t in page["tickets"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert numbers == sorted((t["number"] for t in made), reverse=True)  # newest first, no gaps
        async def count(**f: object) -> int:
            return len((await c.ok("list_tickets", tenant=a, limit=100, **f))["tickets"])
        assert await count(status="solved") == 1 and await count(status="open") == 24
        assert await count(priority="urgent") == 7
        assert await count(tag="even") == 13
        assert await count(assignee="kim") == 1
        assert await count(customer="u0@x.test") == 9
        assert await count(customer=made[0]["customer_id"]) == 9
        assert await count(customer="nobody@x.test") == 0
        assert await count(query="PRINTER") == 5
        assert await count(query="100%") == 1 and await count(query="_thing") == 1  # wildcards are literal
        assert await count(query="%") == 1


async def test_status_transitions(connect, make_tenant) -> None:
    a = await make_tenant("st")
    async with connect([a]) as c:
        t = await c.ok("create_ticket", tenant=a, subject="s", description="d", customer_email="s@x.test")
        await c.ok("update_ticket", tenant=a, ticket=t["id"], status="solved")
        await c.ok("update_ticket", tenant=a, ticket=t["id"], status="open")  # reopen
        await c.ok("update_ticket", tenant=a, ticket=t["id"], status="closed")
        msg = await c.err("update_ticket", tenant=a, ticket=t["id"], status="open")
        assert "cannot go from closed to open" in msg
        assert "closed" in await c.err("add_message", tenant=a, ticket=t["id"], content="hi", author_role="agent")
        assert "nothing to update" in await c.err("update_ticket", tenant=a, ticket=t["id"])


@pytest.mark.parametrize(
    ("tool", "args", "expect"),
    [
        ("list_tickets", {"status": "bogus"}, "status:"),
        ("list_tickets", {"limit": 0}, "limit:"),
        ("list_tickets", {"limit": 10_000}, "limit:"),
        ("list_tickets", {"cursor": "not-a-cursor"}, "cursor is not valid"),
        ("create_ticket", {"subject": "", "description": "d", "customer_email": "a@x.test"}, "subject:"),
        ("create_ticket", {"subject": "s", "description": "d"}, "exactly one of customer_email or customer_id"),
        ("create_ticket", {"subject": "s", "description": "d", "customer_email": "nope"}, "not a valid address"),
        ("create_ticket", {"subject": "s", "description": "d", "customer_email": "a@x.test", "priority": "asap"},
         "priority:"),
        ("create_ticket", {"subject": "s", "description": "d", "customer_email": "a@x.test", "tags": ["no spaces"]},
         "invalid tag"),
        ("create_ticket", {"subject": "s", "description": "d", "customer_id": "123"}, "customer must be"),
        ("get_ticket", {"ticket": "abc"}, "ticket must be a ticket id"),
        ("get_ticket", {"ticket": "424242"}, "not found"),
        ("get_ticket", {"ticket": "00000000-0000-0000-0000-000000000000"}, "not found"),
        ("add_message", {"ticket": "1001", "content": "x" * 1_000_001, "author_role": "agent"}, "content:"),
        ("add_message", {"ticket": "1001", "content": "hi", "author_role": "robot"}, "author_role:"),
        ("update_ticket", {"ticket": "1001", "status": "done"}, "status:"),
        ("list_tickets", {"unknown_arg": 1}, "unknown_arg"),
    ],
)
async def test_bad_input_is_one_clear_line(connect, make_tenant, tool: str, args: dict, expect: str) -> None:
    a = await make_tenant("bad")
    async with connect([a]) as c:
        msg = await c.err(tool, tenant=a, **args)
    assert expect in msg
    assert "\n" not in msg and "Traceback" not in msg and "SELECT" not in msg.upper().split("INVALID")[0]
    assert len(msg) < 400  # never echoes a huge value back
