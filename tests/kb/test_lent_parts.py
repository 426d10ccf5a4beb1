"""A knowledge base built with lent parts (the session's embedder and index, as tests and tools that
wrap one knowledge base do) closes only what it built itself. Found from outside the module: the
RLS episode test closed its own knowledge base, which shut the session's embedder down, and every
later ingest in that pytest session failed with "cannot schedule new futures after shutdown"."""

from __future__ import annotations

from support_mcp.kb.service import KnowledgeBase


async def test_closing_a_knowledge_base_leaves_lent_parts_working(db, kb, make_tenant) -> None:
    embedder, index = await kb.embedder(), await kb.index()
    borrower = KnowledgeBase(kb.settings, db, index=index, embedder=embedder)
    await borrower.close()
    slug = await make_tenant("lent")
    await kb.ingest(slug, title="Returns", text="Returns are accepted within thirty days of delivery.")
    hits = await kb.search(slug, "how long do I have to return an item", limit=3)
    assert hits.results and "thirty days" in hits.results[0].snippet
