"""Build a namespace's HNSW index in the background, off the edge worker's lock and GIL.

``EdgeShard.optimize()`` holds the GIL for as long as it runs (86 s at 50k points), so running
it in the worker, even in a thread, freezes every search. Instead a job (one at a time, in the
``BackgroundOptimizer`` thread):

1. under the store lock: flush the shard and copy its directory to ``shards/.opt-*`` (``cp``
   with reflinks where the file system has them; the copy doubles the namespace's disk use
   until the swap), and start journalling the namespace's writes;
2. without the lock: a child process (``edge_optimize_child``, niced) opens the copy and
   optimizes it, while the worker keeps serving searches and writes from the
   original;
3. under the lock: close the original, rename it ``.swap-<name>``, move the copy in, replay the
   journal (the writes the original took since the copy), flush, and delete the original.

Anything failing (child killed or crashed, replay error) keeps the original, which has every
write, and logs a warning. A worker killed mid-swap finds ``.swap-<name>`` at start and puts the
original back (``ShardStore.__init__``), so a half-replayed copy is never served.

Automatic runs: a namespace whose writes stopped ``quiet`` seconds ago (and whose last upsert
call ended: the end of a bulk ingest) is optimized once it has ``threshold`` more points outside
an HNSW index than the last run left behind (Qdrant only indexes segments of ~10 MB of vectors;
below that a run changes nothing, and the baseline keeps it from being retried on every write).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support_mcp.kb.edge_optimize_child import copy_tree
from support_mcp.kb.edge_store import ShardStore, WorkerError

log = logging.getLogger("support_mcp.kb.edge_worker")
WRITES = frozenset({"ensure", "drop", "upsert", "delete"})
OPEN_CALL_SECONDS = 60.0  # a client that died mid-upsert does not block automatic runs for ever


@dataclass
class Job:
    ns: str
    auto: bool
    state: str = "queued"  # copying, starting, optimizing, swapping; then optimized|unchanged|failed|cancelled
    pid: int | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    error: str | None = None
    journal: list[tuple[str, dict]] | None = None  # None until the copy exists
    proc: subprocess.Popen | None = None
    cancelled: bool = False
    done: threading.Event = field(default_factory=threading.Event)

    def view(self) -> dict[str, Any]:
        end = self.finished or time.time()
        return {"state": self.state, "auto": self.auto, "pid": self.pid, "error": self.error,
                "started": self.started, "seconds": round(end - self.started, 3)}


class BackgroundOptimizer:
    def __init__(self, store: ShardStore, threshold: int, quiet: float = 5.0) -> None:
        self.store, self.threshold, self.quiet = store, threshold, quiet
        self.mu = threading.Lock()  # order: store.lock, then mu (never the other way round)
        self.wake = threading.Event()
        self.stopping = False
        self.queue: OrderedDict[str, Job] = OrderedDict()
        self.active: Job | None = None
        self.last: dict[str, Job] = {}
        self.dirty: dict[str, tuple[float, bool]] = {}  # ns -> (time of its last write, call still open)
        self.baseline: dict[str, int] = {}  # ns -> points outside the index after its last run
        self.thread = threading.Thread(target=self._loop, name="optimizer", daemon=True)
        self.thread.start()

    # -- called by the worker ---------------------------------------------------------------------
    def wrote(self, op: str, kwargs: dict) -> None:
        """After a write succeeded; the caller still holds the store lock (journal order)."""
        ns = kwargs["ns"]
        whole_drop = op == "drop" and kwargs.get("tenant") is None
        with self.mu:
            job = self.active if self.active is not None and self.active.ns == ns else None
            if job is not None and whole_drop:
                self._cancel(job)
            elif job is not None and job.journal is not None:
                job.journal.append((op, kwargs))
            if whole_drop:
                self.dirty.pop(ns, None)
                self.baseline.pop(ns, None)
                queued = self.queue.pop(ns, None)
                if queued is not None:
                    self._finish(queued, "cancelled", "namespace dropped")
            elif self.threshold > 0:  # an upsert call's batches but its last leave the call open
                self.dirty[ns] = (time.monotonic(), op == "upsert" and not kwargs.get("flush", True))
                self.wake.set()

    def request(self, ns: str) -> Job:
        """The running or queued job of ``ns``, or a new one queued (``docs optimize``)."""
        with self.mu:
            if self.stopping:
                raise WorkerError("retry", "worker is shutting down")
            return self._enqueue(ns, auto=False)

    def status(self, ns: str) -> dict[str, Any]:
        with self.mu:
            job = self.active if self.active is not None and self.active.ns == ns else None
            job = job if job is not None and not job.done.is_set() else None
            job = job or self.queue.get(ns) or self.last.get(ns)
            return {**(job.view() if job else {"state": "idle"}), "auto_optimize_points": self.threshold}

    def busy(self) -> bool:
        with self.mu:
            return self.active is not None or bool(self.queue)

    def stop(self) -> None:
        """Cancel everything (the child is killed, its copy removed) and wait for the thread."""
        with self.mu:
            self.stopping = True
            if self.active is not None:
                self._cancel(self.active)
            for job in self.queue.values():
                self._finish(job, "cancelled", "worker stopped")
            self.queue.clear()
        self.wake.set()
        self.thread.join(timeout=60)

    # -- internals (mu held where noted) -------------------------------------------------------------
    def _enqueue(self, ns: str, auto: bool) -> Job:  # mu held
        if self.active is not None and self.active.ns == ns and not self.active.done.is_set():
            return self.active
        if ns not in self.queue:
            self.queue[ns] = Job(ns, auto)
            self.wake.set()
        return self.queue[ns]

    def _cancel(self, job: Job) -> None:  # mu held
        job.cancelled = True
        if job.proc is not None and job.proc.poll() is None:
            job.proc.kill()

    def _finish(self, job: Job, state: str, error: str | None = None) -> None:
        job.state, job.error, job.finished, job.proc = state, error, time.time(), None
        job.journal = None
        self.last[job.ns] = job
        job.done.set()

    def _loop(self) -> None:
        while True:
            self.wake.wait(max(0.05, min(1.0, self.quiet / 2)))
            self.wake.clear()
            if self.stopping:
                return
            self._check_quiet()
            with self.mu:
                if not self.queue or self.stopping:
                    continue
                _, job = self.queue.popitem(last=False)
                self.active = job
            try:
                self._run(job)
            except Exception as exc:  # noqa: BLE001 - the original keeps serving; say why
                if job.cancelled:
                    log.info("optimize %s cancelled (namespace dropped or worker stopping)", job.ns)
                else:
                    log.warning("optimize %s failed, kept the original: %s: %s", job.ns, type(exc).__name__, exc)
                with self.mu:
                    self._finish(job, "cancelled" if job.cancelled else "failed", f"{type(exc).__name__}: {exc}")
            finally:
                with self.mu:
                    self.active = None
                self.wake.set()  # the next queued job, if any

    def _check_quiet(self) -> None:
        now = time.monotonic()
        with self.mu:
            due = [ns for ns, (t, open_call) in self.dirty.items()
                   if now - t >= (OPEN_CALL_SECONDS if open_call else self.quiet)
                   and ns not in self.queue and (self.active is None or self.active.ns != ns)]
            for ns in due:
                self.dirty.pop(ns)
        for ns in due:
            with self.store.lock:
                state = None if self.store.closed else self.store.index_state(ns)
            with self.mu:
                floor = self.baseline.get(ns, 0) + self.threshold
            if state is not None and state["unindexed"] >= floor:
                log.info("optimize %s: %d of %d points outside the HNSW index; optimizing in the background",
                         ns, state["unindexed"], state["points"])
                with self.mu:
                    if not self.stopping:
                        self._enqueue(ns, auto=True)

    def _run(self, job: Job) -> None:
        store, ns = self.store, job.ns
        token = secrets.token_hex(6)
        copy, trash = store.dir / f".opt-{token}", store.dir / f".trash-{token}"
        try:
            with store.lock:  # 1. a consistent copy; writes from here on are journalled
                if job.cancelled or store.closed:
                    raise WorkerError("retry", "cancelled")
                job.state = "copying"
                store.open(ns, required=True)[0].flush()
                copy_tree(store.path(ns), copy)
                with self.mu:
                    job.journal = []
            job.state = "starting"
            changed = self._optimize_copy(job, copy)  # 2. no lock held
            with store.lock:  # 3.
                if job.cancelled or store.closed:
                    raise WorkerError("retry", "cancelled")
                replayed, held = len(job.journal or []), 0.0
                if changed:
                    job.state = "swapping"
                    held = self._swap(ns, job.journal or [], copy, trash)
                with self.mu:
                    job.journal = None  # the shard on disk has every write
                left = store.index_state(ns)
            with self.mu:
                self.baseline[ns] = left["unindexed"] if left else 0
        finally:
            shutil.rmtree(copy, ignore_errors=True)
            shutil.rmtree(trash, ignore_errors=True)
        with self.mu:
            self._finish(job, "optimized" if changed else "unchanged")
        if changed:
            log.info("optimize %s: optimized in %.1f s (the swap held the engine %.0f ms, replayed %d writes)",
                     ns, time.time() - job.started, held * 1000, replayed)
        else:
            log.info("optimize %s: nothing to optimize", ns)

    def _optimize_copy(self, job: Job, copy: Path) -> bool:
        with self.mu:
            if job.cancelled:
                raise WorkerError("retry", "cancelled")
            job.proc = subprocess.Popen([sys.executable, "-m", "support_mcp.kb.edge_optimize_child", str(copy),
                                         str(os.getpid())],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, close_fds=True)
            job.pid = job.proc.pid
        log.info("optimize %s: child %d optimizing a copy", job.ns, job.pid)
        if job.proc.stdout.readline().strip():  # it opened the copy (and will die with this process)
            job.state = "optimizing"
        out, _ = job.proc.communicate()  # the child's stderr goes to the worker log
        code = job.proc.returncode
        if job.cancelled:
            raise WorkerError("retry", "cancelled")
        if code != 0:
            raise RuntimeError(f"optimizer child {job.pid} exited with {code}")
        return bool(json.loads(out.decode().strip().splitlines()[-1])["changed"])

    def _swap(self, ns: str, journal: list[tuple[str, dict]], copy: Path, trash: Path) -> float:
        """Put the optimized copy in place of the shard and replay ``journal`` on it (store lock held);
        on any error the original is back in place. Returns the seconds it took."""
        store, t0 = self.store, time.perf_counter()
        path = store.path(ns)
        parked = store.dir / f".swap-{path.name}"
        store.close_shard(ns)
        os.rename(path, parked)
        try:
            os.rename(copy, path)
            for op, kwargs in journal:
                getattr(store, op)(**kwargs)
            store.open(ns, required=True)[0].flush()
        except BaseException:
            try:
                store.close_shard(ns)
            except Exception:  # noqa: BLE001 - putting the original back matters more
                log.exception("closing the half-swapped shard %s", ns)
            if path.exists():
                os.rename(path, trash)
            os.rename(parked, path)
            raise
        os.rename(parked, trash)  # the commit point: from here the optimized copy is the shard
        return time.perf_counter() - t0
