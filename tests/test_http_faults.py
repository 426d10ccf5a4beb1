"""HTTP apps answer a database outage with 503 + Retry-After where the SDK verifies the key
before any MCP message exists (issue 10, finding 6): Streamable HTTP and SSE, in process."""

from __future__ import annotations

import httpx
import pytest

from support_mcp.db import Database
from support_mcp.server import build_server

KEY = "smk_0123abcd_" + "A" * 43  # well-formed, so verifying it needs the database


@pytest.mark.parametrize("kind", ["streamable_http", "sse"])
async def test_key_verification_without_a_database_answers_503(settings, kind) -> None:
    down = Database(settings)  # never started: every connection attempt raises UpstreamUnavailable
    server = build_server(settings, db=down, bearer=True)
    app = server.streamable_http_app() if kind == "streamable_http" else server.sse_app()
    path = "/mcp" if kind == "streamable_http" else "/sse"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                 base_url="http://127.0.0.1") as http:
        method = "POST" if kind == "streamable_http" else "GET"  # GET /sse opens the stream
        accept = {"Accept": "application/json, text/event-stream"}
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"} if method == "POST" else None
        r = await http.request(method, path, json=body, headers={**accept, "Authorization": f"Bearer {KEY}"})
        health = await http.get("/healthz")
        anonymous = await http.request(method, path, json=body, headers=accept)
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "5"
    assert r.json() == {"error": "temporarily_unavailable", "error_description": "the database is not started"}
    assert health.status_code == 503 and health.headers["retry-after"] == "5"
    assert anonymous.status_code == 401  # no key: nothing to verify, the SDK's own answer


async def test_a_webhook_during_an_outage_asks_for_a_later_delivery(settings) -> None:
    server = build_server(settings, db=Database(settings), bearer=True)
    app = server.streamable_http_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                 base_url="http://127.0.0.1") as http:
        r = await http.post("/webhooks/stripe/acme", content=b"{}", headers={"Stripe-Signature": "t=1,v1=00"})
    assert r.status_code == 503 and r.headers["retry-after"] == "5", r.text
    assert r.json() == {"error": "the database is unavailable; deliver again later"}
