"""Bounds on ingest_document (issue 10, finding 7): the longest document (input schema and
domain) and one ingest at a time per API key."""

from __future__ import annotations

import pytest

from support_mcp import keys
from support_mcp.errors import InvalidInput
from support_mcp.kb.ingest import NewDocument
from support_mcp.kb.service import KnowledgeBase


async def test_document_size_is_bounded_in_schema_and_domain(connect_key, make_tenant, make_key, db, kb) -> None:
    """Regression: a 1,000,000-character document was accepted (990 MB RSS, other clients
    stalled up to 1.8 s)."""
    a = await make_tenant("kbl")
    key = await make_key(tenants=[a], scopes=["read", "write"])
    async with connect_key(key, kb_max_document_chars=1000) as c:
        tools = {t.name: t for t in (await c.client.list_tools()).tools}
        assert tools["ingest_document"].input_schema["properties"]["text"]["maxLength"] == 1000
        msg = await c.err("ingest_document", tenant=a, title="Big", text="word " * 201)
        assert "text" in msg and "1000" in msg and "\n" not in msg
        ok = await c.ok("ingest_document", tenant=a, title="Small", text="word " * 199)
        assert ok["status"] == "created"
    async with connect_key(key) as c:  # the default is advertised too
        tools = {t.name: t for t in (await c.client.list_tools()).tools}
        assert tools["ingest_document"].input_schema["properties"]["text"]["maxLength"] == \
            db.settings.kb_max_document_chars == 200_000
    # the domain refuses it too (the CLI path: `support-mcp docs ingest`), before any work
    small = KnowledgeBase(db.settings.model_copy(update={"kb_max_document_chars": 1000}), db,
                          index=await kb.index(), embedder=await kb.embedder())
    with pytest.raises(InvalidInput, match=r"is 1,005 characters long; the limit is 1,000: split it"):
        await small.ingest(a, title="Big", text="word " * 201)


async def test_one_ingest_at_a_time_per_key(connect_key, make_tenant, db, kb) -> None:
    a = await make_tenant("kbc")
    one = await keys.create_key(db, "ingest-one", tenants=[a], all_tenants=False, scopes=["read", "write"])
    two = await keys.create_key(db, "ingest-two", tenants=[a], all_tenants=False, scopes=["read", "write"])
    with kb.ingests.hold(str(one.id)):  # an ingest of key one is running
        async with connect_key(one.key) as c:
            msg = await c.err("ingest_document", tenant=a, title="Second", text="Some text.")
            assert msg.endswith("an ingest is already running for this key; retry when it finishes")
        async with connect_key(two.key) as c:  # another key is not affected
            assert (await c.ok("ingest_document", tenant=a, title="Other", text="Other text."))["status"] == "created"
    async with connect_key(one.key) as c:  # finished: the key may ingest again
        assert (await c.ok("ingest_document", tenant=a, title="Second", text="Some text."))["status"] == "created"
    assert not kb.ingests.running


async def test_chunking_runs_off_the_event_loop(make_tenant, db, kb) -> None:
    """Regression: chunking a long document ran on the event loop (~2 s per million characters),
    stalling every other client of the process meanwhile."""
    import threading

    a = await make_tenant("kbt")
    real = await kb.chunker()
    threads: list[threading.Thread] = []

    class Recording:
        def chunk(self, text: str, title: str = ""):  # noqa: ANN202
            threads.append(threading.current_thread())
            return real.chunk(text, title)

        def embedding_input(self, title: str, path: list[str], text: str) -> str:
            return real.embedding_input(title, path, text)

    own = KnowledgeBase(db.settings, db, index=await kb.index(), embedder=await kb.embedder())
    own._chunker = Recording()  # noqa: SLF001
    await own.ingest(a, title="Threads", text="# Threads\n\nChunked somewhere else.")
    assert threads and threads[0] is not threading.main_thread()


async def test_ingest_embeds_the_next_wave_while_writing_the_last(make_tenant, db, kb) -> None:
    """Pipelining (issue 13): the model embeds wave n+1 while wave n goes to the engine and
    Postgres. Recorded through pass-through wrappers around the real embedder and index."""
    events: list[str] = []
    real_emb, real_index = await kb.embedder(), await kb.index()

    class Embedder:
        def __getattr__(self, name: str):  # noqa: ANN204
            return getattr(real_emb, name)

        async def aembed_documents(self, texts: list[str]):  # noqa: ANN201
            events.append("embed")
            return await real_emb.aembed_documents(texts)

    class Index:
        def __getattr__(self, name: str):  # noqa: ANN204
            return getattr(real_index, name)

        async def upsert(self, ns: str, points):  # noqa: ANN001, ANN201
            events.append("upsert")
            await real_index.upsert(ns, points)
            events.append("upserted")

    own = KnowledgeBase(db.settings, db, index=Index(), embedder=Embedder())  # type: ignore[arg-type]
    slug = await make_tenant("kbp")
    docs = [(f"Note {i}", f"Short note number {i} about the hub's LED colours.") for i in range(80)]
    done = await own.ingest_documents(slug, [NewDocument(title, text) for title, text in docs])
    assert [r.status for r in done] == ["created"] * 80
    first_write = events.index("upsert")
    assert "embed" in events[first_write:], "every batch was embedded before the first write"
    overlapped = any(events[j] == "upsert" and events[j + 1] == "embed" for j in range(len(events) - 1))
    assert overlapped, "no batch was embedded while a write was in flight"
    assert len((await own.search(slug, "LED colours", limit=50)).results) == 50
