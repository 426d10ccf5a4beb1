"""Global tools: status and calculator through MCP."""

from __future__ import annotations

import asyncio

import pytest

from support_mcp import __version__


async def test_status_for_all_tenant_and_restricted_clients(connect, make_tenant) -> None:
    a = await make_tenant("stat")
    async with connect(all_tenants=True) as op:
        s = await op.ok("status")
        assert s["version"] == __version__ and s["uptime_seconds"] >= 0
        assert s["database"]["reachable"] is True and s["database"]["round_trip_ms"] > 0
        assert s["tenants_total"] >= 1 and s["accessible_tenants"] is None
        assert s["backends"]["postgres"] == "ok"
    async with connect([a]) as c:
        s = await c.ok("status")
        assert s["accessible_tenants"] == [a]
        assert s["tenants_total"] is None  # a restricted client does not learn how many tenants exist


@pytest.mark.parametrize(
    ("expr", "result"),
    [("0.1 + 0.2", "0.3"), ("19.99 * 3", "59.97"), ("200 * 15%", "30"), ("round(10 / 3, 2)", "3.33"),
     ("max(1, 2.5, -3)", "2.5"), ("sqrt(16)", "4"), ("-2 ** 2", "-4"), ("7 // 2 + 7 % 2", "4")],
)
async def test_calculator(connect, expr: str, result: str) -> None:
    async with connect(all_tenants=True) as c:
        assert (await c.ok("calculator", expression=expr))["result"] == result


@pytest.mark.parametrize(
    "attack",
    ["9**9**9**9", "10**100000", "__import__('os').system('id')", "().__class__.__bases__[0]",
     "open('/etc/passwd').read()", "x", "lambda: 1", "[1] * 10", "1/0", "(" * 5000 + "1" + ")" * 5000,
     "1+" * 3_000_000 + "1", "", "   "],
)
async def test_calculator_refuses_attacks_fast(connect, attack: str) -> None:
    async with connect(all_tenants=True) as c:
        msg = await asyncio.wait_for(c.err("calculator", expression=attack), 60)  # a hang guard, not a speed limit
    assert "\n" not in msg and "Traceback" not in msg and len(msg) < 300
