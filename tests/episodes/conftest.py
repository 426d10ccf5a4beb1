"""An in-process HTTP server (uvicorn, real sockets) on the session's database and knowledge base."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def http_serve(db, kb):
    """`async with http_serve(read_only=False, **settings) as base:` -> "http://127.0.0.1:PORT"; Streamable
    HTTP at base + "/mcp", the episodes admin API at base + "/admin/episodes"."""
    import uvicorn

    from support_mcp.server import build_server

    @contextlib.asynccontextmanager
    async def serve(read_only: bool = False, **overrides: Any) -> AsyncIterator[str]:
        s = db.settings.model_copy(update=overrides) if overrides else db.settings
        server = build_server(s, db=db, bearer=True, read_only=read_only, kb=kb)
        app = server.streamable_http_app(host="127.0.0.1", json_response=False)
        port = _free_port()
        uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                           lifespan="on", timeout_graceful_shutdown=2))
        uv.capture_signals = contextlib.nullcontext  # type: ignore[method-assign] - the test runner owns signals
        task = asyncio.create_task(uv.serve())
        try:
            for _ in range(400):
                if uv.started or task.done():
                    break
                await asyncio.sleep(0.025)
            assert uv.started, "uvicorn did not start"
            yield f"http://127.0.0.1:{port}"
        finally:
            uv.should_exit = True
            await asyncio.wait_for(task, 15)

    return serve
