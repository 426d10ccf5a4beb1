"""``VectorIndex`` on qdrant-client: a Qdrant server, or local mode (``location=":memory:"``).

Local mode is a pure-Python scan that runs on the event loop: fine for tests and as a benchmark
baseline, not for production.

Two layouts:
- default: one collection per namespace, named exactly the namespace;
- ``shared_collection``: one collection for all namespaces, following Qdrant's multitenancy
  advice: a ``tenant`` keyword payload index with ``is_tenant=True``, every point carries
  ``tenant=<ns>``, and every query/count/delete is scoped by ``_scope``, the only place that
  builds filters, so an unscoped request cannot be written. Point ids are derived per tenant
  (``uuid5(ns, id)``; the chunk id is kept in the ``chunk_id`` payload) so one tenant's ids can
  never overwrite another's points; sparse IDF statistics are computed over the tenant's own
  points only (``IdfCorpusParams``). A namespace exists once ``ensure_namespace`` wrote its
  marker point (no vectors, so never a search hit; excluded from counts).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from qdrant_client import AsyncQdrantClient, models

from support_mcp.kb.index import (
    DENSE,
    SPARSE,
    ChunkPoint,
    Fusion,
    Hit,
    Mode,
    NamespaceNotFoundError,
    SparseVec,
    canonical_id,
    check_dim,
    check_namespace,
    check_search,
    prepare_points,
)

TENANT = "tenant"
MARKER = "namespace_marker"
_ID_SPACE = uuid.UUID("5b0c9a3e-0d7a-4f43-9a43-7f1d3c1e2a61")  # fixed: derived ids must not change


def _match(key: str, value: str | bool) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


class QdrantIndex:
    def __init__(self, client: AsyncQdrantClient, *, shared_collection: str | None = None) -> None:
        self._client = client
        self._shared = check_namespace(shared_collection) if shared_collection is not None else None

    # -- scoping: the only place that builds filters ---------------------------------------
    def _scope(
        self,
        ns: str,
        must: Sequence[models.Condition] = (),
        must_not: Sequence[models.Condition] = (),
    ) -> tuple[str, models.Filter | None]:
        """(collection, filter) for a request on namespace ``ns``; shared mode always filters."""
        check_namespace(ns)
        must = list(must)
        if self._shared is not None:
            return self._shared, models.Filter(must=[_match(TENANT, ns), *must], must_not=list(must_not) or None)
        if must or must_not:
            return ns, models.Filter(must=must or None, must_not=list(must_not) or None)
        return ns, None

    def _stored_id(self, ns: str, point_id: str) -> str:
        pid = canonical_id(point_id)
        return pid if self._shared is None else str(uuid.uuid5(_ID_SPACE, f"{ns}/{pid}"))

    async def _exists(self, ns: str) -> bool:
        collection, _ = self._scope(ns)
        if not await self._client.collection_exists(collection):
            return False
        if self._shared is None:
            return True
        _, flt = self._scope(ns, must=[_match(MARKER, True)])
        return (await self._client.count(collection, count_filter=flt, exact=True)).count > 0

    # -- namespaces --------------------------------------------------------------------------
    async def ensure_namespace(self, ns: str, dense_dim: int) -> None:
        collection, _ = self._scope(ns)
        check_dim(dense_dim)
        if not await self._client.collection_exists(collection):
            try:
                await self._client.create_collection(
                    collection,
                    vectors_config={DENSE: models.VectorParams(size=dense_dim, distance=models.Distance.COSINE)},
                    sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
                )
            except Exception:
                if not await self._client.collection_exists(collection):  # else: lost a creation race
                    raise
        info = await self._client.get_collection(collection)
        vectors = info.config.params.vectors
        have = vectors.get(DENSE) if isinstance(vectors, dict) else None
        if have is None or have.size != dense_dim:
            raise ValueError(
                f"collection {collection!r} has dense size {getattr(have, 'size', None)}, not {dense_dim}"
            )
        wanted: dict[str, models.PayloadSchemaType | models.KeywordIndexParams] = {
            "document_id": models.PayloadSchemaType.KEYWORD
        }
        if self._shared is not None:
            wanted[TENANT] = models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)
        for field, schema in wanted.items():  # also repairs a collection whose creator crashed
            if field not in (info.payload_schema or {}):
                await self._client.create_payload_index(collection, field, field_schema=schema)
        if self._shared is not None:
            marker = models.PointStruct(id=str(uuid.uuid5(_ID_SPACE, ns)), vector={}, payload={TENANT: ns, MARKER: True})
            await self._client.upsert(collection, [marker], wait=True)

    async def drop_namespace(self, ns: str) -> None:
        collection, flt = self._scope(ns)
        if self._shared is None:
            await self._client.delete_collection(collection)
        elif await self._client.collection_exists(collection):
            await self._client.delete(collection, points_selector=models.FilterSelector(filter=flt), wait=True)

    # -- writes ------------------------------------------------------------------------------
    async def upsert(self, ns: str, points: Sequence[ChunkPoint]) -> None:
        collection, _ = self._scope(ns)
        pts = prepare_points(points)
        if not await self._exists(ns):
            raise NamespaceNotFoundError(ns)
        if not pts:
            return
        structs = []
        for p in pts:
            payload = {"document_id": p.document_id}
            if self._shared is not None:
                payload |= {TENANT: ns, "chunk_id": p.id}
            vector = {
                DENSE: [float(x) for x in p.dense],
                SPARSE: models.SparseVector(indices=list(p.sparse.indices), values=list(p.sparse.values)),
            }
            structs.append(models.PointStruct(id=self._stored_id(ns, p.id), vector=vector, payload=payload))
        try:
            await self._client.upsert(collection, structs, wait=True)
        except Exception as exc:
            if not await self._exists(ns):  # dropped meanwhile
                raise NamespaceNotFoundError(ns) from exc
            raise

    async def delete_points(self, ns: str, ids: Sequence[str]) -> None:
        if not ids:
            return
        stored = [self._stored_id(ns, i) for i in ids]
        collection, flt = self._scope(ns, must=[models.HasIdCondition(has_id=stored)])
        if await self._client.collection_exists(collection):
            await self._client.delete(collection, points_selector=models.FilterSelector(filter=flt), wait=True)

    async def delete_document(self, ns: str, document_id: str) -> None:
        collection, flt = self._scope(ns, must=[_match("document_id", document_id)])
        if await self._client.collection_exists(collection):
            await self._client.delete(collection, points_selector=models.FilterSelector(filter=flt), wait=True)

    # -- reads -------------------------------------------------------------------------------
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
    ) -> list[Hit]:
        collection, flt = self._scope(ns)
        check_search(mode, fusion, limit, prefetch, rrf_k)
        if not await self._client.collection_exists(collection):
            return []
        dense_q = [float(x) for x in dense]
        sparse_q = models.SparseVector(indices=list(sparse.indices), values=list(sparse.values))
        sparse_params = models.SearchParams(idf=models.IdfCorpusParams(corpus=flt)) if self._shared else None
        common = {"query_filter": flt, "limit": limit, "with_payload": ["document_id", "chunk_id"]}
        if mode == "dense":
            res = await self._client.query_points(collection, query=dense_q, using=DENSE, **common)
        elif mode == "sparse":
            res = await self._client.query_points(
                collection, query=sparse_q, using=SPARSE, search_params=sparse_params, **common
            )
        else:
            fused = (
                models.RrfQuery(rrf=models.Rrf(k=rrf_k))
                if fusion == "rrf"
                else models.FusionQuery(fusion=models.Fusion.DBSF)
            )
            prefetches = [
                models.Prefetch(query=dense_q, using=DENSE, limit=prefetch, filter=flt),
                models.Prefetch(query=sparse_q, using=SPARSE, limit=prefetch, filter=flt, params=sparse_params),
            ]
            res = await self._client.query_points(collection, prefetch=prefetches, query=fused, **common)
        return [
            Hit(
                id=str((p.payload or {}).get("chunk_id", p.id)),
                document_id=str((p.payload or {}).get("document_id", "")),
                score=float(p.score),
            )
            for p in res.points
        ]

    async def count(self, ns: str) -> int:
        collection, flt = self._scope(ns, must_not=[_match(MARKER, True)] if self._shared else ())
        if not await self._client.collection_exists(collection):
            return 0
        return (await self._client.count(collection, count_filter=flt, exact=True)).count

    async def health(self) -> str:
        try:
            await self._client.get_collections()
        except Exception as exc:  # noqa: BLE001 - health reports, never raises
            return f"qdrant unreachable: {type(exc).__name__}: {exc}"[:200]
        return "ok"

    async def close(self) -> None:
        await self._client.close()
