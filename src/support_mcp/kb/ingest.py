"""Ingestion: chunk, embed (batched across documents), then write each document.

Write order per document: new vectors first (Postgres does not know their ids yet, so search
ignores them), then one Postgres transaction replaces the document's chunks, then the stale
vectors go. A search checks every hit against Postgres (never two versions) and asks the engine
again when a document's hits all vanished between the engine query and that check (never none).
Re-ingesting an unchanged document (same content hash) is a no-op."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..db import queries
from ..errors import InvalidInput
from ..logging import get_logger
from .chunking import Chunk, embedding_text
from .index import ChunkPoint
from .limits import check_document_size
from .models import IngestResult

if TYPE_CHECKING:
    from .service import KnowledgeBase, Progress

log = get_logger(__name__)
_COLUMNS = ("id", "document_id", "ordinal", "heading_path", "text", "token_count", "dense", "sparse_indices",
            "sparse_values")
_INSERT_CHUNK = f"INSERT INTO chunks ({', '.join(_COLUMNS)}) VALUES ({', '.join(f'${i}' for i in range(1, 10))})"


@dataclass(frozen=True)
class NewDocument:
    title: str
    text: str
    source_uri: str | None = None


@dataclass
class _Prepared:
    title: str
    source_uri: str
    digest: str
    existing_id: uuid.UUID | None
    chunks: list[Chunk]
    inputs: list[str]


def content_hash(kb: KnowledgeBase, title: str, text: str, model: str) -> str:
    s = kb.settings
    key = f"{model}\0{s.kb_chunk_tokens}\0{s.kb_chunk_overlap}\0{title}\0{text}"
    return hashlib.sha256(key.encode()).hexdigest()


async def ingest_documents(kb: KnowledgeBase, slug: str, docs: list[NewDocument],
                           progress: Progress | None = None) -> list[IngestResult]:
    for doc in docs:  # before any work: the tool's schema says so too, this also bounds the CLI
        check_document_size(doc.title, doc.text, kb.settings.kb_max_document_chars)
    emb, chunker = await kb.embedder(), await kb.chunker()
    namespace, _ = await kb.namespace(slug)
    results: list[IngestResult | None] = [None] * len(docs)
    todo: list[tuple[int, _Prepared]] = []
    for i, doc in enumerate(docs):
        title, text = doc.title.strip(), doc.text.strip()
        if not title or not text:
            raise InvalidInput("a document needs a title and some text")
        source_uri = (doc.source_uri or f"title:{title}").strip()
        digest = content_hash(kb, title, text, emb.model_name)
        async with kb.db.tenant_scope(slug) as s:
            existing = await queries.get_document_by_source(s.conn, source_uri=source_uri)
            if existing is not None and existing["content_hash"] == digest:
                n = len([r async for r in queries.document_chunks(s.conn, document_id=existing["id"])])
                results[i] = IngestResult(document_id=existing["id"], title=title, status="unchanged", chunks=n)
                continue
        chunks = await asyncio.to_thread(chunker.chunk, text)  # ~2 s per million characters: not on the loop
        if not chunks:
            raise InvalidInput(f"document {title[:80]!r} has no text to index")
        todo.append((i, _Prepared(title, source_uri, digest, existing["id"] if existing else None, chunks,
                                  [embedding_text(title, c.heading_path, c.text) for c in chunks])))
    if todo:
        inputs = [text for _, p in todo for text in p.inputs]
        dense = await _embed_dense(emb, inputs, kb.settings.embedding_batch_size, progress)
        sparse = await emb.asparse_documents(inputs)
        index = await kb.index()
        await index.ensure_namespace(namespace, emb.dense_dim)
        at = 0
        for i, prep in todo:
            n = len(prep.inputs)
            results[i] = await _write(kb, slug, namespace, prep, dense[at:at + n], sparse[at:at + n], emb.model_name)
            at += n
    return [r for r in results if r is not None]


async def _embed_dense(emb: Any, inputs: list[str], batch: int, progress: Progress | None) -> list[Any]:
    out: list[Any] = []
    for start in range(0, len(inputs), batch):
        out += await emb.aembed_documents(inputs[start:start + batch])
        if progress:
            await progress(min(start + batch, len(inputs)), len(inputs), "embedding passages")
    return out


async def _write(kb: KnowledgeBase, slug: str, namespace: str, prep: _Prepared, dense: list[Any],
                 sparse: list[Any], model: str) -> IngestResult:
    index = await kb.index()
    ids = [str(uuid.uuid4()) for _ in prep.chunks]
    doc_id = prep.existing_id or uuid.uuid4()
    points = [ChunkPoint(i, str(doc_id), d, sp) for i, d, sp in zip(ids, dense, sparse, strict=True)]
    await index.upsert(namespace, points)  # 1. new vectors, invisible to search until the commit
    try:
        async with kb.db.tenant_scope(slug) as s:  # 2. the one transaction that switches versions
            doc = await queries.upsert_document(s.conn, id=doc_id, source_uri=prep.source_uri, title=prep.title,
                                                content_hash=prep.digest, embedding_model=model)
            old = [str(r["id"]) async for r in queries.delete_chunks_of(s.conn, document_id=doc["id"])]
            # INSERT, not COPY: COPY FROM is refused on tables under row-level security (RLS mode)
            await s.conn.executemany(_INSERT_CHUNK, [
                (uuid.UUID(i), doc["id"], c.ordinal, c.heading_path, c.text, c.token_count,
                 [float(x) for x in d], sp.indices, sp.values)
                for i, c, d, sp in zip(ids, prep.chunks, dense, sparse, strict=True)])
    except BaseException:
        await index.delete_points(namespace, ids)  # the commit failed: take the new vectors back
        raise
    if doc["id"] != doc_id:  # another writer created the document meanwhile: relabel our points
        await index.upsert(namespace, [ChunkPoint(p.id, str(doc["id"]), p.dense, p.sparse) for p in points])
    if old:
        await index.delete_points(namespace, old)  # 3. stale vectors
    log.info("document_ingested", tenant=slug, chunks=len(prep.chunks), replaced=len(old))
    return IngestResult(document_id=doc["id"], title=prep.title, chunks=len(prep.chunks),
                        status="created" if doc["created"] else "updated")
