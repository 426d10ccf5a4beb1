"""The per-process embedding cache (kb/embed_cache.py) under ingest: the same vectors as computing
them, each distinct passage embedded once, and progress still reported when everything was cached."""

from __future__ import annotations

import numpy as np

from support_mcp.kb.embed_cache import EmbeddingCache


async def test_cache_returns_computed_vectors_once_per_text() -> None:
    calls: list[list[str]] = []

    async def dense(texts: list[str]) -> list[np.ndarray]:
        calls.append(list(texts))
        return [np.full(3, len(t), np.float32) for t in texts]

    async def sparse(texts: list[str]) -> list[str]:
        return [f"s:{t}" for t in texts]

    cache = EmbeddingCache(10)
    d, s = await cache.passages("m", ["aa", "b", "aa"], dense, sparse)
    assert calls == [["aa", "b"]] and [float(v[0]) for v in d] == [2, 1, 2] and s == ["s:aa", "s:b", "s:aa"]
    d2, s2 = await cache.passages("m", ["b", "ccc"], dense, sparse)
    assert calls[-1] == ["ccc"] and [float(v[0]) for v in d2] == [1, 3] and s2 == ["s:b", "s:ccc"]
    await cache.passages("other-model", ["b"], dense, sparse)  # the model is part of the key
    assert calls[-1] == ["b"]
    off = EmbeddingCache(0)
    await off.passages("m", ["aa"], dense, sparse)
    await off.passages("m", ["aa"], dense, sparse)
    assert calls[-2:] == [["aa"], ["aa"]]


async def test_cached_ingest_still_reports_progress(kb, make_tenant) -> None:
    text = "# Cached\n\nThe same passage, ingested into two tenants."
    for prefix in ("ca", "cb"):
        seen: list[tuple[int, int, str]] = []

        async def progress(done: int, total: int, what: str) -> None:
            seen.append((done, total, what))

        await kb.ingest(await make_tenant(prefix), title="Cached doc", text=text, progress=progress)
        assert seen and seen[-1][0] == seen[-1][1]
    assert kb.embedding_cache.hits >= 1
