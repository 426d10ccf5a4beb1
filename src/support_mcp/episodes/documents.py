"""A fixture's documents into an empty tenant, in bulk (create and reset).

The knowledge base's own ingest (kb/ingest.py) writes document by document, checking for an
unchanged copy first: right for the tools, where any document may already exist. An episode's
tenant has no document yet (just provisioned, or just emptied by reset), so here every document
is chunked and embedded in one pass (both cached per process: kb/embed_cache.py), all vectors go
to the index in ONE upsert, then ONE tenant transaction inserts the documents and COPYs every
chunk. The write order is the ingest's (vectors first, invisible to search until the commit;
taken back if the commit fails), and the rows are the same (ids, content hashes, model), so the
knowledge base cannot tell the two paths apart.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

from ..db import queries
from ..errors import InvalidInput
from ..kb.index import ChunkPoint
from ..kb.ingest import content_hash, write_chunks
from ..logging import get_logger

if TYPE_CHECKING:
    from ..kb.service import KnowledgeBase
    from .fixtures import DocumentPart

log = get_logger(__name__)


def _by_source(docs: list[DocumentPart]) -> list[DocumentPart]:
    """One document per source (the title when it has none): a later one replaces an earlier one, as
    ingesting them one by one would."""
    return list({_source(d): d for d in docs}.values())


def _source(doc: DocumentPart) -> str:
    return (doc.source_uri or f"title:{doc.title.strip()}").strip()


async def fixture_document_hashes(kb: KnowledgeBase, fixture: Any) -> dict[str, str]:
    """source_uri -> content hash of the documents the fixture puts in the knowledge base."""
    model = (await kb.embedder()).model_id
    return {_source(d): content_hash(kb.settings, d.title.strip(), d.text.strip(), model) for d in _by_source(fixture.documents)}


async def ingest_fresh(kb: KnowledgeBase, slug: str, docs: list[DocumentPart]) -> int:
    """Write `docs` into `slug`'s empty knowledge base; returns the number of chunks."""
    if not docs:
        return 0
    docs = _by_source(docs)
    emb, chunker = await kb.embedder(), await kb.chunker()
    namespace, _ = await kb.namespace(slug)
    prepared: list[tuple[uuid.UUID, str, str, str, list[Any]]] = []
    inputs: list[str] = []
    for doc in docs:
        title, text = doc.title.strip(), doc.text.strip()
        digest = content_hash(kb.settings, title, text, emb.model_id)
        chunks = kb.embedding_cache.chunks(digest)
        if chunks is None:
            chunks = await asyncio.to_thread(chunker.chunk, text, title)
            kb.embedding_cache.keep_chunks(digest, chunks)
        if not chunks:
            raise InvalidInput(f"document {title[:80]!r} has no text to index")
        prepared.append((uuid.uuid4(), _source(doc), title, digest, chunks))
        inputs += [chunker.embedding_input(title, c.heading_path, c.text) for c in chunks]
    dense, sparse = await kb.embedding_cache.passages(emb.model_id, inputs, emb.aembed_documents,
                                                      emb.asparse_documents)
    ids = [uuid.uuid4() for _ in inputs]
    points, records, at = [], [], 0
    for doc_id, _, _, _, chunks in prepared:
        for c in chunks:
            points.append(ChunkPoint(str(ids[at]), str(doc_id), dense[at], sparse[at]))
            records.append((ids[at], doc_id, c.ordinal, c.heading_path, c.text, c.token_count,
                            [float(x) for x in dense[at]], sparse[at].indices, sparse[at].values))
            at += 1
    index = await kb.index()
    await index.ensure_namespace(namespace, emb.dense_dim)
    await index.upsert(namespace, points)  # 1. vectors, invisible to search until the commit
    try:
        async with kb.db.tenant_scope(slug) as s:  # 2. every document and chunk in one transaction
            for doc_id, source_uri, title, digest, _ in prepared:
                await queries.upsert_document(s.conn, id=doc_id, source_uri=source_uri, title=title,
                                              content_hash=digest, embedding_model=emb.model_id)
            await write_chunks(s.conn, records, isolation=kb.db.isolation)
    except BaseException:
        await index.delete_points(namespace, [str(i) for i in ids])
        raise
    log.info("fixture_documents_ingested", tenant=slug, documents=len(docs), chunks=len(points))
    return len(points)
