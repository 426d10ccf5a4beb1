"""The knowledge base's document writes (a part of `KnowledgeBase`, kb/service.py): ingest one or
many documents (document by document, unchanged ones left alone, embedding pipelined with the
writes) and the bulk load of an empty knowledge base (episodes). The write order per document is
described in kb/ingest.py."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import TYPE_CHECKING, Any

from ..db import queries
from ..errors import InvalidInput
from ..logging import get_logger
from .index import ChunkPoint
from .ingest import NewDocument, Prepared, Progress, content_hash, embed_dense, waves, write_chunks
from .limits import check_document_size
from .models import IngestResult

if TYPE_CHECKING:
    from ..db import Database
    from ..settings import Settings
    from .embed_cache import EmbeddingCache
    from .limits import IngestGate

log = get_logger("support_mcp.kb.service")


def _source(doc: NewDocument) -> str:
    """A document's identity: its source URI, else its title."""
    return (doc.source_uri or f"title:{doc.title.strip()}").strip()


class DocumentWrites:
    """Mixed into KnowledgeBase, whose parts (embedder, chunker, index, namespace, caches) it uses."""

    settings: Settings
    db: Database
    embedding_cache: EmbeddingCache
    ingests: IngestGate

    async def ingest(self, slug: str, *, title: str, text: str, source_uri: str | None = None,
                     progress: Progress | None = None, caller: str | None = None) -> IngestResult:
        """`caller` (an API key id): at most settings.kb_max_ingests_per_key of its ingests run at once."""
        with self.ingests.hold(caller):
            (result,) = await self.ingest_documents(slug, [NewDocument(title, text, source_uri)], progress)
        return result

    async def ingest_documents(self, slug: str, docs: list[NewDocument],
                               progress: Progress | None = None) -> list[IngestResult]:
        """Several documents, embedded in shared batches (faster for small documents); an unchanged
        document (same content hash) is left alone."""
        for doc in docs:  # before any work: the tool's schema says so too, this also bounds the CLI
            check_document_size(doc.title, doc.text, self.settings.kb_max_document_chars)
        emb, chunker = await self.embedder(), await self.chunker()
        namespace, _ = await self.namespace(slug)
        results: list[IngestResult | None] = [None] * len(docs)
        todo: list[tuple[int, Prepared]] = []
        for i, doc in enumerate(docs):
            title, text = doc.title.strip(), doc.text.strip()
            if not title or not text:
                raise InvalidInput("a document needs a title and some text")
            source_uri = (doc.source_uri or f"title:{title}").strip()
            digest = content_hash(self.settings, title, text, emb.model_id)
            async with self.db.tenant_scope(slug) as s:
                existing = await queries.get_document_by_source(s.conn, source_uri=source_uri)
                if existing is not None and existing["content_hash"] == digest:
                    n = len([r async for r in queries.document_chunks(s.conn, document_id=existing["id"])])
                    results[i] = IngestResult(document_id=existing["id"], title=title, status="unchanged", chunks=n)
                    continue
            chunks = self.embedding_cache.chunks(digest)
            if chunks is None:  # ~2 s per million characters: not on the loop
                chunks = await asyncio.to_thread(chunker.chunk, text, title)
                self.embedding_cache.keep_chunks(digest, chunks)
            if not chunks:
                raise InvalidInput(f"document {title[:80]!r} has no text to index")
            todo.append((i, Prepared(title, source_uri, digest, existing["id"] if existing else None, chunks,
                                     [chunker.embedding_input(title, c.heading_path, c.text) for c in chunks])))
        if todo:
            await (await self.index()).ensure_namespace(namespace, emb.dense_dim)
            batch = self.settings.embedding_batch_size
            total, done = sum(len(p.inputs) for _, p in todo), 0

            async def embed(wave: list[tuple[int, Prepared]]) -> tuple[list[Any], list[Any]]:
                nonlocal done
                inputs = [text for _, p in wave for text in p.inputs]
                offset = done

                async def dense_of(texts: list[str]) -> list[Any]:
                    return await embed_dense(emb, texts, batch, progress, offset, total)

                # episodes of one fixture embed it once (kb/embed_cache.py)
                dense, sparse = await self.embedding_cache.passages(emb.model_id, inputs, dense_of,
                                                                    emb.asparse_documents)
                done += len(inputs)
                if progress and done == total:  # cached passages skip embed_dense: the caller still sees the end
                    await progress(total, total, "embedding passages")
                return dense, sparse

            # Pipelined: the model embeds wave n+1 (on its worker thread) while wave n is written to
            # the engine and Postgres (I/O on this loop), instead of one waiting for the other.
            groups = waves(todo, max(4 * batch, 32))
            pending: asyncio.Task[tuple[list[Any], list[Any]]] | None = asyncio.create_task(embed(groups[0]))
            try:
                for w, group in enumerate(groups):
                    assert pending is not None
                    dense, sparse = await pending
                    pending = asyncio.create_task(embed(groups[w + 1])) if w + 1 < len(groups) else None
                    at = 0
                    for i, prep in group:
                        n = len(prep.inputs)
                        results[i] = await self._write(slug, namespace, prep, dense[at:at + n], sparse[at:at + n],
                                                       emb.model_id)
                        at += n
            finally:
                if pending is not None:  # a write failed: stop embedding what will not be written
                    pending.cancel()
                    with contextlib.suppress(BaseException):
                        await pending
        return [r for r in results if r is not None]

    async def _write(self, slug: str, namespace: str, prep: Prepared, dense: list[Any], sparse: list[Any],
                     model: str) -> IngestResult:
        index = await self.index()
        ids = [str(uuid.uuid4()) for _ in prep.chunks]
        doc_id = prep.existing_id or uuid.uuid4()
        points = [ChunkPoint(i, str(doc_id), d, sp) for i, d, sp in zip(ids, dense, sparse, strict=True)]
        await index.upsert(namespace, points)  # 1. new vectors, invisible to search until the commit
        try:
            async with self.db.tenant_scope(slug) as s:  # 2. the one transaction that switches versions
                doc = await queries.upsert_document(s.conn, id=doc_id, source_uri=prep.source_uri, title=prep.title,
                                                    content_hash=prep.digest, embedding_model=model)
                old = [str(r["id"]) async for r in queries.delete_chunks_of(s.conn, document_id=doc["id"])]
                await write_chunks(s.conn, [
                    (uuid.UUID(i), doc["id"], c.ordinal, c.heading_path, c.text, c.token_count,
                     [float(x) for x in d], sp.indices, sp.values)
                    for i, c, d, sp in zip(ids, prep.chunks, dense, sparse, strict=True)], isolation=self.db.isolation)
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

    async def load_documents(self, slug: str, docs: list[NewDocument]) -> int:
        """Documents into a tenant whose knowledge base is EMPTY (an episode just provisioned or
        reset), in bulk; returns the number of chunks. `ingest_documents` goes document by document
        and first looks for an unchanged copy, right for the tools; here every document is chunked
        and embedded in one pass (both cached per process: kb/embed_cache.py), all vectors go to the
        index in ONE upsert, then ONE tenant transaction inserts the documents and every chunk. The
        write order and the rows (ids, content hashes, model) are ingest's, so nothing can tell the
        two paths apart. A later document with the same source replaces an earlier one, as
        ingesting them one by one would."""
        docs = list({_source(d): d for d in docs}.values())
        if not docs:
            return 0
        emb, chunker = await self.embedder(), await self.chunker()
        namespace, _ = await self.namespace(slug)
        prepared: list[tuple[uuid.UUID, str, str, str, list[Any]]] = []
        inputs: list[str] = []
        for doc in docs:
            title, text = doc.title.strip(), doc.text.strip()
            digest = content_hash(self.settings, title, text, emb.model_id)
            chunks = self.embedding_cache.chunks(digest)
            if chunks is None:
                chunks = await asyncio.to_thread(chunker.chunk, text, title)
                self.embedding_cache.keep_chunks(digest, chunks)
            if not chunks:
                raise InvalidInput(f"document {title[:80]!r} has no text to index")
            prepared.append((uuid.uuid4(), _source(doc), title, digest, chunks))
            inputs += [chunker.embedding_input(title, c.heading_path, c.text) for c in chunks]
        dense, sparse = await self.embedding_cache.passages(emb.model_id, inputs, emb.aembed_documents,
                                                            emb.asparse_documents)
        ids = [uuid.uuid4() for _ in inputs]
        points, records, at = [], [], 0
        for doc_id, _, _, _, chunks in prepared:
            for c in chunks:
                points.append(ChunkPoint(str(ids[at]), str(doc_id), dense[at], sparse[at]))
                records.append((ids[at], doc_id, c.ordinal, c.heading_path, c.text, c.token_count,
                                [float(x) for x in dense[at]], sparse[at].indices, sparse[at].values))
                at += 1
        index = await self.index()
        await index.ensure_namespace(namespace, emb.dense_dim)
        await index.upsert(namespace, points)  # 1. vectors, invisible to search until the commit
        try:
            async with self.db.tenant_scope(slug) as s:  # 2. every document and chunk in one transaction
                for doc_id, source_uri, title, digest, _ in prepared:
                    await queries.upsert_document(s.conn, id=doc_id, source_uri=source_uri, title=title,
                                                  content_hash=digest, embedding_model=emb.model_id)
                await write_chunks(s.conn, records, isolation=self.db.isolation)
        except BaseException:
            await index.delete_points(namespace, [str(i) for i in ids])
            raise
        log.info("documents_loaded", tenant=slug, documents=len(docs), chunks=len(points))
        return len(points)

    async def content_hashes(self, docs: list[NewDocument]) -> dict[str, str]:
        """source URI -> the content hash ingest would record for each document (the last one per source)."""
        model = (await self.embedder()).model_id
        return {_source(d): content_hash(self.settings, d.title.strip(), d.text.strip(), model) for d in docs}
