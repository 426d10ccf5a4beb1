"""The vector index abstraction of the knowledge base: one namespace per tenant.

Postgres holds documents and chunks (the source of truth); a ``VectorIndex`` holds one point per
chunk: a dense vector named ``dense`` (cosine) and a BM25 sparse vector named ``sparse`` (IDF
modifier), plus the chunk's ``document_id``. Search is dense, sparse, or hybrid (both prefetched,
fused with RRF or DBSF). Backends: ``index_edge.EdgeIndex`` (embedded default, a worker process
owning qdrant-edge shards) and ``index_qdrant.QdrantIndex`` (a Qdrant server, or qdrant-client's
local mode for tests).

Contract shared by every backend:
- namespace names match ``^[A-Za-z0-9_-]{1,100}$``, anything else is a ``ValueError``;
- ``ensure_namespace``/``drop_namespace`` are idempotent; re-ensuring with another dimension is
  a ``ValueError``;
- a missing namespace searches as ``[]`` and counts 0; deleting from it is a no-op; upserting
  into it raises ``NamespaceNotFoundError``;
- point ids are UUID strings (returned in canonical lowercase form); upsert overwrites by id, and
  within one call the last point with a given id wins.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from support_mcp.kb.embedding import SparseVec

__all__ = [
    "DENSE",
    "SPARSE",
    "ChunkPoint",
    "Fusion",
    "Hit",
    "Mode",
    "NamespaceNotFoundError",
    "SparseVec",
    "VectorIndex",
    "check_namespace",
    "check_search",
    "prepare_points",
]

DENSE = "dense"
SPARSE = "sparse"
NAMESPACE_RE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

Mode = Literal["hybrid", "dense", "sparse"]
Fusion = Literal["rrf", "dbsf"]


@dataclass(frozen=True)
class ChunkPoint:
    id: str  # a UUID string (the chunk's id in Postgres)
    document_id: str
    dense: Sequence[float]
    sparse: SparseVec


@dataclass(frozen=True)
class Hit:
    id: str
    document_id: str
    score: float


class NamespaceNotFoundError(LookupError):
    """Writing into a namespace that ``ensure_namespace`` has not created (or that was dropped)."""

    def __init__(self, ns: str) -> None:
        super().__init__(f"knowledge-base namespace {ns!r} does not exist (call ensure_namespace first)")
        self.namespace = ns


class VectorIndex(Protocol):
    async def ensure_namespace(self, ns: str, dense_dim: int) -> None: ...
    async def drop_namespace(self, ns: str) -> None: ...
    async def upsert(self, ns: str, points: Sequence[ChunkPoint]) -> None: ...
    async def delete_points(self, ns: str, ids: Sequence[str]) -> None: ...
    async def delete_document(self, ns: str, document_id: str) -> None: ...

    async def search(
        self,
        ns: str,
        *,
        dense: Sequence[float],
        sparse: SparseVec,
        mode: Mode,
        limit: int,
        prefetch: int,
        fusion: Fusion = "rrf",
        rrf_k: int = 60,
    ) -> list[Hit]: ...

    async def count(self, ns: str) -> int: ...
    async def health(self) -> str: ...  # "ok" or a short reason
    async def close(self) -> None: ...


def check_namespace(ns: str) -> str:
    if not isinstance(ns, str) or not NAMESPACE_RE.fullmatch(ns):
        raise ValueError(f"invalid knowledge-base namespace {ns!r}: use 1-100 of [A-Za-z0-9_-]")
    return ns


def check_dim(dense_dim: int) -> int:
    if not isinstance(dense_dim, int) or isinstance(dense_dim, bool) or not 0 < dense_dim <= 65536:
        raise ValueError(f"invalid dense dimension {dense_dim!r}")
    return dense_dim


def canonical_id(point_id: str) -> str:
    if isinstance(point_id, str) and _CANONICAL_UUID.fullmatch(point_id):
        return point_id  # the common case, without uuid.UUID's pure-Python parsing
    try:
        return str(uuid.UUID(str(point_id)))
    except ValueError:
        raise ValueError(f"point id {point_id!r} is not a UUID") from None


def prepare_points(points: Sequence[ChunkPoint]) -> list[ChunkPoint]:
    """Validate ids and keep only the last point per id (in first-seen order)."""
    last: dict[str, ChunkPoint] = {}
    for p in points:
        pid = canonical_id(p.id)
        if len(p.sparse.indices) != len(p.sparse.values):
            raise ValueError(f"point {pid}: sparse indices and values differ in length")
        last[pid] = p if p.id == pid else ChunkPoint(pid, p.document_id, p.dense, p.sparse)
    return list(last.values())


def check_search(mode: str, fusion: str, limit: int, prefetch: int, rrf_k: int) -> None:
    if mode not in ("hybrid", "dense", "sparse"):
        raise ValueError(f"invalid search mode {mode!r}")
    if fusion not in ("rrf", "dbsf"):
        raise ValueError(f"invalid fusion {fusion!r}")
    if limit < 1 or prefetch < 1 or rrf_k < 1:
        raise ValueError("limit, prefetch and rrf_k must be >= 1")
