"""Build the embedder and the vector index from settings (the knowledge base's composition)."""

from __future__ import annotations

from ..settings import Settings
from .index import VectorIndex

RLS_COLLECTION = "support_mcp_tenants"  # RLS mode: the one Qdrant collection / embedded shard


def build_embedder(settings: Settings):  # noqa: ANN201 - Embedder (imported late: loads onnxruntime)
    from .embedding import Embedder

    return Embedder(
        model_name=settings.embedding_model,
        model_path=settings.embedding_model_path,
        cache_dir=settings.data_dir / "models",
        batch_size=settings.embedding_batch_size,
        threads=settings.embedding_threads,
        cpu_mem_arena=settings.embedding_memory_arena,
        model_sha256=settings.embedding_model_sha256,
    )


def build_index(settings: Settings) -> VectorIndex:
    """A Qdrant server when SUPPORT_MCP_QDRANT_URL is set, else the embedded engine's worker."""
    if settings.qdrant_url:
        from qdrant_client import AsyncQdrantClient

        from .index_qdrant import QdrantIndex

        key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        # RLS mode: one shared collection (tenant key + mandatory tenant filter) unless one is named
        shared = settings.qdrant_shared_collection or (RLS_COLLECTION if settings.isolation == "rls" else None)
        return QdrantIndex(AsyncQdrantClient(url=settings.qdrant_url, api_key=key, timeout=10,
                                             check_compatibility=False),
                           shared_collection=shared)
    from .index_edge import EdgeIndex

    # RLS mode: one shared shard, a tenant key and a mandatory tenant filter (index_edge._where)
    return EdgeIndex(settings.data_dir / "kb", idle_seconds=settings.kb_worker_idle_seconds,
                     shared_namespace=RLS_COLLECTION if settings.isolation == "rls" else None,
                     auto_optimize_points=settings.kb_auto_optimize_points)
