"""The embedded engine's background optimize (edge_optimize), on the real engine and real processes.

A namespace gets enough points for Qdrant to build an HNSW index (its indexing threshold is about
10 MB of vectors per segment, so 2048-dimension vectors keep the point count small). The optimizer
child is paused with SIGSTOP while the test searches and writes, so "during the optimize" holds
whatever the machine's speed; SIGCONT lets it finish, SIGKILL makes it fail. Both layouts: a
shard per namespace, and one shared shard with a tenant key (RLS mode).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from support_mcp.kb.index import ChunkPoint, NamespaceNotFoundError, SparseVec
from support_mcp.kb.index_edge import EdgeIndex, EdgeWorkerError

DIM, N = 2048, 1400  # 11 MB of dense vectors: over Qdrant's indexing threshold
LAYOUTS = ["edge", "edge-shared"]


@pytest.fixture
def root():
    path = Path(tempfile.mkdtemp(prefix="kbo-"))  # short: AF_UNIX paths are limited to ~104 bytes
    yield path
    pid_file = path / "worker.pid"
    pid = int(pid_file.read_text().strip() or 0) if pid_file.exists() else 0
    if pid:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.05)
    shutil.rmtree(path, ignore_errors=True)


def _index(root: Path, layout: str, auto: int = 0) -> EdgeIndex:
    return EdgeIndex(root, idle_seconds=60, auto_optimize_points=auto, auto_optimize_quiet=0.2,
                     shared_namespace="shared" if layout == "edge-shared" else None)


def _points(n: int, seed: int, doc: str = "doc") -> tuple[list[ChunkPoint], np.ndarray]:
    dense = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return [ChunkPoint(str(uuid.uuid4()), f"{doc}-{i % 20}", dense[i], SparseVec([i % 300], [1.0]))
            for i in range(n)], dense


async def _nearest(index: EdgeIndex, ns: str, vector) -> str | None:
    hits = await index.search(ns, dense=[float(x) for x in vector], sparse=SparseVec([], []), mode="dense",
                              limit=1, prefetch=10)
    return hits[0].id if hits else None


async def _wait_state(index: EdgeIndex, ns: str, states: set[str], timeout: float = 300) -> dict:
    """Poll the status (a hang guard, not a speed limit)."""
    deadline = time.monotonic() + timeout
    while True:
        st = await index.optimize_status(ns)
        if st["state"] in states:
            return st
        assert time.monotonic() < deadline, f"optimize of {ns} stuck in {st}"
        await asyncio.sleep(0.05)


def _leftovers(root: Path) -> list[str]:
    return [p.name for p in (root / "shards").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("layout", LAYOUTS)
async def test_bulk_ingest_is_optimized_in_the_background(root, layout):
    index = _index(root, layout, auto=500)
    await index.ensure_namespace("big", DIM)
    await index.ensure_namespace("small", DIM)  # RLS mode: another tenant in the same shard
    points, dense = _points(N, seed=1)
    small, small_dense = _points(3, seed=2, doc="small")
    await index.upsert("small", small)
    await index.upsert("big", points)  # the bulk ingest; 0.2 s later the worker starts optimizing

    running = await _wait_state(index, "big", {"optimizing"})
    assert running["auto"] and running["unindexed"] >= N
    os.kill(running["pid"], signal.SIGSTOP)  # the optimize cannot end while we look
    try:
        for i in (0, 700, N - 1):  # searches are answered, from the original
            assert await _nearest(index, "big", dense[i]) == points[i].id
        assert await _nearest(index, "small", dense[0]) in {p.id for p in small}  # never another tenant's
        extra, extra_dense = _points(5, seed=3, doc="extra")
        await index.upsert("big", extra)
        moved = ChunkPoint(points[10].id, "doc-moved", extra_dense[0] * -1, SparseVec([1], [1.0]))
        await index.upsert("big", [moved])
        await index.delete_points("big", [points[20].id, points[21].id])
        await index.delete_document("big", "doc-5")  # 70 points of the bulk ingest
        await index.ensure_namespace("late", DIM)  # RLS mode: a new tenant's marker, in the same shard
        await index.upsert("late", small[:1])
        assert (await index.optimize_status("big"))["state"] == "optimizing"
    finally:
        os.kill(running["pid"], signal.SIGCONT)

    done = await _wait_state(index, "big", {"optimized", "failed"})
    assert done["state"] == "optimized", done
    assert done["unindexed"] <= 6 + 1  # only what was written during the optimize lacks the index
    expected = N + 5 - 2 - 70
    assert await index.count("big") == expected
    assert await _nearest(index, "big", extra_dense[3]) == extra[3].id  # written during: kept
    assert await _nearest(index, "big", extra_dense[0] * -1) == points[10].id  # overwritten during: kept
    assert await _nearest(index, "big", dense[10]) != points[10].id
    for gone in (20, 21, 5, 25):  # deleted during (by id, by document): stay deleted
        assert await _nearest(index, "big", dense[gone]) != points[gone].id
    assert await _nearest(index, "big", dense[700]) == points[700].id
    assert await index.count("small") == 3 and await index.count("late") == 1
    assert _leftovers(root) == []

    await index.stop_worker()  # the swapped-in shard is the one on disk
    again = _index(root, layout)
    assert await again.count("big") == expected
    assert await _nearest(again, "big", extra_dense[3]) == extra[3].id
    assert (await again.optimize_status("big"))["unindexed"] <= 7
    assert (await again.optimize("big"))["state"] in ("optimized", "unchanged")  # asked: runs again
    await again.close()
    await index.close()


@pytest.mark.parametrize("layout", LAYOUTS)
async def test_a_killed_optimizer_keeps_the_original(root, layout):
    index = _index(root, layout)  # automatic optimize off: `docs optimize` asks for it
    await index.ensure_namespace("big", DIM)
    points, dense = _points(N, seed=4)
    await index.upsert("big", points)
    asked = asyncio.create_task(index.optimize("big"))
    running = await _wait_state(index, "big", {"optimizing"})
    assert not running["auto"]
    os.kill(running["pid"], signal.SIGSTOP)
    extra, extra_dense = _points(2, seed=5, doc="extra")
    await index.upsert("big", extra)
    os.kill(running["pid"], signal.SIGKILL)

    with pytest.raises(EdgeWorkerError, match="unchanged"):
        await asyncio.wait_for(asked, 120)
    st = await index.optimize_status("big")
    assert st["state"] == "failed" and "exited" in st["error"]
    assert st["unindexed"] >= N  # still the original, un-indexed
    assert await index.count("big") == N + 2
    assert await _nearest(index, "big", dense[33]) == points[33].id
    assert await _nearest(index, "big", extra_dense[1]) == extra[1].id
    assert _leftovers(root) == []
    await index.close()


async def test_dropping_a_namespace_cancels_its_optimize(root):
    index = _index(root, "edge")
    await index.ensure_namespace("big", DIM)
    await index.upsert("big", _points(N, seed=6)[0])
    assert (await index.optimize("big", wait=False))["state"] in ("queued", "copying", "starting", "optimizing")
    running = await _wait_state(index, "big", {"optimizing"})
    os.kill(running["pid"], signal.SIGSTOP)  # SIGKILL (the cancel) still ends a stopped process
    await index.drop_namespace("big")
    with pytest.raises(NamespaceNotFoundError):
        await index.optimize_status("big")
    deadline = time.monotonic() + 60
    while _leftovers(root) or Path(f"/proc/{running['pid']}").exists():
        assert time.monotonic() < deadline, _leftovers(root)
        await asyncio.sleep(0.05)
    await index.ensure_namespace("big", DIM)
    assert await index.count("big") == 0
    await index.close()


async def test_a_worker_killed_mid_optimize_takes_its_child_along(root):
    index = _index(root, "edge")
    await index.ensure_namespace("big", DIM)
    points, dense = _points(N, seed=8)
    await index.upsert("big", points)
    await index.optimize("big", wait=False)
    running = await _wait_state(index, "big", {"optimizing"})
    worker = int((root / "worker.pid").read_text())
    os.kill(running["pid"], signal.SIGSTOP)
    os.kill(worker, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while Path(f"/proc/{running['pid']}").exists():  # killed, and reaped by init
        assert time.monotonic() < deadline, "the optimizer child outlived its worker"
        await asyncio.sleep(0.05)
    assert await index.count("big") == N  # a new worker; the original shard was never touched
    assert await _nearest(index, "big", dense[9]) == points[9].id
    assert _leftovers(root) == []
    await index.close()


async def test_an_interrupted_swap_puts_the_original_back(root):
    """A worker killed between moving the original aside and finishing the replay: the next worker
    serves the original (which had every write), never the half-replayed copy."""
    index = _index(root, "edge")
    await index.ensure_namespace("acme", DIM)
    points, dense = _points(30, seed=7)
    await index.upsert("acme", points)
    await index.ensure_namespace("other", DIM)
    await index.stop_worker()
    shards = root / "shards"
    os.rename(shards / "acme", shards / ".swap-acme")
    shutil.copytree(shards / "other", shards / "acme")  # stands for the copy, missing the journal
    assert await index.count("acme") == 30
    assert await _nearest(index, "acme", dense[3]) == points[3].id
    assert _leftovers(root) == []
    await index.close()


# -- through the settings, the knowledge base and the CLI ---------------------------------------
async def test_the_setting_turns_on_automatic_runs(db, kb, make_tenant, tmp_path):
    """SUPPORT_MCP_KB_AUTO_OPTIMIZE_POINTS reaches the worker: a few real chunks are enough with a
    threshold of 1 (Qdrant then finds nothing worth an index at 384 dimensions: ``unchanged``)."""
    from support_mcp.kb.service import KnowledgeBase

    settings = db.settings.model_copy(update={"data_dir": Path(tempfile.mkdtemp(prefix="kbs-")),
                                              "kb_auto_optimize_points": 1})
    mine = KnowledgeBase(settings, db, embedder=await kb.embedder())
    slug = await make_tenant("kbauto")
    await mine.ingest(slug, title="Refunds", text="# Refunds\n\nRefunds take 5 days. CODE-AUTO-1.",
                      source_uri="kb://auto")
    index, ns = await mine.index(), (await mine.namespace(slug))[0]
    try:
        st = await _wait_state(index, ns, {"unchanged", "optimized", "failed"})
        assert st["auto"] and st["state"] in ("unchanged", "optimized") and st["auto_optimize_points"] == 1
        hits = await mine.search(slug, "how long do refunds take", limit=3)
        assert "CODE-AUTO-1" in str(hits)
    finally:
        worker = (await index.worker_info())["pid"]
        await index.stop_worker()
        await index.close()  # not mine.close(): the embedder is the session's
        deadline = time.monotonic() + 30  # it flushes and closes its shards after answering
        while Path(f"/proc/{worker}").exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        shutil.rmtree(settings.data_dir, ignore_errors=True)


async def test_docs_optimize_and_status_commands(cli_env, kb, make_tenant):
    from typer.testing import CliRunner

    from support_mcp.cli import app

    def run(*args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(app, list(args))
        return result.exit_code, result.stdout, result.stderr

    slug = await make_tenant("kbopt")
    code, _, err = await asyncio.to_thread(run, "docs", "status", "--tenant", slug)
    if kb.settings.isolation == "schema":  # the tenant's own namespace does not exist yet
        assert code == 1 and "no knowledge-base index yet" in err and "Traceback" not in err
    else:  # RLS mode: one shard for every tenant, there already if another tenant ingested first
        assert (code, "no knowledge-base index yet" in err) in ((0, False), (1, True)) and "Traceback" not in err
    await kb.ingest(slug, title="Guide", text="# Guide\n\nPair the hub with the app.", source_uri="kb://g")
    code, out, err = await asyncio.to_thread(run, "docs", "optimize", "--tenant", slug)
    assert code == 0 and ("nothing to optimize" in out or "optimized in" in out), (out, err)
    code, out, err = await asyncio.to_thread(run, "docs", "status", "--tenant", slug, "--json")
    st = json.loads(out)
    assert code == 0 and st["state"] in ("unchanged", "optimized") and not st["auto"] and st["points"] >= 1
    code, out, _ = await asyncio.to_thread(run, "docs", "status", "--tenant", slug)
    assert code == 0 and "outside the HNSW index" in out and "optimize: " in out
