"""The process that owns the qdrant-edge shards of one knowledge-base data dir.

Run as ``python -m support_mcp.kb.edge_worker ROOT [--idle-seconds N]``; ``index_edge.EdgeIndex``
starts it on demand. qdrant-edge calls are synchronous and hold the GIL, and a shard can be
opened by one process at a time, so the engine lives here and every client (the MCP server, a
CLI ``docs ingest`` running at the same time, ...) talks to this one process.

Layout of ROOT (mode 0700): ``shards/<ns>/`` one shard per namespace (names with capitals get a
hash suffix so case-insensitive file systems keep "Acme" and "acme" apart); ``worker.sock`` the
``multiprocessing.connection`` AF_UNIX listener (in the temp dir if ROOT is too long for a socket
path); ``worker.key`` its authkey (0600, written by the client that starts the worker);
``worker.pid`` this process's pid, flock-ed for its lifetime (at most one worker per ROOT; emptied
on clean exit); ``worker.lock`` taken by clients while they start a worker; ``worker.log``.

Requests are ``(op, kwargs)`` tuples; replies are ``("ok", value)`` or ``("err", kind, message)``
with kind ``value`` (bad input), ``not_found`` (missing namespace), ``retry`` (shutting down) or
``internal``. One thread per connection; one lock serialises engine calls. Shards are opened
lazily and kept open (dense vectors ``Memory.Cold``, one search thread each), the least recently
used closed beyond ``--max-open-shards``; writes are flushed at the end of each client call;
``optimize()`` runs only when asked. The worker exits after ``--idle-seconds`` without any
connected client, and on SIGTERM/SIGINT/``shutdown``, flushing and closing every shard first.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from multiprocessing.connection import Connection, Listener
from pathlib import Path
from typing import Any

PROTOCOL = 1
DENSE, SPARSE = "dense", "sparse"  # the vector names of index.py
SOCKET_NAME, KEY_NAME, PID_NAME, LOCK_NAME, LOG_NAME = (
    "worker.sock", "worker.key", "worker.pid", "worker.lock", "worker.log"
)
# The worker's own path-safety check (index.check_namespace is the API-level one).
_SAFE_NS = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
log = logging.getLogger("support_mcp.kb.edge_worker")


# -- paths shared with the client -------------------------------------------------------------
def prepare_root(root: Path) -> Path:
    root = Path(root).absolute()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    return root


def socket_path(root: Path) -> Path:
    path = Path(root).absolute() / SOCKET_NAME
    if len(os.fsencode(path)) < 100:  # sun_path is 104-108 bytes
        return path
    digest = hashlib.sha256(os.fsencode(Path(root).resolve())).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"support-mcp-kb-{os.getuid()}-{digest}.sock"


def read_key(root: Path) -> bytes:
    key = (Path(root) / KEY_NAME).read_bytes()
    if len(key) < 32:
        raise PermissionError(f"{Path(root) / KEY_NAME} is truncated")
    return key


def create_key(root: Path) -> bytes:
    """Create the authkey if missing (callers hold ``worker.lock``); return it."""
    path = Path(root) / KEY_NAME
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        return read_key(root)
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_bytes(32))
    return read_key(root)


class WorkerError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# -- the engine side --------------------------------------------------------------------------
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
        for leftover in self.dir.glob(".*"):  # interrupted create/drop
            shutil.rmtree(leftover, ignore_errors=True)

    def _path(self, ns: str) -> Path:
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
        path = self._path(ns)
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

    def ensure(self, ns: str, dim: int) -> None:
        if not isinstance(dim, int) or not 0 < dim <= 65536:
            raise WorkerError("value", f"invalid dense dimension {dim!r}")
        opened = self.open(ns)
        if opened is None:
            path = self._path(ns)
            tmp = self.dir / f".new-{secrets.token_hex(6)}"
            # No payload index on document_id: on load it maps ~5 MB per shard whatever its size;
            # delete_document scans instead (~70 ms at 50k points), delete_points is by id.
            shard = self.qe.EdgeShard.create(str(tmp), self._config(dim))
            shard.flush()
            shard.close()
            os.rename(tmp, path)
            opened = self.open(ns, required=True)
        if opened[1] != dim:
            raise WorkerError("value", f"namespace {ns!r} has dense dimension {opened[1]}, not {dim}")

    def drop(self, ns: str) -> None:
        path = self._path(ns)
        if ns in self.shards:
            self.shards.pop(ns)[0].close()
        if path.exists():
            trash = self.dir / f".trash-{secrets.token_hex(6)}"
            os.rename(path, trash)
            shutil.rmtree(trash, ignore_errors=True)

    def upsert(self, ns: str, ids: list[str], doc_ids: list[str], dim: int, dense: bytes,
               sparse_lens: bytes, sparse_indices: bytes, sparse_values: bytes, flush: bool) -> None:
        qe = self.qe
        shard, have = self.open(ns, required=True)
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
            points.append(qe.Point(pid, vectors, {"document_id": doc_ids[i]}))
            off = end
        if points:
            shard.update(qe.UpdateOperation.upsert_points(points))
        if flush:
            shard.flush()

    def delete(self, ns: str, ids: list[str] | None = None, document_id: str | None = None) -> None:
        qe = self.qe
        opened = self.open(ns)
        if opened is None:
            return
        if ids is not None:
            op = qe.UpdateOperation.delete_points(ids)
        else:
            cond = qe.FieldCondition(key="document_id", match=qe.MatchValue(document_id))
            op = qe.UpdateOperation.delete_points_by_filter(qe.Filter(must=[cond]))
        opened[0].update(op)
        opened[0].flush()

    def search(self, ns: str, dense: list[float], sparse: tuple[list[int], list[float]], mode: str,
               limit: int, prefetch: int, fusion: str, rrf_k: int) -> list[tuple[str, str, float]]:
        qe = self.qe
        opened = self.open(ns)
        if opened is None:
            return []
        if len(dense) != opened[1]:
            raise WorkerError("value", f"namespace {ns!r} has dense dimension {opened[1]}, query has {len(dense)}")
        dq = qe.Query.Nearest(dense, using=DENSE)
        sq = qe.Query.Nearest(qe.SparseVector(*sparse), using=SPARSE)
        if mode == "dense":
            req = qe.QueryRequest(limit=limit, query=dq, with_payload=True)
        elif mode == "sparse":
            req = qe.QueryRequest(limit=limit, query=sq, with_payload=True)
        else:
            fused = qe.Fusion.Rrf(k=rrf_k) if fusion == "rrf" else qe.Fusion.Dbsf()
            pre = [qe.Prefetch(limit=prefetch, query=dq), qe.Prefetch(limit=prefetch, query=sq)]
            req = qe.QueryRequest(limit=limit, prefetches=pre, query=fused, with_payload=True)
        return [(str(p.id), str((p.payload or {}).get("document_id", "")), p.score) for p in opened[0].query(req)]

    def count(self, ns: str) -> int:
        opened = self.open(ns)
        return 0 if opened is None else opened[0].count(self.qe.CountRequest(exact=True))

    def optimize(self, ns: str) -> bool:
        return bool(self.open(ns, required=True)[0].optimize())

    def close_all(self) -> None:
        self.closed = True
        for ns, (shard, _) in list(self.shards.items()):
            try:
                shard.flush()
                shard.close()
            except Exception:  # noqa: BLE001 - keep closing the others
                log.exception("closing shard %s", ns)
        self.shards.clear()


# -- the process --------------------------------------------------------------------------------
class Worker:
    def __init__(self, root: Path, idle_seconds: float, max_open_shards: int = 256) -> None:
        self.root, self.idle_seconds, self.max_open_shards = root, idle_seconds, max_open_shards
        self.stop = threading.Event()
        self.active = 0
        self.last_seen = time.monotonic()
        self.state_lock = threading.Lock()
        self.store: ShardStore | None = None

    def handle(self, req: Any) -> tuple:
        try:
            op, kwargs = req
            if self.stop.is_set():
                raise WorkerError("retry", "worker is shutting down")
            if op == "ping":
                return ("ok", {"pid": os.getpid(), "protocol": PROTOCOL, "open_shards": len(self.store.shards)})
            if op == "shutdown":
                self.stop.set()
                return ("ok", None)
            method = {"ensure": "ensure", "drop": "drop", "upsert": "upsert", "delete": "delete",
                      "search": "search", "count": "count", "optimize": "optimize"}.get(op)
            if method is None:
                raise WorkerError("value", f"unknown operation {op!r}")
            with self.store.lock:
                if self.store.closed:
                    raise WorkerError("retry", "worker is shutting down")
                return ("ok", getattr(self.store, method)(**kwargs))
        except WorkerError as exc:
            return ("err", exc.kind, str(exc))
        except (TypeError, ValueError) as exc:
            return ("err", "value", f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 - reported to the client
            log.exception("request failed")
            return ("err", "internal", f"{type(exc).__name__}: {exc}")

    def serve(self, conn: Connection) -> None:
        with self.state_lock:
            self.active += 1
        try:
            while not self.stop.is_set():
                try:
                    req = conn.recv()
                except (EOFError, OSError):
                    break
                except Exception as exc:  # noqa: BLE001 - an unreadable message; framing is intact
                    req = None
                    reply: tuple = ("err", "value", f"unreadable request: {exc}")
                else:
                    reply = self.handle(req)
                try:
                    conn.send(reply)
                except OSError:
                    break
        finally:
            conn.close()
            with self.state_lock:
                self.active -= 1
                self.last_seen = time.monotonic()

    def accept_loop(self, listener: Listener) -> None:
        while not self.stop.is_set():
            try:
                conn = listener.accept()
            except Exception as exc:  # noqa: BLE001 - bad handshake, or the listener was closed
                if self.stop.is_set():
                    return
                log.warning("rejected a connection: %s: %s", type(exc).__name__, exc)
                continue
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def run(self) -> int:
        pid_fd = os.open(self.root / PID_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + 10  # a previous worker may still be closing its shards
        while True:
            try:
                fcntl.flock(pid_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    log.info("another worker owns %s; exiting", self.root)
                    return 0
                time.sleep(0.05)
        os.ftruncate(pid_fd, 0)
        os.pwrite(pid_fd, f"{os.getpid()}\n".encode(), 0)
        key = read_key(self.root)
        self.store = ShardStore(self.root, self.max_open_shards)
        sock = socket_path(self.root)
        sock.unlink(missing_ok=True)  # stale after a crash; we own the root now
        old_umask = os.umask(0o177)
        try:
            listener = Listener(str(sock), family="AF_UNIX", backlog=64, authkey=key)
        finally:
            os.umask(old_umask)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop.set())
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        threading.Thread(target=self.accept_loop, args=(listener,), daemon=True).start()
        log.info("worker %d serving %s (idle exit after %ss)", os.getpid(), self.root, self.idle_seconds)
        while not self.stop.wait(min(1.0, max(0.05, self.idle_seconds / 4))):
            with self.state_lock:
                if self.active == 0 and time.monotonic() - self.last_seen >= self.idle_seconds:
                    log.info("idle for %ss with no clients; exiting", self.idle_seconds)
                    break
        self.stop.set()
        listener.close()  # unlinks the socket before the pid lock is released
        with self.store.lock:
            self.store.close_all()
        os.ftruncate(pid_fd, 0)
        log.info("worker %d stopped", os.getpid())
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m support_mcp.kb.edge_worker")
    parser.add_argument("root", type=Path)
    parser.add_argument("--idle-seconds", type=float, default=300.0)
    parser.add_argument("--max-open-shards", type=int, default=256)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(process)d %(levelname)s %(message)s")
    return Worker(prepare_root(args.root), args.idle_seconds, max(1, args.max_open_shards)).run()


if __name__ == "__main__":
    sys.exit(main())
