"""The episodes admin API (issue 12) on a real HTTP server: create, list, state, reset, destroy;
who may call it; bad input; the episode's own key over Streamable HTTP with the real SDK client."""

from __future__ import annotations

import asyncio
import json

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from support_mcp import tenancy
from support_mcp.episodes import service
from support_mcp.errors import NotFound

from .test_episodes import ACME

FIXTURE = json.loads(ACME.read_text())


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def one_line_error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"} and "\n" not in body["error"] and "Traceback" not in body["error"]
    assert len(body["error"]) < 600
    return body["error"]


def mcp_client(url: str, key: str) -> Client:
    return Client(streamable_http_client(url, http_client=httpx2.AsyncClient(headers=_auth(key), timeout=30)))


async def _audit_rows(db, key_name: str, expected: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """The key's audit rows once `expected` are among them (the writer flushes in batches)."""
    for _ in range(300):
        async with db.admin_scope() as conn:
            rows = await conn.fetch('SELECT tool, outcome FROM "global".audit_log WHERE principal = $1 ORDER BY id',
                                    f"key:{key_name}")
        got = [(r["tool"], r["outcome"]) for r in rows]
        if expected <= set(got):
            return got
        await asyncio.sleep(0.1)
    raise AssertionError(f"audit rows {expected - set(got)} never written; have {got}")


async def test_admin_api_round_trip(db, http_serve, make_key) -> None:
    harness = await make_key(scopes=["episodes"], name="harness-rt")
    async with http_serve() as base, httpx.AsyncClient(base_url=base, headers=_auth(harness), timeout=30) as http:
        r = await http.post("/admin/episodes", json={"fixture": FIXTURE, "ttl": "10m"})
        assert r.status_code == 201, r.text
        ep = r.json()
        assert set(ep) == {"episode", "tenant", "api_key", "expires_at", "mcp_url"}
        assert ep["mcp_url"] == f"{base}/mcp"
        listed = (await http.get("/admin/episodes")).json()["episodes"]
        assert ep["episode"] in {e["episode"] for e in listed} and "api_key" not in json.dumps(listed)
        fresh = (await http.get(f"/admin/episodes/{ep['episode']}/state")).json()
        assert len(fresh["state_hash"]) == 64 and len(fresh["state"]["tickets"]) == 3
        async with mcp_client(ep["mcp_url"], ep["api_key"]) as c:  # the episode's own key, real SDK client
            r2 = await c.call_tool("update_ticket", {"tenant": ep["tenant"], "ticket": "1001", "status": "solved"})
            assert not r2.is_error
        changed = (await http.get(f"/admin/episodes/{ep['episode']}/state")).json()
        assert changed["state_hash"] != fresh["state_hash"]
        r = await http.post(f"/admin/episodes/{ep['episode']}/reset")
        assert r.status_code == 200 and r.json() == {"episode": ep["episode"], "tenant": ep["tenant"]}
        assert (await http.get(f"/admin/episodes/{ep['episode']}/state")).json()["state_hash"] == fresh["state_hash"]
        r = await http.delete(f"/admin/episodes/{ep['episode']}")
        assert r.status_code == 200 and r.json()["tenant"] == ep["tenant"]
        # gone: its key is refused at once on this server, with a line that says why
        async with httpx.AsyncClient(timeout=10) as other:
            r = await other.post(ep["mcp_url"], headers={**_auth(ep["api_key"]), "Accept": "application/json, "
                                 "text/event-stream"}, json={"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                                             "params": {"protocolVersion": "2025-06-18",
                                                                        "capabilities": {},
                                                                        "clientInfo": {"name": "t", "version": "1"}}})
            assert r.status_code == 401 and "episode" in r.json()["error_description"]
        assert "no episode" in one_line_error(await http.get(f"/admin/episodes/{ep['episode']}/state"), 404)
        assert "no episode" in one_line_error(await http.delete(f"/admin/episodes/{ep['episode']}"), 404)
        await _audit_rows(db, "harness-rt", {("admin:episodes.create", "ok"), ("admin:episodes.destroy", "ok"),
                                             ("admin:episodes.reset", "ok"), ("admin:episodes.state", "not_found")})


async def test_admin_api_who_may_call(db, http_serve, make_key, make_tenant) -> None:
    reader = await make_key(tenants=[await make_tenant("adm")], scopes=["read", "write", "admin"], name="no-ep")
    harness = await make_key(scopes=["episodes"], name="harness-who")
    async with http_serve() as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        assert "authentication required" in one_line_error(await http.get("/admin/episodes"), 401)
        r = await http.get("/admin/episodes", headers=_auth("smk_00000000_" + "A" * 43))
        assert "not accepted" in one_line_error(r, 401) and r.headers["www-authenticate"].startswith("Bearer")
        msg = one_line_error(await http.post("/admin/episodes", headers=_auth(reader), json={"fixture": {}}), 403)
        assert "'episodes' scope" in msg
        assert "'episodes' scope" in one_line_error(await http.get("/admin/episodes", headers=_auth(reader)), 403)
    async with http_serve(read_only=True) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        msg = one_line_error(await http.post("/admin/episodes", headers=_auth(harness), json={"fixture": {}}), 403)
        assert "read-only" in msg
    limited = await make_key(scopes=["episodes"], name="harness-limited")
    async with http_serve(rate_limit_per_minute=2) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        # 6 calls: even when a one-minute window ends among them, one is refused
        answers = [await http.get("/admin/episodes", headers=_auth(limited)) for _ in range(6)]
        assert answers[0].status_code == 200 and any(r.status_code == 429 for r in answers[1:])
        refused = next(r for r in answers if r.status_code == 429)
        assert "slow down" in one_line_error(refused, 429) and refused.headers.get("retry-after")
        await _audit_rows(db, "no-ep", {("admin:episodes.create", "not_permitted")})


async def test_admin_api_bad_input(db, kb, http_serve, make_key, make_tenant) -> None:
    harness = await make_key(scopes=["episodes"], name="harness-bad")
    real = await make_tenant("realadm")
    real_id = (await tenancy.get_tenant(db, real)).id
    before = {e["id"] for e in await service.list_(db)}
    async with http_serve(episodes_max_body_bytes=4096) as base, \
            httpx.AsyncClient(base_url=base, headers=_auth(harness), timeout=30) as http:
        cases = [
            (b"", "empty"),
            (b"{not json", "not valid JSON"),
            (b"\xff\xfe", "not UTF-8"),
            (b"[1, 2]", "JSON object"),
            (b'{"fixture": {}, "bogus": 1}', "'bogus'"),
            (b'{"ttl": "5m"}', "fixture: required"),
            (b'{"fixture": [], "ttl": "5m"}', "top level must be an object"),
            (b'{"fixture": {"customers": [{"name": "X", "email": "nope"}]}}', "customers[0].email"),
            (b'{"fixture": {"tickets": [{"subject": "s", "description": "d", "customer_email": "a@b.co"}]}}',
             "no customer with this email"),
            (b'{"fixture": {"tenant": {"nme": "x"}}}', "unknown field"),
            (b'{"fixture": {}, "ttl": "forever"}', "30m"),
            (b'{"fixture": {}, "ttl": 30}', "ttl: must be a string"),
            (b'{"fixture": {}, "deterministic": "yes"}', "deterministic: must be true or false"),
            (b'{"fixture": {"customers": [{"name": "X", "email": "x@y.co", "phone": NaN}]}}', "NaN"),
            (b"[" * 100_000, "larger than"),
            (b'{"fixture": {"documents": [{"title": "t", "text": "' + b"x" * 5000 + b'"}]}}', "larger than"),
        ]
        for body, expected in cases:
            r = await http.post("/admin/episodes", content=body, headers={"Content-Type": "application/json"})
            status = 413 if expected == "larger than" else 400
            assert expected in one_line_error(r, status), (body[:60], r.text)
        # a lying Content-Length is bounded while reading as well
        async def chunks():  # noqa: ANN202
            for _ in range(10):
                yield b" " * 1024
        r = await http.post("/admin/episodes", content=chunks(), headers={"Content-Type": "application/json"})
        assert "larger than" in one_line_error(r, 413)
        # episodes and tenants are distinct kinds: a real tenant's slug or id is refused everywhere
        for target, status in ((real, 400), (str(real_id), 404), ("00000000-0000-0000-0000-000000000000", 404),
                               ("x" * 300, 400), ("%00", 400)):
            for method, path in (("GET", f"/admin/episodes/{target}/state"),
                                 ("POST", f"/admin/episodes/{target}/reset"),
                                 ("DELETE", f"/admin/episodes/{target}")):
                r = await http.request(method, path)
                msg = one_line_error(r, status)
                assert ("distinct kinds" in msg) if status == 400 else ("no episode" in msg)
        assert "no such admin endpoint" in one_line_error(await http.get("/admin/episodes/x/bogus"), 404)
        assert "no such admin endpoint" in one_line_error(await http.get("/admin/other"), 404)
        assert "POST" in one_line_error(await http.put("/admin/episodes", json={}), 405)
        assert "DELETE" in one_line_error(await http.get("/admin/episodes/x"), 405)
        assert "GET" in one_line_error(await http.post("/admin/episodes/x/state"), 405)
    assert (await tenancy.get_tenant(db, real)).status == "active"
    assert {e["id"] for e in await service.list_(db)} == before  # nothing half-made is left


async def _until(check, seconds: float = 90.0) -> None:  # noqa: ANN001
    """Poll an async condition (background tasks of the server); fails after `seconds`."""
    for _ in range(int(seconds / 0.1)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in time")


async def test_server_sweeps_expired_episodes_and_keeps_its_warm_pool(db, kb, http_serve, make_key) -> None:
    from support_mcp.episodes import pool

    harness = await make_key(scopes=["episodes"], name="harness-upkeep")
    try:
        async with http_serve(episodes_sweep_seconds=0.2, episodes_warm_pool=2) as base, \
                httpx.AsyncClient(base_url=base, headers=_auth(harness), timeout=30) as http:
            async def full() -> bool:
                return await pool.size(db) == 2

            await _until(full)
            r = await http.post("/admin/episodes", json={"fixture": FIXTURE, "ttl": "30m"})
            assert r.status_code == 201, r.text
            ep = r.json()
            await _until(full)  # refilled after the claim
            async with mcp_client(ep["mcp_url"], ep["api_key"]) as c:
                assert not (await c.call_tool("list_tickets", {"tenant": ep["tenant"]})).is_error
            async with db.admin_scope() as conn:  # its ttl runs out
                await conn.execute('UPDATE "global".episodes SET expires_at = now() WHERE id = $1',
                                   service.parse_id(ep["episode"]))

            async def swept() -> bool:
                return (await http.get(f"/admin/episodes/{ep['episode']}/state")).status_code == 404

            await _until(swept)
            with pytest.raises(NotFound):
                await tenancy.get_tenant(db, ep["tenant"])
            async with httpx.AsyncClient(timeout=30) as bare:
                r = await bare.post(ep["mcp_url"], json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                    headers={**_auth(ep["api_key"]), "Accept": "application/json, text/event-stream"})
            assert r.status_code == 401 and "does not exist" in r.json()["error_description"], r.text
    finally:
        await pool.drain(db, kb)
    assert await pool.size(db) == 0
