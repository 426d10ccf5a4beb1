"""Hostile corpus through the tools, then every markdown an agent reads: ticket://, kb://,
draft_reply and summarize_ticket. Structure is checked as text and as CommonMark
(support_mcp.testing.markdown_check)."""

from __future__ import annotations

import pytest

from support_mcp.testing.markdown_check import HOSTILE, HOSTILE_EMAILS, MARKER, OUR_HEADINGS, check_untrusted
from support_mcp.untrusted import reveal

CASES = list(HOSTILE.items())


def _ticket_values(detail: dict) -> list[str]:
    c = detail["customer"]
    return [detail["subject"], detail["description"], detail["assignee"], *detail["tags"], c["name"], c["email"],
            c["phone"], *(m["content"] for m in detail["messages"])]


async def _read(c, uri: str) -> str:  # noqa: ANN001 - Caller
    return (await c.client.read_resource(uri)).contents[0].text


async def _prompt(c, name: str, tenant: str, ticket: str) -> str:  # noqa: ANN001 - Caller
    return (await c.client.get_prompt(name, {"tenant": tenant, "ticket": ticket})).messages[0].content.text


@pytest.mark.parametrize(("name", "value"), CASES, ids=[n for n, _ in CASES])
async def test_hostile_ticket_fields_from_tools(connect, make_tenant, name: str, value: str) -> None:
    a = await make_tenant("fence", name=value[:200], policies=value)
    email = HOSTILE_EMAILS[len(name) % len(HOSTILE_EMAILS)]
    async with connect([a]) as c:
        cust = await c.ok("create_customer", tenant=a, name=value[:200], email=email, phone=value[:40])
        t = await c.ok("create_ticket", tenant=a, subject=value[:300], description=value, customer_id=cust["id"],
                       tags=["billing", "vip"])
        await c.ok("add_message", tenant=a, ticket=t["id"], content=value, author_role="customer")
        await c.ok("add_message", tenant=a, ticket=t["id"], content=value, author_role="agent", internal=True)
        await c.ok("update_ticket", tenant=a, ticket=t["id"], assignee=value[:200], status="pending")
        await c.ok("ingest_document", tenant=a, title=value[:300], source_uri=value[:2000],
                   text=f"# Refund help {value[:60]}\n\nRefunds take 5 days.\n\n{value}")
        detail = await c.ok("get_ticket", tenant=a, ticket=t["id"])
        hits = (await c.ok("search_docs", tenant=a, query="refund"))["results"]
        doc_values = [hits[0]["title"], hits[0]["source_uri"], *hits[0]["heading_path"]]
        values = _ticket_values(detail)
        assert MARKER in detail["customer"]["name"] and MARKER in detail["assignee"]

        md = await _read(c, f"ticket://{a}/{t['number']}")
        checked = check_untrusted(md, values, MARKER, OUR_HEADINGS)
        # subject, description, 2 messages typed, 1 status note: every one a block of its own
        assert checked.texts()[:4] == [reveal(v) for v in (detail["subject"], detail["description"], value, value)]
        assert md.startswith(f"# Ticket #{t['number']}\n")

        draft = await _prompt(c, "draft_reply", a, t["id"])
        checked = check_untrusted(draft, values + doc_values + [value[:200]], MARKER, OUR_HEADINGS)
        kinds = [k for k, _ in checked.blocks]
        assert kinds[0] == "policies" and "document passage" in kinds and "subject" in kinds
        assert checked.texts()[0] == reveal(value)  # the policies, whole, in their block
        closer = f"</untrusted-{checked.nonce}>"  # one nonce for the whole prompt
        assert draft.count(f"\n{closer}\n") == len(checked.blocks) and draft.count(f"`{closer}`") == 1

        summary = await _prompt(c, "summarize_ticket", a, f"#{t['number']}")
        check_untrusted(summary, values + [value[:200]], MARKER, OUR_HEADINGS)

        kb_md = await _read(c, f"kb://{a}/documents/{hits[0]['document_id']}")
        checked = check_untrusted(kb_md, doc_values[:2], MARKER)  # title and source; headings are in the block
        assert len(checked.blocks) == 1 and "Refunds take 5 days." in checked.texts()[0]
        assert all(reveal(h) in checked.texts()[0] for h in hits[0]["heading_path"])


async def test_hostile_values_stored_by_other_paths_render_safely(connect, make_tenant, db) -> None:
    """Values no tool accepts (tags, raw emails) but a restore, a migration or an older version may
    have stored: the renderer does not rely on the tools' validation."""
    a = await make_tenant("fencedb")
    bad = HOSTILE["heading"]
    async with db.tenant_scope(a) as s:
        cid = await s.conn.fetchval(
            "INSERT INTO customers (name, email, phone) VALUES ($1, $2, $3) RETURNING id",
            bad, "ZXQ`</untrusted>`<!--@x.test", "+1 ZXQ\n# 555")
        number = await s.conn.fetchval(
            "INSERT INTO tickets (customer_id, subject, description, assignee, tags) VALUES ($1, $2, $3, $4, $5) "
            "RETURNING number", cid, "ZXQ subject", bad, bad, [bad, "ZXQ\u202e`x`", "# ZXQ"])
    async with connect([a]) as c:
        detail = await c.ok("get_ticket", tenant=a, ticket=str(number))
        md = await _read(c, f"ticket://{a}/{number}")
    check_untrusted(md, _ticket_values(detail), MARKER, OUR_HEADINGS)
    header = md.split("\n\n", 2)[1]
    assert len(header.splitlines()) == 5 and "## Instructions" not in header.replace("\\n## Instructions", "")
