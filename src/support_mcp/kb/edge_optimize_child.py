"""The child process of a background optimize (``edge_optimize``): open a copy of a shard, build its
HNSW index, exit. Run as ``python -m support_mcp.kb.edge_optimize_child COPY WORKER_PID``; it
prints ``{"loaded": true}`` once it has the shard open, then ``{"changed": bool}``. Its own process, because ``EdgeShard.optimize()`` holds the GIL
for as long as it runs; niced, so the worker's searches come first on a busy machine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path


def copy_tree(src: Path, dst: Path) -> None:
    """Copy a flushed shard: GNU cp keeps the WAL's preallocated files sparse and uses reflinks."""
    if sys.platform == "linux" and shutil.which("cp"):
        subprocess.run(["cp", "-a", "--reflink=auto", "--", str(src), str(dst)], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    else:
        shutil.copytree(src, dst)


def _die_with(parent: int) -> None:
    """A worker killed mid-run takes its child along (the next worker deletes the copy anyway)."""
    if sys.platform == "linux":
        import ctypes
        import signal

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        sys.exit(1)


def _report(message: dict[str, bool]) -> None:
    """One JSON line to the worker: this process's stdout is the worker's pipe, never a client's."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    """The child: optimize the shard at argv[0] (for worker pid argv[1]), print ``{"changed": bool}``."""
    path, parent = (argv if argv is not None else sys.argv[1:])[:2]
    _die_with(int(parent))
    try:
        os.nice(10)
    except OSError:
        pass
    import qdrant_edge as qe

    shard = qe.EdgeShard.load(path)
    _report({"loaded": True})
    try:
        changed = bool(shard.optimize())
        shard.flush()
    finally:
        shard.close()
    _report({"changed": changed})
    return 0


if __name__ == "__main__":
    sys.exit(main())
