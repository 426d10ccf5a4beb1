"""The test suite cleans up after itself: a pytest session leaves nothing in the temp dir."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

CHILD = "SUPPORT_MCP_HYGIENE_CHILD"


@pytest.mark.skipif(not os.environ.get(CHILD), reason="runs only inside test_a_session_leaves_no_files_behind")
async def test_child_session_uses_the_database(db) -> None:
    async with db.admin_scope() as conn:
        assert await conn.fetchval("SELECT 1") == 1


def test_a_session_leaves_no_files_behind(tmp_path: Path) -> None:
    # a short path: the embedded server's Unix socket path must stay under ~100 bytes
    tmp = Path(tempfile.mkdtemp(prefix="smh-", dir="/tmp"))
    try:
        _check_session_in(tmp, tmp_path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _check_session_in(tmp: Path, tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp), CHILD: "1"}
    env.pop("XDG_RUNTIME_DIR", None)
    env.pop("DATABASE_URL", None)  # the embedded server, whose lock file is the one that leaked
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'basetemp'}",
         f"{__file__}::test_child_session_uses_the_database"],
        capture_output=True, text=True, env=env, timeout=300, cwd=Path(__file__).parent.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout
    left = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*"))
    assert left == [], left
