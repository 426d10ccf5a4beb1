"""Bearer API keys on the real HTTP transport (server subprocess on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from test_transports import SERVE, http_server, server_env, text_of  # noqa: F401 - fixture re-export

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "t", "version": "1"}}}
JSON_SSE = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def bearer_client(port: int, key: str) -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    return Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http))


async def test_bearer_keys_over_http(server_env, make_tenant, make_key, tmp_path: Path) -> None:
    a, b = await make_tenant("ha"), await make_tenant("hb")
    writer = await make_key(tenants=[a], scopes=["read", "write"], name="http-writer")
    reader = await make_key(tenants=[a], scopes=["read"], name="http-reader")
    async with http_server(server_env, tmp_path / "http.log", "--transport", "http") as (port, _):
        url = f"http://127.0.0.1:{port}/mcp"
        async with httpx.AsyncClient(timeout=10) as http:
            for headers in ({}, {"Authorization": "Bearer smk_00000000_" + "A" * 43},
                            {"Authorization": f"Bearer {writer[:-2]}"}, {"Authorization": "Basic dXNlcjpwYXNz"}):
                r = await http.post(url, json=INIT, headers={**JSON_SSE, **headers})
                assert r.status_code == 401, (headers, r.status_code)
                assert r.headers.get("www-authenticate", "").lower().startswith("bearer")
                # API keys only: no protected resource metadata to point at, but a 401 that says what to send
                assert "API key" in r.json()["error_description"] and "resource_metadata" not in r.headers[
                    "www-authenticate"]
                assert ('error="invalid_token"' in r.headers["www-authenticate"]) == bool(headers)
            # an OAuth client (the MCP Inspector) that falls back to this origin's default registration
            # endpoint learns what to send instead of a bare 404 ("Dynamic Client Registration rejected")
            r = await http.post(f"http://127.0.0.1:{port}/register", json={"redirect_uris": ["http://x/cb"]})
            assert r.status_code == 400 and r.json()["error"] == "invalid_client_metadata"
            assert "API keys, not OAuth" in r.json()["error_description"]
            # a session belongs to the key that opened it
            r = await http.post(url, json=INIT, headers={**JSON_SSE, "Authorization": f"Bearer {writer}"})
            assert r.status_code == 200
            session = r.headers.get("mcp-session-id")
            assert session, "a stateful server hands out a session id on initialize"
            if session:
                r = await http.post(url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                                    headers={**JSON_SSE, "Authorization": f"Bearer {reader}",
                                             "mcp-session-id": session, "mcp-protocol-version": "2025-06-18"})
                assert r.status_code == 404
        async with bearer_client(port, writer) as c:
            r = await c.call_tool("create_ticket", {"tenant": a, "subject": "over http", "description": "d",
                                                    "customer_email": "h@x.test"})
            assert not r.is_error, text_of(r)
            r = await c.call_tool("list_tickets", {"tenant": b})
            assert r.is_error and "not available" in text_of(r)
        async with bearer_client(port, reader) as c:
            names = {t.name for t in (await c.list_tools()).tools}
            assert "list_tickets" in names and "create_ticket" not in names
            r = await c.call_tool("create_ticket", {"tenant": a, "subject": "s", "description": "d",
                                                    "customer_email": "h@x.test"})
            assert r.is_error and "needs the 'write' scope" in text_of(r)
            r = await c.call_tool("list_tickets", {"tenant": a})
            assert not r.is_error and r.structured_content["tickets"][0]["subject"] == "over http"


def test_refuses_non_loopback_without_keys(server_env, tmp_path: Path) -> None:
    # operator flags never serve without authentication off loopback
    proc = subprocess.run([*SERVE, "--transport", "http", "--host", "0.0.0.0", "--all-tenants"],
                          env=server_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "loopback" in proc.stderr
    # bearer mode on a database with no API keys refuses before binding
    fresh = {k: v for k, v in server_env.items() if k != "SUPPORT_MCP_DATABASE_URL"}
    fresh["SUPPORT_MCP_DATA_DIR"] = str(tmp_path / "nokeys")
    proc = subprocess.run([*SERVE, "--transport", "http", "--host", "0.0.0.0", "--port", "1"],
                          env=fresh, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "without API keys" in proc.stderr


def test_stdio_needs_explicit_access(server_env) -> None:
    proc = subprocess.run([*SERVE], env=server_env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 2 and "SUPPORT_MCP_API_KEY" in proc.stderr
    bad = {**server_env, "SUPPORT_MCP_API_KEY": "smk_00000000_" + "B" * 43}
    proc = subprocess.run([*SERVE], env=bad, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1 and "API key" in proc.stderr


async def test_stdio_with_api_key(server_env, make_tenant, make_key) -> None:
    from mcp.client.stdio import StdioServerParameters

    a, b = await make_tenant("sa"), await make_tenant("sb")
    key = await make_key(tenants=[a], scopes=["read"], name="stdio-key")
    params = StdioServerParameters(command=sys.executable, args=["-m", "support_mcp", "serve"],
                                   env={**server_env, "SUPPORT_MCP_API_KEY": key})
    async with Client(params) as c:
        r = await c.call_tool("list_tickets", {"tenant": a})
        assert not r.is_error
        r = await c.call_tool("list_tickets", {"tenant": b})
        assert r.is_error and "not available" in text_of(r)
        r = await c.call_tool("create_ticket", {"tenant": a, "subject": "s", "description": "d",
                                                "customer_email": "x@x.test"})
        assert r.is_error and "'write' scope" in text_of(r)
    await asyncio.sleep(0)
