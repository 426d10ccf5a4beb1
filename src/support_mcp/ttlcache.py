"""The one cache of the request path: registry facts read on every call (an API key's grants, a
tenant's Stripe account, a tenant's knowledge-base namespace) kept for SUPPORT_MCP_CACHE_SECONDS.
That one setting bounds how stale any of them may be: a revoked key, a suspended tenant or a
changed account takes effect within it (0: always read).

cachetools' TTLCache does the bookkeeping (expiry, size bound). Everything here runs on the event
loop's thread and nothing awaits between a lookup and a store, so no lock is needed; two calls
that miss at once both load (as before), and the later store wins."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from cachetools import TTLCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
MAX_ENTRIES = 10_000


class Cached(Generic[K, V]):
    def __init__(self, seconds: float, *, maxsize: int = MAX_ENTRIES,
                 timer: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._cache: TTLCache[K, V] = TTLCache(maxsize, max(seconds, 0.0), timer=timer)

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The cached value, else `load()`'s (stored for `seconds`; exceptions are not cached)."""
        try:
            return self._cache[key]
        except KeyError:
            pass
        value = await load()
        if self.seconds > 0:
            self._cache[key] = value
        return value

    def items(self) -> list[tuple[K, V]]:
        """A snapshot of the live entries (to forget some of them by value)."""
        return list(self._cache.items())

    def forget(self, key: K) -> None:
        self._cache.pop(key, None)

    def clear(self) -> None:
        self._cache.clear()
