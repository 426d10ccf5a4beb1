"""The audit trail under hostile input through the real MCP paths (issue 10, finding 1): NUL,
lone surrogates, NaN/Infinity/1e400 as an attacker sends them (raw JSON over HTTP and stdio,
and in memory), and a hypothesis run over every tool's input schema. After each: one audit
row per call, later calls still audited, the server alive."""

from __future__ import annotations

import asyncio
import json
import math
import secrets
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support_mcp.db import Database
from test_transports import http_server, raw_stdio, server_env, tail  # noqa: F401 - fixture re-export

HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
           "mcp-protocol-version": "2025-06-18"}


async def audit_rows(db: Database, principal: str) -> list[dict]:
    async with db.admin_scope() as conn:
        return [dict(r) for r in await conn.fetch(
            'SELECT tool, outcome, tenant_slug, arguments FROM "global".audit_log WHERE principal = $1 ORDER BY id',
            principal)]


class Raw(str):
    """JSON text sent as is (1e400: a number Python's json cannot write)."""


def dump(value: Any) -> str:
    """JSON as an attacker writes it: NaN/Infinity literals, raw numbers, \\u0000 and \\udXXX escapes."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value)


def call_body(request_id: int, tool: str, arguments: Any) -> bytes:
    return dump({"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                 "params": {"name": tool, "arguments": arguments}}).encode()


def reached_the_server(response: httpx.Response, request_id: int) -> bool:
    """A tools/call the server handled (a result or an error for it), not a parse error."""
    assert response.status_code != 500, response.text[:300]
    if response.status_code != 200:
        assert response.status_code == 400 and response.json()["error"]["code"] in (-32700, -32600), response.text
        return False
    return response.json().get("id") == request_id


async def test_nan_infinity_1e400_and_nul_over_http(server_env, db, make_tenant, make_key, tmp_path: Path) -> None:
    a = await make_tenant("wire")
    name = f"wire-{secrets.token_hex(3)}"
    key = await make_key(tenants=[a], scopes=["read"], name=name)
    env = {**server_env, "SUPPORT_MCP_RATE_LIMIT_PER_MINUTE": "0"}
    hostile = [
        ("list_tickets", {"tenant": a, "limit": float("nan")}),
        ("list_tickets", {"tenant": a, "limit": float("inf")}),
        ("list_tickets", {"tenant": a, "limit": float("-inf")}),
        ("list_tickets", {"tenant": a, "limit": Raw("1e400")}),
        ("calculator", {"expression": Raw("-1e400")}),
        ("list_tickets", {"tenant": a, "query": "x\x00y"}),
        ("list\x00tickets", {"tenant": a}),
        ("list_tickets", {"tenant": a, "st\x00atus": [float("nan"), {"deep": [Raw("1e400")]}]}),
        ("get_ticket", {"tenant": f"{a}\x00", "ticket": "\x00"}),
        ("list_tickets", {"tenant": a}),  # a normal call afterwards
    ]
    url_calls = 0
    async with http_server(env, tmp_path / "http.log", "--transport", "http", "--stateless",
                           "--json-response") as (port, _):
        async with httpx.AsyncClient(timeout=30, headers={**HEADERS, "Authorization": f"Bearer {key}"}) as http:
            for i, (tool, args) in enumerate(hostile, start=1):
                r = await http.post(f"http://127.0.0.1:{port}/mcp", content=call_body(i, tool, args))
                assert reached_the_server(r, i), r.text[:300]
                url_calls += 1
            last = r.json()["result"]
            assert last["isError"] is False
    rows = await audit_rows(db, f"key:{name}")
    assert len(rows) == url_calls == len(hostile)
    assert rows[-1]["tool"] == "list_tickets" and rows[-1]["outcome"] == "ok"
    assert rows[6]["tool"] == "list\\u0000tickets"
    assert rows[0]["arguments"]["limit"] == "NaN" and rows[3]["arguments"]["limit"] == "Infinity"


async def test_nul_and_lone_surrogates_in_memory(connect_key, db, make_tenant, make_key) -> None:
    a = await make_tenant("surr")
    name = f"surr-{secrets.token_hex(3)}"
    key = await make_key(tenants=[a], scopes=["read"], name=name)
    calls = [
        ("list_tickets", {"tenant": a, "query": "x\x00y"}),
        ("list\x00tickets", {"tenant": a}),
        ("list_tickets", {"tenant": a, "query": "\ud800"}),
        ("calc\x00\x01", {"expression": "\udfff"}),
        ("list_tickets", {"tenant": a, "\ud800\x00": "x", "status": "\udbff\x00"}),
        ("get_ticket", {"tenant": "\ud800", "ticket": "\x00" * 5000}),
        ("list_tickets", {"tenant": a, "limit": float("nan")}),
    ]
    async with connect_key(key) as c:
        for tool, args in calls:
            await c.call(tool, args)
        await c.ok("list_tickets", tenant=a)  # later calls work and are audited
    rows = await audit_rows(db, f"key:{name}")
    assert len(rows) == len(calls) + 1
    assert rows[-1]["outcome"] == "ok" and rows[3]["tool"] == "calc\\u0000\x01"


async def test_stdio_session_with_nan_ends_cleanly(server_env, db, make_tenant, tmp_path: Path) -> None:
    a = await make_tenant("stdn")
    stderr = tmp_path / "stdio.log"
    async with raw_stdio(server_env, a, stderr) as s:
        await s.handshake()
        await s.send('{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_tickets",'
                     f'"arguments":{{"tenant":"{a}","limit":NaN,"query":"\\u0000"}}}}}}')
        assert (await s.answer(2))["result"]["isError"] is True
        await s.send({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                      "params": {"name": "list_tickets", "arguments": {"tenant": a}}})
        assert (await s.answer(3))["result"]["isError"] is False
        assert await s.close() == 0, tail(stderr)
    assert "Traceback" not in stderr.read_text()
    async with db.admin_scope() as conn:
        assert await conn.fetchval('SELECT count(*) FROM "global".audit_log WHERE tenant_slug = $1', a) == 2


async def test_status_shows_audit_health_to_all_tenant_clients_only(connect, connect_key, make_tenant,
                                                                   make_key) -> None:
    a = await make_tenant("stat")
    async with connect(all_tenants=True) as c:
        audit = (await c.ok("status"))["audit"]
        assert {"pending", "dropped", "unstorable", "lost", "consecutive_failures", "last_error"} <= set(audit)
        assert audit["retention_days"] == 90
    async with connect(tenants=[a]) as c:
        assert (await c.ok("status"))["audit"] is None
    async with connect_key(await make_key(tenants=[a], scopes=["read", "write", "admin"])) as c:
        assert (await c.ok("status"))["audit"] is None
    async with connect_key(await make_key(all_tenants=True, scopes=["read"])) as c:
        assert (await c.ok("status"))["audit"]["dropped"] == 0


# --- hypothesis over every tool's input schema, as raw JSON over HTTP ----------------------------

def _tool_schemas(settings: Any) -> dict[str, dict]:
    from support_mcp.access import Principal
    from support_mcp.server import build_server

    server = build_server(settings, Principal.operator(None, True))  # only listed: never started
    return {t.name: t.input_schema for t in asyncio.run(server.list_tools())}


def _nested(depth: int) -> Any:
    value: Any = "\x00"
    for _ in range(depth):
        value = [value]
    return value


HOSTILE_NUMBERS = st.sampled_from([float("nan"), float("inf"), float("-inf"), Raw("1e400"), Raw("-1e400"),
                                   10 ** 30, -1, 0, 2.5])
HOSTILE_STRINGS = st.one_of(
    st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfffy", "é" * 60_000, "x" * 200_000, "#1", "",
                     "Mallory\n\n## Instructions", "jane@example.com +44 20 7946 0958"]),
    st.text(st.characters(exclude_categories=()), max_size=50),  # any code point, lone surrogates included
)
HOSTILE = st.one_of(HOSTILE_STRINGS, HOSTILE_NUMBERS, st.booleans(), st.none(),
                    st.integers(min_value=1, max_value=180).map(_nested),
                    st.dictionaries(HOSTILE_STRINGS, HOSTILE_NUMBERS, max_size=5),
                    st.lists(HOSTILE_NUMBERS, max_size=5))


def _arguments(schema: dict, tenant: str) -> st.SearchStrategy[dict]:
    props = schema.get("properties", {})
    fields = {k: st.one_of(st.just(tenant), HOSTILE) if k == "tenant" else HOSTILE for k in props}
    return st.fixed_dictionaries({}, optional={**fields, "\x00extra": HOSTILE})


async def test_hostile_values_over_every_tool_schema(server_env, db, make_tenant, make_key, tmp_path: Path) -> None:
    schemas = await asyncio.to_thread(_tool_schemas, db.settings)
    a = await make_tenant("hyp")
    name = f"hyp-{secrets.token_hex(3)}"
    key = await make_key(tenants=[a], scopes=["read"], name=name)
    env = {**server_env, "SUPPORT_MCP_RATE_LIMIT_PER_MINUTE": "0"}
    loop = asyncio.get_running_loop()
    counted = {"calls": 0, "sent": 0}
    async with http_server(env, tmp_path / "http.log", "--transport", "http", "--stateless",
                           "--json-response") as (port, _):
        async with httpx.AsyncClient(timeout=60, headers={**HEADERS, "Authorization": f"Bearer {key}"}) as http:
            url = f"http://127.0.0.1:{port}/mcp"

            @settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            @given(data=st.data())
            def one_call(data: st.DataObject) -> None:
                tool = data.draw(st.sampled_from(sorted(schemas)), label="tool")
                args = data.draw(_arguments(schemas[tool], a), label="arguments")
                counted["sent"] += 1
                request_id = counted["sent"]
                r = asyncio.run_coroutine_threadsafe(http.post(url, content=call_body(request_id, tool, args)),
                                                     loop).result(120)
                if reached_the_server(r, request_id):
                    counted["calls"] += 1

            await asyncio.to_thread(one_call)
            r = await http.post(url, content=call_body(0, "list_tickets", {"tenant": a}))
            assert r.status_code == 200 and r.json()["result"]["isError"] is False  # alive and answering
            counted["calls"] += 1
            assert (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
    rows = await audit_rows(db, f"key:{name}")
    assert counted["calls"] > 50
    assert len(rows) == counted["calls"]
    assert rows[-1]["outcome"] == "ok"


def _in_memory(value: Any) -> Any:
    """What the JSON parser makes of a Raw number (1e400 -> inf); in memory no parser runs."""
    if isinstance(value, Raw):
        return float(value)
    if isinstance(value, dict):
        return {k: _in_memory(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_in_memory(v) for v in value]
    return value


async def test_hostile_values_over_every_tool_schema_in_memory(connect_key, db, make_tenant, make_key) -> None:
    """The same strategy in memory, where lone surrogates reach the server (no JSON parser refuses them)."""
    from mcp.shared.exceptions import MCPError

    schemas = await asyncio.to_thread(_tool_schemas, db.settings)
    a = await make_tenant("hypm")
    name = f"hypm-{secrets.token_hex(3)}"
    key = await make_key(tenants=[a], scopes=["read"], name=name)
    loop = asyncio.get_running_loop()
    calls = {"n": 0}
    async with connect_key(key, rate_limit_per_minute=0) as c:

        @settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(data=st.data())
        def one_call(data: st.DataObject) -> None:
            tool = data.draw(st.sampled_from(sorted(schemas)), label="tool")
            args = _in_memory(data.draw(_arguments(schemas[tool], a), label="arguments"))
            try:
                asyncio.run_coroutine_threadsafe(c.call(tool, args), loop).result(120)
            except UnicodeEncodeError:
                return  # the client itself cannot send this (pydantic refuses some surrogates): no call
            except MCPError:
                pass  # an error answer is still a call
            calls["n"] += 1

        await asyncio.to_thread(one_call)
        await c.ok("list_tickets", tenant=a)
        calls["n"] += 1
    rows = await audit_rows(db, f"key:{name}")
    assert len(rows) == calls["n"] and rows[-1]["outcome"] == "ok"
