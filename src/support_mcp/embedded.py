"""The zero-config default: an embedded PostgreSQL 16 (PyPI `pgserver`) under the data dir.

Started on demand, reused by later runs and by other processes on the same data dir (the
server stops when the last process using it exits). Works as root: pgserver runs the
postgres process as a dedicated OS user.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import UpstreamUnavailable
from .logging import get_logger

log = get_logger(__name__)


def _prepare_runtime_dir(data_dir: Path) -> None:
    # pgserver keeps its inter-process lock under XDG_RUNTIME_DIR, read at import time;
    # without one it falls back to a shared temp dir with a warning.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        run = data_dir / "run"
        run.mkdir(parents=True, exist_ok=True)
        run.chmod(0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(run)


def start_embedded(data_dir: Path, database: str) -> str:
    """Start (or attach to) the embedded server and return an asyncpg-compatible URI."""
    data_dir.mkdir(parents=True, exist_ok=True)
    _prepare_runtime_dir(data_dir)
    import pgserver  # imported late: it reads XDG_RUNTIME_DIR at import

    try:
        server = pgserver.get_server(data_dir / "pg", cleanup_mode="stop")
    except Exception as exc:  # pgserver raises assorted subprocess / OS errors
        raise UpstreamUnavailable(
            f"could not start the embedded PostgreSQL under {data_dir / 'pg'}: {exc}. "
            "Check the data dir is writable, or set SUPPORT_MCP_DATABASE_URL."
        ) from exc
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
        log.info("embedded_database_created", database=database)
    return server.get_uri(database)

