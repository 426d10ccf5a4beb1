"""The engine side of the edge worker: every namespace's qdrant-edge shard under one root.

Used only inside the worker process (``edge_worker``); see its docstring for the layout.

With ``tenant`` (RLS mode: one shared shard for every tenant), points carry a ``tenant`` payload
indexed with ``is_tenant``, every read, count and delete is filtered by it (``_where``, the only
place that builds the tenant filter), sparse IDF statistics come from the tenant's points only,
and a tenant exists once ``ensure`` wrote its marker point (no vectors: never a hit, not counted)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

DENSE, SPARSE = "dense", "sparse"  # the vector names of index.py
TENANT, MARKER = "tenant", "marker"
# The worker's own path-safety check (index.check_namespace is the API-level one).
_SAFE_NS = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
log = logging.getLogger("support_mcp.kb.edge_worker")


class WorkerError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class ShardStore:
    """Every namespace's shard under ``root/shards``; callers hold ``self.lock``."""

    def __init__(self, root: Path, max_open: int = 256) -> None:
        import qdrant_edge as qe  # only the worker imports the engine

        self.qe = qe
        self.dir = root / "shards"
        self.dir.mkdir(mode=0o700, exist_ok=True)
        self.lock = threading.Lock()
        self.shards: OrderedDict[str, tuple[Any, int]] = OrderedDict()  # LRU order
        self.max_open = max_open
        self.closed = False
        for parked in self.dir.glob(".swap-*"):  # an optimize swap was cut short: the original has every write
            target = self.dir / parked.name.removeprefix(".swap-")
            if target.exists():
                os.rename(target, self.dir / f".trash-{secrets.token_hex(6)}")
            os.rename(parked, target)
            log.warning("restored %s: the worker stopped while swapping in an optimized copy", target.name)
        for leftover in self.dir.glob(".*"):  # interrupted create/drop/optimize
            shutil.rmtree(leftover, ignore_errors=True)

    def path(self, ns: str) -> Path:
        if not isinstance(ns, str) or not _SAFE_NS.fullmatch(ns):
            raise WorkerError("value", f"invalid knowledge-base namespace {ns!r}")
        # Case-insensitive file systems must not merge "Acme" and "acme": '.' is not a ns char.
        name = ns if ns == ns.lower() else f"{ns.lower()}.{hashlib.sha256(ns.encode()).hexdigest()[:10]}"
        return self.dir / name

    def _config(self, dim: int) -> Any:
        qe = self.qe
        return qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine, memory=qe.Memory.Cold)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            max_search_threads=1,
        )

    def open(self, ns: str, *, required: bool = False) -> tuple[Any, int] | None:
        if self.closed:
            raise WorkerError("retry", "worker is shutting down")
        if ns in self.shards:
            self.shards.move_to_end(ns)
            return self.shards[ns]
        path = self.path(ns)
        if not (path / "edge_config.json").exists():
            if required:
                raise WorkerError("not_found", ns)
            return None
        dim = json.loads((path / "edge_config.json").read_text())["vectors"][DENSE]["size"]
        while len(self.shards) >= self.max_open:  # each open shard keeps mmaps and a search thread
            _, (shard, _) = self.shards.popitem(last=False)
            shard.flush()
            shard.close()
        self.shards[ns] = (self.qe.EdgeShard.load(str(path)), dim)
        return self.shards[ns]

    def _where(self, tenant: str, must: list[Any] | None = None) -> Any:
        """The tenant's points (markers excluded)."""
        qe = self.qe
        if not isinstance(tenant, str) or not _SAFE_NS.fullmatch(tenant):
            raise WorkerError("value", f"invalid knowledge-base namespace {tenant!r}")
        return qe.Filter(must=[qe.FieldCondition(key=TENANT, match=qe.MatchValue(tenant)), *(must or [])],
                         must_not=[qe.FieldCondition(key=MARKER, match=qe.MatchValue("yes"))])

    def _has_tenant(self, shard: Any, tenant: str) -> bool:
        qe = self.qe
        flt = qe.Filter(must=[qe.FieldCondition(key=TENANT, match=qe.MatchValue(tenant)),
                              qe.FieldCondition(key=MARKER, match=qe.MatchValue("yes"))])
        return shard.count(qe.CountRequest(exact=True, filter=flt)) > 0

    def ensure(self, ns: str, dim: int, tenant: str | None = None, marker_id: str | None = None) -> None:
        self._ensure_shard(ns, dim, tenant is not None)
        if tenant is not None:
            self._where(tenant)  # validates
            shard = self.open(ns, required=True)[0]
            shard.update(self.qe.UpdateOperation.upsert_points(
                [self.qe.Point(marker_id, {}, {TENANT: tenant, MARKER: "yes"})]))
            shard.flush()

    def _ensure_shard(self, ns: str, dim: int, shared: bool) -> None:
        if not isinstance(dim, int) or not 0 < dim <= 65536:
            raise WorkerError("value", f"invalid dense dimension {dim!r}")
        opened = self.open(ns)
        if opened is None:
            path = self.path(ns)
            tmp = self.dir / f".new-{secrets.token_hex(6)}"
            # No payload index on document_id: on load it maps ~5 MB per shard whatever its size;
            # delete_document scans instead (~70 ms at 50k points), delete_points is by id.
            shard = self.qe.EdgeShard.create(str(tmp), self._config(dim))
            if shared:
                shard.update(self.qe.UpdateOperation.create_field_index(
                    TENANT, self.qe.KeywordIndexParams(is_tenant=True)))
            shard.flush()
            shard.close()
            os.rename(tmp, path)
            opened = self.open(ns, required=True)
        if opened[1] != dim:
            raise WorkerError("value", f"namespace {ns!r} has dense dimension {opened[1]}, not {dim}")

    def drop(self, ns: str, tenant: str | None = None) -> None:
        if tenant is not None:  # the tenant's points and its marker
            self._where(tenant)
            opened = self.open(ns)
            if opened is not None:
                qe = self.qe
                flt = qe.Filter(must=[qe.FieldCondition(key=TENANT, match=qe.MatchValue(tenant))])
                opened[0].update(qe.UpdateOperation.delete_points_by_filter(flt))
                opened[0].flush()
            return
        path = self.path(ns)
        if ns in self.shards:
            self.shards.pop(ns)[0].close()
        if path.exists():
            trash = self.dir / f".trash-{secrets.token_hex(6)}"
            os.rename(path, trash)
            shutil.rmtree(trash, ignore_errors=True)

    def upsert(self, ns: str, ids: list[str], doc_ids: list[str], dim: int, dense: bytes,
               sparse_lens: bytes, sparse_indices: bytes, sparse_values: bytes, flush: bool,
               tenant: str | None = None, chunk_ids: list[str] | None = None) -> None:
        qe = self.qe
        opened = self.open(ns)
        if opened is None or (tenant is not None and not self._has_tenant(opened[0], tenant)):
            raise WorkerError("not_found", tenant or ns)
        shard, have = opened
        if ids and dim != have:
            raise WorkerError("value", f"namespace {ns!r} has dense dimension {have}, got vectors of {dim}")
        flat, lens = memoryview(dense).cast("f"), memoryview(sparse_lens).cast("I")
        idx, val = memoryview(sparse_indices).cast("I"), memoryview(sparse_values).cast("f")
        if len(flat) != len(ids) * dim or len(lens) != len(ids) or len(doc_ids) != len(ids) \
                or len(idx) != len(val) or sum(lens) != len(idx):
            raise WorkerError("value", "malformed upsert batch")
        points, off = [], 0
        for i, pid in enumerate(ids):
            end = off + lens[i]
            sparse = qe.SparseVector(idx[off:end].tolist(), val[off:end].tolist())
            vectors = {DENSE: flat[i * dim:(i + 1) * dim].tolist(), SPARSE: sparse}
            payload = {"document_id": doc_ids[i]}
            if tenant is not None:
                payload |= {TENANT: tenant, "chunk_id": chunk_ids[i] if chunk_ids else pid}
            points.append(qe.Point(pid, vectors, payload))
            off = end
        if points:
            shard.update(qe.UpdateOperation.upsert_points(points))
        if flush:
            shard.flush()

    def delete(self, ns: str, ids: list[str] | None = None, document_id: str | None = None,
               tenant: str | None = None) -> None:
        qe = self.qe
        opened = self.open(ns)
        if opened is None:
            return
        if tenant is not None:
            cond = qe.HasIdCondition(set(ids)) if ids is not None else \
                qe.FieldCondition(key="document_id", match=qe.MatchValue(document_id))
            op = qe.UpdateOperation.delete_points_by_filter(self._where(tenant, [cond]))
        elif ids is not None:
            op = qe.UpdateOperation.delete_points(ids)
        else:
            cond = qe.FieldCondition(key="document_id", match=qe.MatchValue(document_id))
            op = qe.UpdateOperation.delete_points_by_filter(qe.Filter(must=[cond]))
        opened[0].update(op)
        opened[0].flush()

    def search(self, ns: str, dense: list[float], sparse: tuple[list[int], list[float]], mode: str,
               limit: int, prefetch: int, fusion: str, rrf_k: int,
               tenant: str | None = None) -> list[tuple[str, str, float]]:
        qe = self.qe
        opened = self.open(ns)
        if opened is None:
            return []
        scoped: dict[str, Any] = {}  # the tenant filter; sparse IDF over the tenant's points only
        idf: dict[str, Any] = {}
        if tenant is not None:
            flt = self._where(tenant)
            scoped, idf = {"filter": flt}, {"params": qe.SearchParams(idf=qe.IdfParams(corpus=flt))}
        if len(dense) != opened[1]:
            raise WorkerError("value", f"namespace {ns!r} has dense dimension {opened[1]}, query has {len(dense)}")
        dq = qe.Query.Nearest(dense, using=DENSE)
        sq = qe.Query.Nearest(qe.SparseVector(*sparse), using=SPARSE)
        if mode == "dense":
            req = qe.QueryRequest(limit=limit, query=dq, with_payload=True, **scoped)
        elif mode == "sparse":
            req = qe.QueryRequest(limit=limit, query=sq, with_payload=True, **scoped, **idf)
        else:
            fused = qe.Fusion.Rrf(k=rrf_k) if fusion == "rrf" else qe.Fusion.Dbsf()
            pre = [qe.Prefetch(limit=prefetch, query=dq), qe.Prefetch(limit=prefetch, query=sq, **idf)]
            req = qe.QueryRequest(limit=limit, prefetches=pre, query=fused, with_payload=True, **scoped)
        return [(str((p.payload or {}).get("chunk_id", p.id)), str((p.payload or {}).get("document_id", "")), p.score)
                for p in opened[0].query(req)]

    def count(self, ns: str, tenant: str | None = None) -> int:
        opened = self.open(ns)
        if opened is None:
            return 0
        flt = self._where(tenant) if tenant is not None else None
        return opened[0].count(self.qe.CountRequest(exact=True, filter=flt))

    def index_state(self, ns: str) -> dict[str, int] | None:
        """``points`` with a dense vector and about how many are ``unindexed`` (no HNSW index yet).

        ``indexed_vectors_count`` counts HNSW-indexed dense vectors plus non-empty sparse ones
        (always indexed), so ``2 * points - indexed`` over-counts only chunks whose sparse vector
        is empty (no BM25 term); points without a dense vector (RLS tenant markers) are left out."""
        opened = self.open(ns)
        if opened is None:
            return None
        qe, shard = self.qe, opened[0]
        points = shard.count(qe.CountRequest(exact=True, filter=qe.Filter(must=[qe.HasVectorCondition(DENSE)])))
        info = shard.info()
        return {"points": points, "unindexed": max(0, 2 * points - info.indexed_vectors_count),
                "segments": info.segments_count}

    def close_shard(self, ns: str) -> None:
        if ns in self.shards:
            shard = self.shards.pop(ns)[0]
            shard.flush()
            shard.close()

    def close_all(self) -> None:
        self.closed = True
        for ns, (shard, _) in list(self.shards.items()):
            try:
                shard.flush()
                shard.close()
            except Exception:  # noqa: BLE001 - keep closing the others
                log.exception("closing shard %s", ns)
        self.shards.clear()


