"""The shared per-key rate limit: PostgreSQL (default) and Redis backends, and two real server
processes on one database sharing one key's limit."""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path

import pytest
from pydantic import SecretStr

from support_mcp.ratelimit import PostgresLimiter, RedisLimiter, build_limiter
from test_http_auth import bearer_client
from test_transports import http_server, server_env, text_of  # noqa: F401 - fixture re-export

REDIS_URL = "redis://127.0.0.1:6379/15"


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


async def _early_in_window(db, needed: float) -> None:  # noqa: ANN001
    """Start a counting test with at least `needed` seconds of the current window left (on the
    database's clock), so its calls all land in one window whatever the time of day."""
    async with db.connection() as conn:
        left = await conn.fetchval("SELECT 60 - mod(extract(epoch FROM now()), 60)::float8")
    if left < needed:
        await asyncio.sleep(left + 0.2)


async def _spend(limiter, key: str, calls: int) -> int:  # noqa: ANN001
    return sum([await limiter.hit(key) is None for _ in range(calls)])


async def test_postgres_limiter_is_shared_and_exact(db) -> None:
    # three limiters stand for three processes: whatever the interleaving and batch size, the key
    # gets exactly `limit` calls in its window across all of them (each ends with its tokens spent)
    key = str(uuid.uuid4())
    await _early_in_window(db, 10)
    limiters = [PostgresLimiter(db, 50, batch=4) for _ in range(3)]
    assert limiters[0].batch == 4
    allowed = await asyncio.gather(*[_spend(lim, key, 40) for lim in limiters])
    assert sum(allowed) == 50
    refused = await limiters[0].hit(key)
    assert refused is not None and 0 <= refused <= 60
    async with db.connection() as conn:
        assert await conn.fetchval('SELECT hits FROM "global".rate_limit_windows WHERE key_id = $1', key) == 50


async def test_postgres_limiter_costs_one_round_trip_per_batch(db) -> None:
    key = str(uuid.uuid4())
    await _early_in_window(db, 10)
    limiter = PostgresLimiter(db, 1000, batch=20)
    limiter._next_prune = float("inf")  # noqa: SLF001 - count claims only
    claims = 0
    real = db.connection

    def counting():  # noqa: ANN202
        nonlocal claims
        claims += 1
        return real()

    db.connection = counting
    try:
        assert await _spend(limiter, key, 100) == 100
    finally:
        del db.connection
    assert claims == 100 // 20
    small = PostgresLimiter(db, 5, batch=20)
    assert small.batch == 1  # small limits are claimed one token at a time


@pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")
async def test_redis_limiter_is_shared(settings, db) -> None:
    key = f"test-{uuid.uuid4()}"
    s = settings.model_copy(update={"redis_url": SecretStr(REDIS_URL), "rate_limit_per_minute": 7})
    a, b = build_limiter(s, db), build_limiter(s, db)
    assert isinstance(a, RedisLimiter)
    allowed = await asyncio.gather(_spend(a, key, 6), _spend(b, key, 6))
    assert sum(allowed) == 7
    assert await a.hit(key) is not None
    await a.close()
    await b.close()


async def test_redis_unreachable_is_one_clear_line(settings, db) -> None:
    from support_mcp.errors import UpstreamUnavailable

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    limiter = RedisLimiter(f"redis://127.0.0.1:{port}/0", 5)
    with pytest.raises(UpstreamUnavailable, match="Redis"):
        await limiter.hit("k")


@pytest.mark.parametrize("backend", ["postgres", "redis"])
async def test_two_server_processes_share_one_limit(backend, server_env, db, make_tenant, make_key,
                                                    tmp_path: Path) -> None:
    """Regression (issue 10, finding 7): the limit lived in each process's memory, so two
    replicas gave one key twice its limit."""
    if backend == "redis" and not _redis_up():
        pytest.skip("no Redis on 127.0.0.1:6379")
    a = await make_tenant("rl")
    key = await make_key(tenants=[a], scopes=["read"], name="rl-two")
    limit = 12
    env = {**server_env, "SUPPORT_MCP_RATE_LIMIT_PER_MINUTE": str(limit), "SUPPORT_MCP_RATE_LIMIT_BATCH": "3"}
    if backend == "redis":
        env["SUPPORT_MCP_REDIS_URL"] = REDIS_URL
    async with http_server(env, tmp_path / "one.log", "--transport", "http") as (p1, _), \
            http_server(env, tmp_path / "two.log", "--transport", "http") as (p2, _):
        if backend == "postgres":
            await _early_in_window(db, 25)
        async with bearer_client(p1, key) as c1, bearer_client(p2, key) as c2:
            async def calls(c, n: int) -> tuple[int, list[str]]:  # noqa: ANN001
                ok, refusals = 0, []
                for _ in range(n):
                    r = await c.call_tool("list_tickets", {"tenant": a})
                    if r.is_error:
                        refusals.append(text_of(r))
                    else:
                        ok += 1
                return ok, refusals

            (ok1, no1), (ok2, no2) = await asyncio.gather(calls(c1, limit), calls(c2, limit))
    assert ok1 + ok2 == limit, (ok1, ok2, no1[:1], no2[:1])
    assert ok1 > 0 and ok2 > 0
    assert all(m.startswith("slow down") and f"{limit} calls per minute" in m for m in no1 + no2)
