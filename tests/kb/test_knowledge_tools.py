"""The knowledge base through MCP and the service: isolation, idempotence, atomic replace."""

from __future__ import annotations

import asyncio

import mcp
import pytest

from support_mcp import tenancy
from support_mcp.kb.service import KnowledgeBase

REFUND_V1 = """# Refund policy

## How long do refunds take
Refunds for annual plans are processed within 5 business days. ANSWERALPHA.
"""
REFUND_V2 = REFUND_V1.replace("5 business days", "10 business days").replace("ANSWERALPHA", "ANSWERBETA")


async def test_same_text_two_tenants_each_gets_its_own(connect, make_tenant) -> None:
    a, b = await make_tenant("kba"), await make_tenant("kbb")
    async with connect([a, b]) as c:
        for tenant, answer in ((a, "Refunds take 3 days. CODEA-111."), (b, "Refunds take 30 days. CODEB-222.")):
            r = await c.ok("ingest_document", tenant=tenant, title="Refund policy",
                           text=f"# Refund policy\n\n## Timing\n{answer}", source_uri="kb://refunds")
            assert r["status"] == "created" and r["chunks"] >= 1
        for tenant, mine, theirs in ((a, "CODEA-111", "CODEB-222"), (b, "CODEB-222", "CODEA-111")):
            found = await c.ok("search_docs", tenant=tenant, query="how long do refunds take")
            text = str(found)
            assert mine in text and theirs not in text
            assert found["results"][0]["title"] == "Refund policy"
            assert found["results"][0]["heading_path"] == ["Refund policy", "Timing"]
            assert found["global_results"] is None


async def test_reingest_is_a_noop_and_change_replaces(connect, make_tenant) -> None:
    a = await make_tenant("kbr")
    async with connect([a]) as c:
        first = await c.ok("ingest_document", tenant=a, title="Refunds", text=REFUND_V1, source_uri="kb://r")
        again = await c.ok("ingest_document", tenant=a, title="Refunds", text=REFUND_V1, source_uri="kb://r")
        assert again["status"] == "unchanged" and again["document_id"] == first["document_id"]
        changed = await c.ok("ingest_document", tenant=a, title="Refunds", text=REFUND_V2, source_uri="kb://r")
        assert changed["status"] == "updated" and changed["document_id"] == first["document_id"]
        found = str(await c.ok("search_docs", tenant=a, query="refund processing time", limit=10))
        assert "ANSWERBETA" in found and "ANSWERALPHA" not in found
        docs = await c.ok("list_documents", tenant=a)
        assert [d["title"] for d in docs["documents"]] == ["Refunds"]
        md = (await c.client.read_resource(f"kb://{a}/documents/{first['document_id']}")).contents[0].text
        assert md.startswith("# Refunds") and "10 business days" in md


async def test_replace_is_atomic_for_concurrent_searches(kb: KnowledgeBase, make_tenant) -> None:
    a = await make_tenant("kbatom")
    await kb.ingest(a, title="Refunds", text=REFUND_V1, source_uri="kb://atomic")
    seen: list[tuple[bool, bool]] = []
    stop = asyncio.Event()

    async def searcher() -> None:
        while not stop.is_set():
            found = str(await kb.search(a, "how long do refunds take", limit=10))
            seen.append(("ANSWERALPHA" in found, "ANSWERBETA" in found))
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(searcher()) for _ in range(3)]
    for text in (REFUND_V2, REFUND_V1, REFUND_V2):
        await kb.ingest(a, title="Refunds", text=text, source_uri="kb://atomic")
    stop.set()
    await asyncio.gather(*tasks)
    assert len(seen) >= 3
    assert all(alpha != beta for alpha, beta in seen), "a search saw both versions or neither"


async def test_delete_document_and_tenant_drop_namespace(connect, kb, db, make_tenant) -> None:
    a = await make_tenant("kbdel")
    async with connect([a], confirm_fallback=True) as c:
        doc = await c.ok("ingest_document", tenant=a, title="Printer", text="# Printer\n\nPaper jam: open tray 2.")
        preview = await c.ok("delete_document", tenant=a, document_id=doc["document_id"], dry_run=True)
        assert preview["title"] == "Printer"
        assert "confirm=" in await c.err("delete_document", tenant=a, document_id=doc["document_id"])
        await c.ok("delete_document", tenant=a, document_id=doc["document_id"], confirm=doc["document_id"])
        assert (await c.ok("search_docs", tenant=a, query="paper jam"))["results"] == []
        assert "not found" in await c.err("delete_document", tenant=a, document_id=doc["document_id"],
                                          dry_run=True)
        await c.ok("ingest_document", tenant=a, title="Printer", text="# Printer\n\nPaper jam: open tray 2.")
    namespace = (await tenancy.get_tenant(db, a)).rag_index_namespace
    index = await kb.index()
    assert await index.count(namespace) > 0
    await tenancy.delete_tenant(db, a)
    await kb.drop_tenant_namespace(namespace)
    assert await index.count(namespace) == 0


async def test_global_docs_only_when_the_policy_allows(connect, kb, db, make_tenant) -> None:
    a = await make_tenant("kbg")
    shared = await kb.ensure_shared_tenant()
    await kb.ingest(shared, title="Status page", text="# Status page\n\nOutages are posted at status.example. GLOBALX.",
                    source_uri="kb://status")
    async with connect([a]) as c:
        assert "does not allow" in await c.err("search_docs", tenant=a, query="outage", include_global=True)
        async with db.admin_scope() as conn:
            await conn.execute("UPDATE public.tenants SET allow_global_docs = true WHERE slug = $1", a)
        kb._namespaces.clear()  # noqa: SLF001 - the policy is cached for SUPPORT_MCP_CACHE_SECONDS
        found = await c.ok("search_docs", tenant=a, query="where are outages posted", include_global=True)
        assert found["results"] == [] and "GLOBALX" in str(found["global_results"])


@pytest.mark.parametrize(("args", "expect"), [
    ({"query": ""}, "query:"),
    ({"query": "x" * 1_000_001}, "query:"),
    ({"query": "ok", "limit": 0}, "limit:"),
    ({"query": "ok", "limit": 1000}, "limit:"),
    ({"query": "   "}, "query is empty"),
])
async def test_search_bad_input(connect, make_tenant, args: dict, expect: str) -> None:
    a = await make_tenant("kbbad")
    async with connect([a]) as c:
        assert expect in await c.err("search_docs", tenant=a, **args)


async def test_engine_down_gives_clear_error_and_tickets_still_work(db, make_tenant) -> None:
    from support_mcp.access import Principal
    from support_mcp.server import build_server

    a = await make_tenant("kbdown")
    broken = db.settings.model_copy(update={"qdrant_url": "http://127.0.0.1:9"})
    async with mcp.Client(build_server(broken, Principal.operator([a], False), db=db)) as client:
        r = await client.call_tool("search_docs", {"tenant": a, "query": "refunds"})
        assert r.is_error and "unavailable" in r.content[0].text and "ticket tools still work" in r.content[0].text
        r = await client.call_tool("create_ticket", {"tenant": a, "subject": "s", "description": "d",
                                                     "customer_email": "k@x.test"})
        assert not r.is_error


async def test_draft_reply_includes_the_top_documents(connect, make_tenant) -> None:
    a = await make_tenant("kbdr", policies="Be brief.")
    async with connect([a]) as c:
        await c.ok("ingest_document", tenant=a, title="Hub X2 Wi-Fi drops",
                   text="# Hub X2 Wi-Fi drops\n\n## Fix\nMove the hub away from the microwave and update to 4.2.1.")
        await c.ok("ingest_document", tenant=a, title="Invoices", text="# Invoices\n\nDownload them in Billing.")
        t = await c.ok("create_ticket", tenant=a, subject="Hub keeps losing wifi",
                       description="My X2 hub drops off the wireless network every evening.", customer_email="w@x.test")
        prompt = await c.client.get_prompt("draft_reply", {"tenant": a, "ticket": str(t["number"])})
        text = prompt.messages[0].content.text
    assert "Hub X2 Wi-Fi drops" in text and "update to 4.2.1" in text and "Be brief." in text
    assert text.index("Hub X2 Wi-Fi drops") < text.index("Invoices") if "Invoices" in text else True


async def test_search_straddling_a_replacement_still_sees_one_version(kb: KnowledgeBase, db, make_tenant) -> None:
    """The engine answers before a replacement and Postgres is read after it: the search must
    ask again rather than return neither version."""
    a = await make_tenant("kbstr")
    await kb.ingest(a, title="Refunds", text=REFUND_V1, source_uri="kb://straddle")
    real = await kb.index()

    class ReplaceDuringFirstSearch:
        calls = 0

        def __getattr__(self, name: str):  # noqa: ANN204 - delegate everything else
            return getattr(real, name)

        async def search(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
            hits = await real.search(*args, **kwargs)
            ReplaceDuringFirstSearch.calls += 1
            if ReplaceDuringFirstSearch.calls == 1:  # stale hits, then the swap commits
                await kb.ingest(a, title="Refunds", text=REFUND_V2, source_uri="kb://straddle")
            return hits

    straddled = KnowledgeBase(kb.settings, db, index=ReplaceDuringFirstSearch(), embedder=await kb.embedder())
    found = str(await straddled.search(a, "how long do refunds take", limit=10))
    assert "ANSWERBETA" in found and "ANSWERALPHA" not in found
    assert ReplaceDuringFirstSearch.calls == 2  # it asked the engine again
