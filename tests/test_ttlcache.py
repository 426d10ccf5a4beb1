"""The one TTL cache (keys, Stripe accounts, knowledge-base namespaces): expiry on a clock the test
moves, so nothing here waits for real time."""

from __future__ import annotations

import pytest

from support_mcp.settings import Settings
from support_mcp.ttlcache import Cached


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_value_is_reused_until_it_is_stale() -> None:
    clock, loads = Clock(), []

    async def load() -> str:
        loads.append(clock.now)
        return f"v{len(loads)}"

    cache: Cached[str, str] = Cached(5, timer=clock)
    assert await cache.get("k", load) == "v1"
    clock.now += 4.9
    assert await cache.get("k", load) == "v1"
    clock.now += 0.1  # exactly the TTL later: stale
    assert await cache.get("k", load) == "v2"
    cache.forget("k")
    assert await cache.get("k", load) == "v3"
    cache.clear()
    assert await cache.get("k", load) == "v4" and len(loads) == 4


async def test_zero_seconds_always_loads_and_errors_are_not_cached() -> None:
    calls = 0

    async def load() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database down")
        return calls

    cache: Cached[str, int] = Cached(0)
    with pytest.raises(RuntimeError):
        await cache.get("k", load)
    assert [await cache.get("k", load) for _ in range(3)] == [2, 3, 4]


async def test_the_size_is_bounded() -> None:
    cache: Cached[int, int] = Cached(60, maxsize=3)

    async def load(i: int) -> int:
        return i

    for i in range(10):
        await cache.get(i, lambda i=i: load(i))
    assert len(cache._cache) == 3  # noqa: SLF001


def test_one_setting_with_the_old_names_as_aliases(monkeypatch) -> None:
    assert Settings(_env_file=None).cache_seconds == 5
    monkeypatch.setenv("SUPPORT_MCP_KEY_CACHE_SECONDS", "2")
    assert Settings(_env_file=None).cache_seconds == 2
    monkeypatch.setenv("SUPPORT_MCP_CACHE_SECONDS", "7")
    assert Settings(_env_file=None).cache_seconds == 7  # the new name wins
    assert Settings(_env_file=None, cache_seconds=0).cache_seconds == 0
