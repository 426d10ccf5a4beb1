"""64 episodes of one fixture at once (issue 12, item 7): created concurrently through the admin API,
driven concurrently over real Streamable HTTP with their own keys (the real SDK client), each doing
different tool calls. Every final state must equal the state of the same calls replayed alone, one
script after another, on a fresh copy of the fixture (one episode, reset between scripts)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from support_mcp.db import queries
from support_mcp.episodes import pool, service
from support_mcp.episodes.fixtures import parse_fixture

from .test_admin_http import FIXTURE

EPISODES = 64
STATUSES = ("pending", "solved", "closed")


def script(i: int) -> list[tuple[str, dict[str, Any]]]:
    """Episode i's tool calls (tenant added when run): every episode a different sequence."""
    calls: list[tuple[str, dict[str, Any]]] = [
        ("create_ticket", {"subject": f"Case {i}", "description": f"Problem number {i}.",
                           "customer_email": f"c{i % 5}@example.com", "priority": ("low", "high")[i % 2]}),
        ("update_ticket", {"ticket": str(1001 + i % 3), "status": STATUSES[i % 3], "add_tags": [f"t{i % 7}"]}),
        ("add_message", {"ticket": str(1001 + (i + 1) % 3), "content": f"Follow-up {i}", "author_role": "agent",
                         "internal": i % 2 == 0}),
    ]
    if i % 4 == 0:
        calls.append(("create_customer", {"name": f"Extra {i}", "email": f"extra{i}@example.com"}))
    if i % 3 == 1:
        calls.append(("update_ticket", {"ticket": "1004", "assignee": f"agent{i}@acme.example"}))
    return calls


async def _drive(url: str, key: str, tenant: str, calls: list[tuple[str, dict[str, Any]]]) -> None:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60)
    async with Client(streamable_http_client(url, http_client=http)) as client:
        for tool, args in calls:
            r = await client.call_tool(tool, {"tenant": tenant, **args})
            assert not r.is_error, (tool, r.content)


async def test_64_concurrent_episodes_match_their_sequential_replays(db, kb, http_serve, make_key,
                                                                     connect_key) -> None:
    await pool.refill(db, EPISODES // 2)  # half the creates claim a spare, half provision, all at once
    harness = await make_key(scopes=["episodes"], name="harness-par")
    async with http_serve() as base, httpx.AsyncClient(base_url=base, timeout=120,
                                                       headers={"Authorization": f"Bearer {harness}"}) as http:
        async def create() -> dict[str, Any]:
            r = await http.post("/admin/episodes", json={"fixture": FIXTURE, "ttl": "15m"})
            assert r.status_code == 201, r.text
            return r.json()

        eps = await asyncio.gather(*(create() for _ in range(EPISODES)))
        assert len({e["tenant"] for e in eps}) == EPISODES and len({e["api_key"] for e in eps}) == EPISODES
        assert await pool.size(db) == 0
        await asyncio.gather(*(_drive(e["mcp_url"], e["api_key"], e["tenant"], script(i)) for i, e in enumerate(eps)))

        async def final(e: dict[str, Any]) -> str:
            r = await http.get(f"/admin/episodes/{e['episode']}/state")
            assert r.status_code == 200, r.text
            return r.json()["state_hash"]

        got = await asyncio.gather(*(final(e) for e in eps))
        gone = await asyncio.gather(*(http.delete(f"/admin/episodes/{e['episode']}") for e in eps))
        assert all(r.status_code == 200 for r in gone)

    # the expected states: each script alone, replayed on a fresh copy of the fixture
    ref = await service.create(db, kb, parse_fixture(FIXTURE))
    fresh = (await service.state(db, ref["episode"]))["state_hash"]
    expected = []
    async with connect_key(ref["api_key"]) as c:
        for i in range(EPISODES):
            await service.reset(db, kb, ref["episode"])
            assert (await service.state(db, ref["episode"]))["state_hash"] == fresh
            for tool, args in script(i):
                await c.ok(tool, tenant=ref["tenant"], **args)
            expected.append((await service.state(db, ref["episode"]))["state_hash"])
    await service.destroy(db, ref["episode"], kb)
    assert len(set(expected)) == EPISODES  # the scripts really differ
    assert got == expected
    async with db.admin_scope() as conn:
        assert await queries.count_spares(conn) == 0
