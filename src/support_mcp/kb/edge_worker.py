"""The process that owns the qdrant-edge shards of one knowledge-base data dir.

Run as ``python -m support_mcp.kb.edge_worker ROOT [--idle-seconds N] [--auto-optimize-points N]``;
``index_edge.EdgeIndex`` starts it on demand. qdrant-edge calls are synchronous and hold the GIL, and a shard can be
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
used closed beyond ``--max-open-shards``; writes are flushed at the end of each client call.
HNSW indexes are built off the lock by ``edge_optimize`` (a child process on a copy of the
shard): after a bulk write leaves ``--auto-optimize-points`` points un-indexed, or when asked
(``optimize``; ``optimize_status`` reports progress). The worker exits after ``--idle-seconds``
without any connected client or optimize job, and on SIGTERM/SIGINT/``shutdown``, flushing and
closing every shard first.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import logging
import os
import secrets
import signal
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection, Listener
from pathlib import Path
from typing import Any

from support_mcp.kb.edge_optimize import WRITES, BackgroundOptimizer
from support_mcp.kb.edge_store import ShardStore, WorkerError

PROTOCOL = 3  # 2: the optional tenant argument (one shared shard, RLS mode); 3: background optimize
SOCKET_NAME, KEY_NAME, PID_NAME, LOCK_NAME, LOG_NAME = (
    "worker.sock", "worker.key", "worker.pid", "worker.lock", "worker.log"
)
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


# -- the process --------------------------------------------------------------------------------
class Worker:
    def __init__(self, root: Path, idle_seconds: float, max_open_shards: int = 256,
                 auto_optimize_points: int = 0, auto_optimize_quiet: float = 5.0) -> None:
        self.root, self.idle_seconds, self.max_open_shards = root, idle_seconds, max_open_shards
        self.auto_optimize = (auto_optimize_points, auto_optimize_quiet)
        self.stop = threading.Event()
        self.active = 0
        self.last_seen = time.monotonic()
        self.state_lock = threading.Lock()
        self.store: ShardStore | None = None
        self.optimizer: BackgroundOptimizer | None = None

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
            if op in ("optimize", "optimize_status"):
                return ("ok", self.optimize(op, **kwargs))
            method = {"ensure": "ensure", "drop": "drop", "upsert": "upsert", "delete": "delete",
                      "search": "search", "count": "count"}.get(op)
            if method is None:
                raise WorkerError("value", f"unknown operation {op!r}")
            with self.store.lock:
                if self.store.closed:
                    raise WorkerError("retry", "worker is shutting down")
                result = getattr(self.store, method)(**kwargs)
                if method in WRITES:
                    self.optimizer.wrote(method, kwargs)  # under the lock: the journal keeps the order
                return ("ok", result)
        except WorkerError as exc:
            return ("err", exc.kind, str(exc))
        except (TypeError, ValueError) as exc:
            return ("err", "value", f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 - reported to the client
            log.exception("request failed")
            return ("err", "internal", f"{type(exc).__name__}: {exc}")

    def optimize(self, op: str, ns: str, wait: bool = True) -> dict[str, Any]:
        """Start (or join) a background optimize of ``ns``, or report on it; never holds the lock long."""
        with self.store.lock:
            if self.store.closed:
                raise WorkerError("retry", "worker is shutting down")
            state = self.store.index_state(ns)
        if state is None:
            raise WorkerError("not_found", ns)
        if op == "optimize_status":
            return {**self.optimizer.status(ns), **state}
        job = self.optimizer.request(ns)
        if wait:
            job.done.wait()
            if job.state in ("failed", "cancelled"):
                raise WorkerError("internal", f"optimize {job.state}, the namespace is unchanged: {job.error}")
        return job.view()

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
        self.optimizer = BackgroundOptimizer(self.store, *self.auto_optimize)
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
                if self.active == 0 and time.monotonic() - self.last_seen >= self.idle_seconds \
                        and not self.optimizer.busy():
                    log.info("idle for %ss with no clients; exiting", self.idle_seconds)
                    break
        self.stop.set()
        listener.close()  # unlinks the socket before the pid lock is released
        self.optimizer.stop()  # kills a running child; the original shard was never touched
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
    parser.add_argument("--auto-optimize-points", type=int, default=0, help="0: only when asked")
    parser.add_argument("--auto-optimize-quiet", type=float, default=5.0,
                        help="seconds without writes to a namespace before its automatic optimize")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(process)d %(levelname)s %(message)s")
    return Worker(prepare_root(args.root), args.idle_seconds, max(1, args.max_open_shards),
                  max(0, args.auto_optimize_points), max(0.0, args.auto_optimize_quiet)).run()


if __name__ == "__main__":
    sys.exit(main())
