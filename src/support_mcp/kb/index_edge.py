"""``VectorIndex`` on embedded qdrant-edge shards, served by a worker process (``edge_worker``).

The event loop never runs engine code: each request runs in a thread (``asyncio.to_thread``) that
converts, pickles and sends it over one of a few pooled AF_UNIX connections to the worker that
owns ``root``. The first request starts the worker if none is running (under an flock on
``root/worker.lock``, so concurrent clients start one worker); a worker that died (crash,
``kill -9``) is restarted transparently once per request, and the WAL keeps its data.

``shared_namespace`` (RLS mode): every namespace lives in that one shard as a tenant key
(``is_tenant`` payload index); ``_where`` is the only place that turns a namespace into the
shard and tenant a request names, so no request can go out unfiltered. Point ids are derived per
tenant (``uuid5(ns, id)``; the chunk id travels in the ``chunk_id`` payload), so one tenant's ids
never overwrite another's points.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
import sys
import threading
import time
import uuid
from array import array
from collections.abc import Sequence
from itertools import chain
from multiprocessing.connection import Client, Connection
from pathlib import Path
from typing import Any

import numpy as np

from support_mcp.kb import edge_worker as ew
from support_mcp.kb.index import (
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

_CONNECT_ERRORS = (OSError, EOFError)  # no socket, refused, reset: (re)start the worker
_ID_SPACE = uuid.UUID("5b0c9a3e-0d7a-4f43-9a43-7f1d3c1e2a61")  # as index_qdrant: derived ids must not change


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


class EdgeWorkerError(RuntimeError):
    """The knowledge-base worker failed a request, could not be started, or went away."""


class _Retry(Exception):
    pass


def _encode(batch: Sequence[ChunkPoint], dim: int) -> dict[str, Any]:
    """A batch as a few flat buffers: cheap to pickle, few allocations (and GC work) per point."""
    dense = np.asarray([p.dense for p in batch], dtype=np.float32) if batch else np.zeros((0, dim))
    if dense.shape != (len(batch), dim):
        raise ValueError("all points of one upsert must have dense vectors of the same dimension")
    try:
        indices = array("I", chain.from_iterable(p.sparse.indices for p in batch))
    except OverflowError:
        raise ValueError("sparse indices must be in 0..2**32-1") from None
    return {
        "ids": [p.id for p in batch],
        "doc_ids": [str(p.document_id) for p in batch],
        "dim": dim,
        "dense": dense.astype(np.float32, copy=False).tobytes(),
        "sparse_lens": array("I", [len(p.sparse.indices) for p in batch]).tobytes(),
        "sparse_indices": indices.tobytes(),
        "sparse_values": array("f", chain.from_iterable(p.sparse.values for p in batch)).tobytes(),
    }


class EdgeIndex:
    def __init__(
        self,
        root: Path,
        idle_seconds: float = 300,
        *,
        pool_size: int = 4,
        max_open_shards: int = 256,
        start_timeout: float = 15.0,
        request_timeout: float = 120.0,
        shared_namespace: str | None = None,
        auto_optimize_points: int = 0,
        auto_optimize_quiet: float = 5.0,
    ) -> None:
        self.root = Path(root).absolute()
        self._shared = check_namespace(shared_namespace) if shared_namespace is not None else None
        self.idle_seconds = idle_seconds
        self.max_open_shards = max_open_shards
        self.auto_optimize = (auto_optimize_points, auto_optimize_quiet)  # the worker's, if this client starts it
        self.start_timeout = start_timeout
        self.request_timeout = request_timeout
        self._pool: list[Connection] = []
        self._pool_lock = threading.Lock()
        self._sem = asyncio.Semaphore(pool_size)
        self._closed = False

    # -- connections (all of this runs in worker threads, never on the event loop) -----------
    def _open_conn(self) -> Connection:
        conn = Client(str(ew.socket_path(self.root)), family="AF_UNIX", authkey=ew.read_key(self.root))
        try:
            conn.send(("ping", {}))
            if not conn.poll(5):
                raise ConnectionRefusedError("knowledge-base worker does not answer")
            reply = conn.recv()
            if reply[0] != "ok":
                raise ConnectionRefusedError(f"knowledge-base worker: {reply[-1]}")
            info = reply[1]
        except BaseException:
            conn.close()
            raise
        if info.get("protocol") != ew.PROTOCOL:  # an older worker from before an upgrade
            conn.send(("shutdown", {}))
            conn.close()
            raise ConnectionRefusedError(f"worker speaks protocol {info.get('protocol')}; asked it to stop")
        return conn

    def _start_and_connect(self) -> Connection:
        ew.prepare_root(self.root)
        with open(self.root / ew.LOCK_NAME, "a", opener=_private) as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)  # one starter at a time, across processes
            try:
                return self._open_conn()  # someone else started it meanwhile
            except _CONNECT_ERRORS:
                pass
            ew.create_key(self.root)
            log_path = self.root / ew.LOG_NAME
            if log_path.exists() and log_path.stat().st_size > 1 << 20:
                log_path.unlink()
            with open(log_path, "ab", opener=_private) as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "support_mcp.kb.edge_worker", str(self.root),
                     "--idle-seconds", str(self.idle_seconds), "--max-open-shards", str(self.max_open_shards),
                     "--auto-optimize-points", str(self.auto_optimize[0]),
                     "--auto-optimize-quiet", str(self.auto_optimize[1])],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True, close_fds=True,
                )
            threading.Thread(target=proc.wait, daemon=True).start()  # reap it when it exits
            deadline = time.monotonic() + self.start_timeout
            while True:
                try:
                    return self._open_conn()
                except _CONNECT_ERRORS as exc:
                    if proc.returncode not in (None, 0) or time.monotonic() > deadline:
                        tail = log_path.read_text(errors="replace")[-600:] if log_path.exists() else ""
                        state = "timed out" if proc.returncode is None else f"exited {proc.returncode}"
                        raise EdgeWorkerError(
                            f"knowledge-base worker for {self.root} did not start ({state}; {exc}); "
                            f"{log_path}:\n{tail}"
                        ) from exc
                time.sleep(0.05)

    def _checkout(self) -> Connection:
        with self._pool_lock:
            if self._pool:
                return self._pool.pop()
        try:
            return self._open_conn()
        except _CONNECT_ERRORS:
            return self._start_and_connect()

    def _checkin(self, conn: Connection) -> None:
        with self._pool_lock:
            if not self._closed:
                self._pool.append(conn)
                return
        conn.close()

    def _drop_pool(self) -> None:
        with self._pool_lock:
            conns, self._pool = self._pool, []
        for conn in conns:
            conn.close()

    def _call(self, op: str, kwargs: dict[str, Any], timeout: float | None) -> Any:
        for attempt in (1, 2):
            conn = self._checkout()
            try:
                conn.send((op, kwargs))
                if timeout is not None and not conn.poll(timeout):
                    conn.close()
                    raise EdgeWorkerError(f"knowledge-base worker: {op} timed out after {timeout}s")
                reply = conn.recv()
                if reply[0] == "err" and reply[1] == "retry":
                    raise _Retry(reply[2])
            except (*_CONNECT_ERRORS, _Retry) as exc:  # the worker went away: restart it, once
                conn.close()
                self._drop_pool()
                if attempt == 2:
                    raise EdgeWorkerError(f"knowledge-base worker lost during {op}: {exc!r}") from exc
                continue
            self._checkin(conn)
            if reply[0] == "ok":
                return reply[1]
            kind, message = reply[1], reply[2]
            if kind == "value":
                raise ValueError(message)
            if kind == "not_found":
                raise NamespaceNotFoundError(message)
            raise EdgeWorkerError(f"knowledge-base worker failed {op}: {message}")

    async def _request(self, op: str, timeout: float | None = -1.0, **kwargs: Any) -> Any:
        if self._closed:
            raise EdgeWorkerError("EdgeIndex is closed")
        wait = self.request_timeout if timeout == -1.0 else timeout
        async with self._sem:
            return await asyncio.to_thread(self._call, op, kwargs, wait)

    # -- scoping: the only place that maps a namespace to the shard and tenant ---------------------
    def _where(self, ns: str) -> dict[str, Any]:
        check_namespace(ns)
        return {"ns": ns} if self._shared is None else {"ns": self._shared, "tenant": ns}

    def _stored_id(self, ns: str, point_id: str) -> str:
        pid = canonical_id(point_id)
        return pid if self._shared is None else str(uuid.uuid5(_ID_SPACE, f"{ns}/{pid}"))

    # -- VectorIndex ---------------------------------------------------------------------------
    async def ensure_namespace(self, ns: str, dense_dim: int) -> None:
        marker = {} if self._shared is None else {"marker_id": str(uuid.uuid5(_ID_SPACE, ns))}
        await self._request("ensure", **self._where(ns), dim=check_dim(dense_dim), **marker)

    async def drop_namespace(self, ns: str) -> None:
        await self._request("drop", **self._where(ns))

    def _upsert_sync(self, ns: str, points: Sequence[ChunkPoint]) -> None:
        pts = prepare_points(points)
        dim = len(pts[0].dense) if pts else 0
        # Small batches (~32k floats): each conversion holds the GIL ~1 ms, and the worker
        # interleaves other clients' requests between batches.
        step = max(1, min(1024, 32768 // max(dim, 1)))
        where = self._where(ns)
        for start in range(0, max(len(pts), 1), step):
            batch = pts[start:start + step]
            enc = _encode(batch, dim)
            if self._shared is not None:
                enc["chunk_ids"], enc["ids"] = enc["ids"], [self._stored_id(ns, i) for i in enc["ids"]]
            self._call("upsert", {**where, **enc, "flush": start + step >= len(pts)}, self.request_timeout)

    async def upsert(self, ns: str, points: Sequence[ChunkPoint]) -> None:
        check_namespace(ns)
        if self._closed:
            raise EdgeWorkerError("EdgeIndex is closed")
        async with self._sem:
            await asyncio.to_thread(self._upsert_sync, ns, list(points))

    async def delete_points(self, ns: str, ids: Sequence[str]) -> None:
        where = self._where(ns)
        if ids:
            await self._request("delete", **where, ids=[self._stored_id(ns, i) for i in ids])

    async def delete_document(self, ns: str, document_id: str) -> None:
        await self._request("delete", **self._where(ns), document_id=str(document_id))

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
        where = self._where(ns)
        check_search(mode, fusion, limit, prefetch, rrf_k)
        rows = await self._request(
            "search", **where, dense=[float(x) for x in dense],
            sparse=([int(i) for i in sparse.indices], [float(v) for v in sparse.values]),
            mode=mode, limit=limit, prefetch=prefetch, fusion=fusion, rrf_k=rrf_k,
        )
        return [Hit(id=i, document_id=d, score=s) for i, d, s in rows]

    async def count(self, ns: str) -> int:
        return await self._request("count", **self._where(ns))

    async def health(self) -> str:
        try:
            await self._request("ping", timeout=5.0)
        except Exception as exc:  # noqa: BLE001 - health reports, never raises
            return f"knowledge-base worker unavailable: {exc}"[:200]
        return "ok"

    async def close(self) -> None:
        self._closed = True
        self._drop_pool()

    # -- extras (not in the protocol) -------------------------------------------------------------
    async def optimize(self, ns: str, *, wait: bool = True) -> dict[str, Any]:
        """Build the HNSW index of a namespace's shard in the background (``edge_optimize``; searches
        and writes go on meanwhile), or join the one running; ``state`` says how it ended
        (``optimized``, ``unchanged``) or, without ``wait``, how far it is."""
        return await self._request("optimize", timeout=None if wait else -1.0, ns=self._where(ns)["ns"], wait=wait)

    async def optimize_status(self, ns: str) -> dict[str, Any]:
        """The namespace's shard: ``points``, ``unindexed`` (about), its last or running optimize
        (``state``: idle, queued, copying, starting, optimizing, swapping, then optimized, unchanged,
        failed or cancelled; ``auto``, ``pid`` of the child, ``seconds``, ``error``) and the worker's
        ``auto_optimize_points``."""
        return await self._request("optimize_status", ns=self._where(ns)["ns"])

    async def worker_info(self) -> dict[str, Any]:
        """``{"pid", "protocol", "open_shards"}`` of the worker (starting it if needed)."""
        return await self._request("ping")

    async def stop_worker(self) -> None:
        """Ask the worker to flush, close its shards and exit (the next request starts a new one)."""
        await self._request("shutdown")
        self._drop_pool()
