"""The knowledge base: ingest (kb/writes.py), delete, list, search and reindex, per tenant (the write order is
described in kb/ingest.py).

Postgres is the source of truth. Writes go vectors-first, Postgres-second, stale-vectors-last;
every search result is checked against Postgres, and a search whose engine answer predates a
replacement asks again, so it sees exactly one committed version: never both, never neither."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from .. import clientlog, tenancy
from ..db import Database, queries
from ..errors import Conflict, InvalidInput, NotFound, UpstreamUnavailable
from ..logging import get_logger
from ..settings import Settings
from ..ttlcache import Cached
from ..untrusted import Fence, one_line
from .chunking import Chunker
from .embed_cache import EmbeddingCache
from .index import ChunkPoint, Hit, SparseVec, VectorIndex
from .ingest import Progress
from .limits import IngestGate
from .models import DocumentInfo, SearchHit, SearchResults
from .writes import DocumentWrites

log = get_logger(__name__)
SHARED_TENANT = "_shared"  # the tenant whose documents are the shared global_docs namespace
SHARED_NAMESPACE = "global_docs"


class KnowledgeBase(DocumentWrites):
    def __init__(self, settings: Settings, db: Database, *, index: VectorIndex | None = None,
                 embedder: Any = None) -> None:
        self.settings, self.db = settings, db
        self._index, self._embedder = index, embedder
        # what it was given is the giver's to close (tests and episodes lend the session's parts)
        self._owns_index, self._owns_embedder = index is None, embedder is None
        self._chunker: Chunker | None = None
        self._reranker: Any = None
        self._reranker_loaded = False
        self._rebuilds: dict[str, asyncio.Lock] = {}
        self._namespaces: Cached[str, tuple[str, bool]] = Cached(settings.cache_seconds)
        self._lock = asyncio.Lock()
        self.ingests = IngestGate(settings.kb_max_ingests_per_key)
        self.embedding_cache = EmbeddingCache(settings.embedding_cache_entries)

    # --- lazily built parts -------------------------------------------------------------
    async def embedder(self) -> Any:
        async with self._lock:
            if self._embedder is None:
                from .factory import build_embedder

                self._embedder = await asyncio.to_thread(build_embedder, self.settings)
            return self._embedder

    async def index(self) -> VectorIndex:
        async with self._lock:
            if self._index is None:
                from .factory import build_index

                self._index = build_index(self.settings)
            return self._index

    async def reranker(self) -> Any:
        """The cross-encoder when SUPPORT_MCP_KB_RERANK is on and it loads, else None (loaded once;
        a missing or corrupted model is logged as a warning here and search keeps the fused order)."""
        if not self.settings.kb_rerank:
            return None
        async with self._lock:
            if not self._reranker_loaded:
                from .rerank import load_reranker

                s = self.settings
                self._reranker = await asyncio.to_thread(load_reranker, s.kb_rerank_model_path,
                                                         s.kb_rerank_model_sha256, s.embedding_threads)
                self._reranker_loaded = True
            return self._reranker

    async def chunker(self) -> Chunker:
        if self._chunker is None:
            emb = await self.embedder()
            self._chunker = Chunker(emb.tokenizer, target_tokens=self.settings.kb_chunk_tokens,
                                    overlap_tokens=self.settings.kb_chunk_overlap, max_tokens=emb.max_tokens)
        return self._chunker

    async def close(self) -> None:
        if self._index is not None and self._owns_index:
            await self._index.close()
        if self._embedder is not None and self._owns_embedder:
            self._embedder.close()

    # --- tenants ------------------------------------------------------------------------
    async def namespace(self, slug: str) -> tuple[str, bool]:
        """(the tenant's namespace, whether its policy allows global docs); cached briefly."""
        return await self._namespaces.get(slug, lambda: self._load_namespace(slug))

    async def _load_namespace(self, slug: str) -> tuple[str, bool]:
        async with self.db.connection() as conn:
            row = await queries.get_tenant_kb(conn, slug=slug)
        if row is None:
            raise NotFound(f"unknown tenant '{slug}'")
        return row["rag_index_namespace"], row["allow_global_docs"]

    async def ensure_shared_tenant(self) -> str:
        """The internal tenant that holds the shared global documents (created on first use)."""
        try:
            await tenancy.create_tenant(self.db, SHARED_TENANT, "Shared global documents",
                                        rag_index_namespace=SHARED_NAMESPACE)
        except Conflict:
            pass
        return SHARED_TENANT

    async def drop_tenant_namespace(self, namespace: str) -> None:
        await (await self.index()).drop_namespace(namespace)
        self._namespaces.clear()

    # --- writes -------------------------------------------------------------------------
    async def delete_document(self, slug: str, document_id: uuid.UUID) -> None:
        namespace, _ = await self.namespace(slug)
        async with self.db.tenant_scope(slug) as s:
            if await queries.delete_document(s.conn, id=document_id) is None:
                raise NotFound(f"document {document_id} not found")
        await (await self.index()).delete_document(namespace, str(document_id))

    async def get_document(self, slug: str, document_id: uuid.UUID) -> DocumentInfo:
        async with self.db.tenant_scope(slug) as s:
            row = await queries.get_document(s.conn, id=document_id)
        if row is None:
            raise NotFound(f"document {document_id} not found")
        return DocumentInfo(**{k: row[k] for k in DocumentInfo.model_fields})

    async def list_documents(self, slug: str, after_updated: Any, after_id: Any, limit: int) -> list[dict[str, Any]]:
        async with self.db.tenant_scope(slug) as s:
            return [dict(r) async for r in queries.list_documents(s.conn, after_updated=after_updated,
                                                                  after_id=after_id, limit=limit)]

    async def document_markdown(self, slug: str, document_id: uuid.UUID) -> str:
        info = await self.get_document(slug, document_id)
        async with self.db.tenant_scope(slug) as s:
            rows = [r async for r in queries.document_chunks(s.conn, document_id=document_id)]
        # the title and source are one escaped line each; the text (with its section headings) is
        # one untrusted block: ingested documents may come from anywhere
        body = "\n\n".join(f"## {' > '.join(r['heading_path'])}\n\n{r['text']}" if r["heading_path"] else r["text"]
                           for r in rows)
        fence = Fence()
        return "\n".join([f"# {one_line(info.title, 300)}", f"- source: {one_line(info.source_uri, 500)}",
                          "", fence.preamble(), "", fence.block(body or "(empty)", "document"), ""])

    async def reindex(self, slug: str, progress: Progress | None = None) -> int:
        """Rebuild the tenant's vectors from the copies kept in Postgres."""
        namespace, _ = await self.namespace(slug)
        index, emb = await self.index(), await self.embedder()
        await index.drop_namespace(namespace)
        await index.ensure_namespace(namespace, emb.dense_dim)
        done, after = 0, None
        async with self.db.tenant_scope(slug, allow_suspended=slug == SHARED_TENANT) as s:
            total = await queries.count_chunks(s.conn)
        while True:
            async with self.db.tenant_scope(slug, allow_suspended=slug == SHARED_TENANT) as s:
                rows = [r async for r in queries.all_chunk_vectors(s.conn, after_id=after, limit=1000)]
            if not rows:
                return done
            await index.upsert(namespace, [ChunkPoint(str(r["id"]), str(r["document_id"]), r["dense"],
                                                      SparseVec(list(r["sparse_indices"]), list(r["sparse_values"])))
                                           for r in rows])
            done, after = done + len(rows), rows[-1]["id"]
            if progress:
                await progress(done, total, "reindexed")

    # --- search -------------------------------------------------------------------------
    async def search(self, slug: str, query: str, *, limit: int = 5, mode: str = "hybrid",
                     include_global: bool = False, rerank: bool | None = None) -> SearchResults:
        """`rerank`: None follows SUPPORT_MCP_KB_RERANK; False gives the engine's (fused) order."""
        query = query.strip()
        if not query:
            raise InvalidInput("query is empty")
        namespace, allow_global = await self.namespace(slug)
        if include_global and not allow_global:
            raise InvalidInput(f"tenant '{slug}' does not allow searching the shared global documents")
        emb = await self.embedder()
        reranker = await self.reranker() if rerank is not False else None
        dense, sparse = await emb.aembed_hybrid_query(query)
        results = await self._search_space(slug, namespace, dense, sparse, limit, mode, query, reranker)
        shared = None
        if include_global:
            try:
                shared_ns, _ = await self.namespace(SHARED_TENANT)
            except NotFound:
                shared = []  # no global documents were ever ingested
            else:
                # its own list, reranked on its own: never mixed into the tenant's candidates
                shared = await self._search_space(SHARED_TENANT, shared_ns, dense, sparse, limit, mode, query,
                                                  reranker)
        return SearchResults(query=query, mode=mode, results=results, global_results=shared)  # type: ignore[arg-type]

    async def _search_space(self, slug: str, namespace: str, dense: Any, sparse: SparseVec, limit: int,
                            mode: str, query: str = "", reranker: Any = None) -> list[SearchHit]:
        wanted = max(limit, self.settings.kb_rerank_candidates) if reranker is not None else limit
        for attempt in range(3):
            hits = await self._engine_search(namespace, dense, sparse, wanted, mode)
            if not hits and attempt == 0 and await self._rebuild_if_missing(slug, namespace):  # once
                hits = await self._engine_search(namespace, dense, sparse, wanted, mode)
            if not hits:
                return []
            async with self.db.tenant_scope(slug, allow_suspended=slug == SHARED_TENANT) as sc:
                rows = {str(r["id"]): r async for r in queries.hydrate_chunks(sc.conn, ids=[h.id for h in hits])}
            # A document whose hits all vanished was replaced between the engine query and this
            # read (its new vectors went in before the commit, so asking again finds them).
            found = {str(r["document_id"]) for r in rows.values()}
            if not {h.document_id for h in hits if h.id not in rows} - found or attempt == 2:
                break
            await clientlog.emit("notice", "retry", step="search", attempt=attempt + 2,
                                 reason="a document was replaced while searching")
        # the engine's order (ties, common under RRF, broken by chunk id: the same query always
        # ranks the same), without what Postgres no longer (or not yet) has
        found_hits = sorted([(h, rows[h.id]) for h in hits if h.id in rows], key=lambda x: (-x[0].score, x[0].id))
        found_hits = found_hits[:wanted]
        scores = [h.score for h, _ in found_hits]
        if reranker is not None and found_hits:
            scores = await self._rerank(reranker, query, found_hits[:self.settings.kb_rerank_candidates]) or scores
            if len(scores) < len(found_hits):  # candidates past the window keep the fused order, below
                floor = min(scores) if scores else 0.0
                scores += [floor - 1 - i for i in range(len(found_hits) - len(scores))]
            order = sorted(range(len(found_hits)), key=lambda i: -scores[i])
            found_hits, scores = [found_hits[i] for i in order], [scores[i] for i in order]
        return [SearchHit(document_id=r["document_id"], chunk_id=r["id"], title=r["title"],
                          heading_path=list(r["heading_path"]), snippet=_snippet(r["text"]),
                          score=round(score, 6), source_uri=r["source_uri"])
                for (_, r), score in zip(found_hits[:limit], scores[:limit], strict=True)]

    async def _rebuild_if_missing(self, slug: str, namespace: str) -> bool:
        """A tenant whose chunks are in Postgres but whose namespace is empty (restored from a backup,
        under its own or a new slug, or an index lost with its data dir) gets its vectors back from
        Postgres, once: its search then answers instead of returning nothing."""
        index = await self.index()
        try:
            if await index.count(namespace) > 0:
                return False
            async with self.db.tenant_scope(slug, allow_suspended=slug == SHARED_TENANT) as sc:
                if not await queries.count_chunks(sc.conn):
                    return False
            async with self._rebuilds.setdefault(slug, asyncio.Lock()):
                if await index.count(namespace) == 0:
                    log.warning("kb_namespace_rebuilt", tenant=slug,
                                reason="the search index had no vectors for this tenant's chunks (a restore?)")
                    await self.reindex(slug)
        except Exception as exc:  # noqa: BLE001 - the search answers [] as before; the log says why
            log.warning("kb_namespace_rebuild_failed", tenant=slug, error=exc.__class__.__name__)
            return False
        return True

    async def _rerank(self, reranker: Any, query: str, candidates: list[tuple[Hit, Any]]) -> list[float]:
        """Cross-encoder scores of the candidates, or [] (the fused order stays) if scoring fails."""
        chunker = await self.chunker()
        passages = [chunker.embedding_input(r["title"], list(r["heading_path"]), r["text"]) for _, r in candidates]
        try:
            return await asyncio.to_thread(reranker.score, query, passages)
        except Exception as exc:  # noqa: BLE001 - a broken reranker must not break search
            log.warning("kb_rerank_failed", error=exc.__class__.__name__, detail=str(exc)[:200],
                        fallback="fused results")
            return []

    async def _engine_search(self, namespace: str, dense: Any, sparse: SparseVec, limit: int,
                             mode: str) -> list[Hit]:
        s = self.settings
        try:
            return await (await self.index()).search(
                namespace, dense=dense, sparse=sparse, mode=mode, limit=limit * 3,  # type: ignore[arg-type]
                prefetch=max(s.kb_prefetch, limit * 3), fusion=s.kb_fusion, rrf_k=s.kb_rrf_k)
        except Exception as exc:  # noqa: BLE001 - any engine failure: say so, keep the server up
            log.warning("kb_search_failed", error=exc.__class__.__name__, detail=str(exc)[:200])
            raise UpstreamUnavailable(f"the knowledge-base search engine is unavailable ({exc.__class__.__name__}); "
                                      "ticket tools still work") from None


def _snippet(text: str, size: int = 400) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[:size].rsplit(" ", 1)[0] + " …"
