"""Session bounds on the real HTTP transports: per-key session cap and idle timeout."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx

from test_http_auth import INIT, JSON_SSE, bearer_client
from test_transports import http_server, server_env, text_of  # noqa: F401 - fixture re-export

DEADLINE = 60.0  # polling bound for the idle expiry (not a timing assertion)


async def _open(http: httpx.AsyncClient, url: str, key: str) -> httpx.Response:
    return await http.post(url, json=INIT, headers={**JSON_SSE, "Authorization": f"Bearer {key}"})


async def test_sessions_capped_per_key_and_closed_when_idle(server_env, make_tenant, make_key,
                                                           tmp_path: Path) -> None:
    """Regression (issue 10, finding 7): sessions were uncapped (473 new sessions/s accepted) and
    lived 30 minutes idle."""
    a = await make_tenant("ss")
    one = await make_key(tenants=[a], scopes=["read"], name="sess-one")
    two = await make_key(tenants=[a], scopes=["read"], name="sess-two")
    env = {**server_env, "SUPPORT_MCP_MAX_SESSIONS_PER_KEY": "2", "SUPPORT_MCP_SESSION_IDLE_SECONDS": "2"}
    async with http_server(env, tmp_path / "s.log", "--transport", "http") as (port, _):
        url = f"http://127.0.0.1:{port}/mcp"
        async with httpx.AsyncClient(timeout=10) as http:
            first, second = await _open(http, url, one), await _open(http, url, one)
            assert first.status_code == second.status_code == 200
            s1, s2 = first.headers["mcp-session-id"], second.headers["mcp-session-id"]
            refused = await _open(http, url, one)
            assert refused.status_code == 429
            body = refused.json()
            assert body["jsonrpc"] == "2.0" and "too many open sessions for this API key" in body["error"]["message"]
            assert "limit is 2" in body["error"]["message"]
            assert (await _open(http, url, two)).status_code == 200  # another key is not affected
            # ending a session frees its place at once
            r = await http.delete(url, headers={**JSON_SSE, "Authorization": f"Bearer {one}", "mcp-session-id": s1,
                                                "mcp-protocol-version": "2025-06-18"})
            assert r.status_code in (200, 204)
            assert (await _open(http, url, one)).status_code == 200
            # idle sessions close by themselves: the key can open sessions again, and s2 is gone
            loop = asyncio.get_running_loop()
            deadline = loop.time() + DEADLINE
            while (r := await _open(http, url, one)).status_code == 429 and loop.time() < deadline:
                await asyncio.sleep(0.5)
            assert r.status_code == 200
            r = await http.post(url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                                headers={**JSON_SSE, "Authorization": f"Bearer {one}", "mcp-session-id": s2,
                                         "mcp-protocol-version": "2025-06-18"})
            assert r.status_code == 404
        # a full MCP client still works within the cap
        async with bearer_client(port, two) as c:
            r = await c.call_tool("list_tickets", {"tenant": a})
            assert not r.is_error, text_of(r)


async def test_sse_streams_capped_per_key(server_env, make_tenant, make_key, tmp_path: Path) -> None:
    a = await make_tenant("se")
    key = await make_key(tenants=[a], scopes=["read"], name="sse-cap")
    env = {**server_env, "SUPPORT_MCP_MAX_SESSIONS_PER_KEY": "1"}
    async with http_server(env, tmp_path / "sse.log", "--transport", "sse") as (port, _):
        url = f"http://127.0.0.1:{port}/sse"
        headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}
        async with httpx.AsyncClient(timeout=10) as http, contextlib.AsyncExitStack() as stack:
            held = await stack.enter_async_context(http.stream("GET", url, headers=headers))
            assert held.status_code == 200
            r = await http.get(url, headers=headers)
            assert r.status_code == 429 and "too many open SSE streams" in r.json()["error"]["message"]
        # the first stream closed: room again once the server has seen the disconnect (it notices
        # asynchronously, so poll with a bounded number of tries instead of asserting at once)
        async with httpx.AsyncClient(timeout=10) as http:
            for _ in range(int(DEADLINE / 0.05)):
                async with http.stream("GET", url, headers=headers) as again:
                    status = again.status_code
                if status == 200:
                    break
                await asyncio.sleep(0.05)
            assert status == 200
