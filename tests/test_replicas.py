"""Two `serve --transport http --stateless` processes on one database behind a round-robin
"load balancer" (an HTTP transport that alternates between them): every call works, the shared
rate limit holds, a revoked key stops working on both within the key cache window, and a
webhook delivered to both lands once."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from support_mcp import keys
from support_mcp.stripe_sandbox import make_event, signed_webhook
from test_metrics import TOKEN, value
from test_ratelimit import _early_in_window
from test_transports import http_server, server_env, text_of  # noqa: F401 - fixture re-export

LIMIT, BATCH = 20, 3
REVOKE_DEADLINE = 60.0  # a bound for a failure, not a measurement: the cache window is 1 s


class RoundRobin(httpx2.AsyncBaseTransport):
    """Sends each request to the next replica, as a load balancer without affinity would."""

    def __init__(self, ports: list[int]) -> None:
        self.ports, self.next = itertools.cycle(ports), None
        self.inner = httpx2.AsyncHTTPTransport()
        self.seen: dict[int, int] = dict.fromkeys(ports, 0)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        port = next(self.ports)
        self.seen[port] += 1
        request.url = request.url.copy_with(port=port)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def balanced_client(ports: list[int], key: str) -> tuple[Client, RoundRobin]:
    lb = RoundRobin(ports)
    http = httpx2.AsyncClient(transport=lb, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    return Client(streamable_http_client(f"http://127.0.0.1:{ports[0]}/mcp", http_client=http)), lb


async def _key(db, name: str, tenants: list[str], scopes: list[str]) -> keys.CreatedKey:  # noqa: ANN001
    return await keys.create_key(db, name, tenants=tenants, all_tenants=False, scopes=scopes)


async def test_two_stateless_replicas_on_one_database(server_env, db, make_tenant, stripe_tenant,
                                                      tmp_path: Path) -> None:
    pay = await stripe_tenant("rep")
    other = await make_tenant("repo")
    worker = await _key(db, "rep-worker", [pay.slug], ["read", "write"])
    limited = await _key(db, "rep-limited", [pay.slug], ["read"])
    doomed = await _key(db, "rep-doomed", [pay.slug], ["read"])
    env = {**server_env, "SUPPORT_MCP_RATE_LIMIT_PER_MINUTE": str(LIMIT), "SUPPORT_MCP_RATE_LIMIT_BATCH": str(BATCH),
           "SUPPORT_MCP_KEY_CACHE_SECONDS": "1", "SUPPORT_MCP_METRICS": "on", "SUPPORT_MCP_METRICS_TOKEN": TOKEN}
    async with http_server(env, tmp_path / "r1.log", "--transport", "http", "--stateless") as (p1, _), \
            http_server(env, tmp_path / "r2.log", "--transport", "http", "--stateless") as (p2, _), \
            httpx.AsyncClient(timeout=10) as http:
        ports = [p1, p2]
        await _early_in_window(db, 40)

        # 1. every call works, whichever replica answers it
        ch = pay.acct.charge(amount=2000)
        client, lb = balanced_client(ports, worker.key)
        async with client as c:
            r = await c.call_tool("create_ticket", {"tenant": pay.slug, "subject": "refund?",
                                                    "description": f"charge {ch['id']}", "customer_email": "r@x.test"})
            assert not r.is_error, text_of(r)
            number = r.structured_content["number"]
            for i in range(8):
                if i % 2:
                    r = await c.call_tool("get_ticket", {"tenant": pay.slug, "ticket": str(number)})
                else:
                    r = await c.call_tool("list_tickets", {"tenant": pay.slug})
                assert not r.is_error, text_of(r)
            r = await c.call_tool("list_tickets", {"tenant": other})  # isolation holds on both
            assert r.is_error and "not available" in text_of(r)
        assert all(n > 0 for n in lb.seen.values()), lb.seen
        for port in ports:  # both replicas served tool calls (their own counters)
            text = (await http.get(f"http://127.0.0.1:{port}/metrics",
                                   headers={"Authorization": f"Bearer {TOKEN}"})).text
            assert sum(value(text, "support_mcp_tool_calls_total", tool=t, outcome="ok")
                       for t in ("create_ticket", "list_tickets", "get_ticket")) >= 1, port

        # 2. one shared limit: 2 x LIMIT calls spread over both replicas get at most LIMIT through
        client, lb = balanced_client(ports, limited.key)
        ok, refusals = 0, []
        async with client as c:
            for _ in range(2 * LIMIT):
                r = await c.call_tool("list_tickets", {"tenant": pay.slug})
                if r.is_error:
                    refusals.append(text_of(r))
                else:
                    ok += 1
        # a process may hold up to BATCH - 1 claimed tokens unspent: refused early, never late
        assert LIMIT - 2 * (BATCH - 1) <= ok <= LIMIT, (ok, refusals[:1])
        assert all(m.startswith("slow down") for m in refusals)

        # 3. a revoked key stops working on both replicas within the cache window
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
                   "Authorization": f"Bearer {doomed.key}"}

        async def status(port: int) -> int:
            return (await http.post(f"http://127.0.0.1:{port}/mcp", json=init, headers=headers)).status_code

        assert [await status(p) for p in ports] == [200, 200]  # cached as valid on both
        await keys.revoke_key(db, str(doomed.id))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REVOKE_DEADLINE
        refused: set[int] = set()
        while refused != set(ports) and loop.time() < deadline:
            refused |= {p for p in ports if await status(p) == 401}
            await asyncio.sleep(0.2)
        assert refused == set(ports), f"revoked key still accepted by {set(ports) - refused}"

        # 4. one webhook event delivered to both replicas (as Stripe retries do) lands once
        pay.acct.refund(ch, amount=500)
        event = make_event("charge.refunded", pay.acct.get(ch["id"]), account=pay.account_id)
        body, hook_headers = signed_webhook(event, pay.secret)
        replies = await asyncio.gather(*(http.post(f"http://127.0.0.1:{p}/webhooks/stripe/{pay.slug}", content=body,
                                                   headers=hook_headers) for p in ports * 4))
        assert {r.status_code for r in replies} == {200}, [r.text for r in replies]
        assert sum(not r.json()["duplicate"] for r in replies) == 1
        processed = duplicates = 0.0
        for port in ports:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics",
                                   headers={"Authorization": f"Bearer {TOKEN}"})).text
            processed += value(text, "support_mcp_webhook_events_total", outcome="processed")
            duplicates += value(text, "support_mcp_webhook_events_total", outcome="duplicate")
        assert (processed, duplicates) == (1, 7)
    async with db.tenant_scope(pay.slug) as s:
        assert await s.conn.fetchval("SELECT count(*) FROM stripe_events") == 1
        assert await s.conn.fetchval("SELECT deliveries FROM stripe_events") == 8
        notes = await s.conn.fetchval("SELECT count(*) FROM messages WHERE author_role = 'system' "
                                      "AND content LIKE '%5.00 USD of 20.00 USD%'")
    assert notes == 1
