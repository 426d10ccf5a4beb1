"""A thread longer than a resource or prompt shows: the newest messages are kept (issue 15)."""

from __future__ import annotations

from support_mcp.db import queries


async def test_long_thread_keeps_the_newest_messages(connect, db, make_tenant) -> None:
    a = await make_tenant("long")
    async with connect([a]) as c:
        t = await c.ok("create_ticket", tenant=a, subject="Long", description="d", customer_email="l@x.test")
        for i in range(1, 206):  # one transaction each: now() orders them
            async with db.tenant_scope(a) as s:
                await queries.insert_message(s.conn, ticket_id=t["id"], author_role="customer", internal=False,
                                             content=f"message number {i:03d}")
        md = (await c.client.read_resource(f"ticket://{a}/{t['number']}")).contents[0].text
        draft = await c.client.get_prompt("draft_reply", {"tenant": a, "ticket": f"#{t['number']}"})
        prompt = draft.messages[0].content.text
    for text in (md, prompt):
        assert "message number 205" in text  # the newest message is there
        assert "message number 006" in text and "message number 005" not in text  # the newest 200
        assert text.index("message number 006") < text.index("message number 205")  # oldest first
        assert "5 older message(s) omitted" in text
        assert "newer message(s) not shown" not in text
