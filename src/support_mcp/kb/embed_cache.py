"""A per-process cache of passage embeddings and document chunks, for ingest.

Keyed by (embedding model, SHA-256 of the passage text) for vectors and by the document's content
hash (which covers model, chunk settings, title and text) for chunks, so evaluation episodes of
one fixture chunk and embed its documents once per process instead of once per episode. An LRU
(cachetools.LRUCache) bounded by SUPPORT_MCP_EMBEDDING_CACHE_ENTRIES passages: ~2 KB each
(384 float32 dims + BM25 terms). In memory rather than a table: a hit must cost microseconds
(a create is a few ms), vectors are cheap to recompute after a restart, and no tenant's text is
copied into a shared global table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from cachetools import LRUCache

MAX_CHUNK_DOCUMENTS = 1_000  # documents whose chunks are kept (fixtures hold tens)


class EmbeddingCache:
    def __init__(self, entries: int) -> None:
        self._vectors: LRUCache[tuple[str, bytes], tuple[Any, Any]] | None = (
            LRUCache(maxsize=entries) if entries > 0 else None)
        self._chunks: LRUCache[str, list[Any]] | None = LRUCache(maxsize=MAX_CHUNK_DOCUMENTS) if entries > 0 else None
        self.hits = self.misses = 0

    def chunks(self, digest: str) -> list[Any] | None:
        return self._chunks.get(digest) if self._chunks is not None else None

    def keep_chunks(self, digest: str, chunks: list[Any]) -> None:
        if self._chunks is not None:
            self._chunks[digest] = chunks

    async def passages(self, model: str, inputs: list[str],
                       dense: Callable[[list[str]], Awaitable[list[Any]]],
                       sparse: Callable[[list[str]], Awaitable[list[Any]]]) -> tuple[list[Any], list[Any]]:
        """(dense, sparse) vectors of `inputs`, in order: cached ones looked up, the rest computed once
        (duplicates included) with `dense` and `sparse` and remembered."""
        if self._vectors is None:
            return await dense(inputs), await sparse(inputs)
        keys = [(model, hashlib.sha256(text.encode()).digest()) for text in inputs]
        found = {k: self._vectors[k] for k in set(keys) if k in self._vectors}
        todo = list(dict.fromkeys(k for k in keys if k not in found))
        self.hits += len(keys) - sum(1 for k in keys if k not in found)
        if todo:
            texts = {k: t for k, t in zip(keys, inputs, strict=True)}
            batch = [texts[k] for k in todo]
            computed = zip(await dense(batch), await sparse(batch), strict=True)
            self.misses += len(todo)
            for k, vectors in zip(todo, computed, strict=True):
                found[k] = self._vectors[k] = vectors
        return [found[k][0] for k in keys], [found[k][1] for k in keys]
