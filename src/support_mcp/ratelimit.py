"""The per-key rate limit, shared by every server process on the same database (or Redis).

PostgreSQL (the default): a fixed window per key in `global.rate_limit_windows`. A process
claims tokens from the key's window in small batches with one atomic upsert (one round trip)
and spends them locally, so most calls cost no database work at all. The shared count never
passes the limit: at most `limit` calls per key per window succeed across all processes. The
tolerance goes the other way: tokens a process has claimed but not spent when the window ends
are lost, so a key whose calls move between processes may be refused up to (processes x
(batch - 1)) calls early. The window follows the database's clock; local tokens expire at the
window's end as the database reported it (measured from before the claim was sent), so tokens
of one window are never spent in the next.

Redis (when SUPPORT_MCP_REDIS_URL is set): the `limits` library's moving window on Redis, one
round trip per call, exact."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

from .db import Database, queries
from .logging import get_logger
from .settings import Settings

log = get_logger(__name__)
WINDOW_SECONDS = 60  # the limit is per minute


class Limiter(Protocol):
    async def hit(self, key: str) -> float | None:
        """Count one call for `key`: None if allowed, else the seconds until it may retry."""

    async def close(self) -> None: ...


@dataclass
class _Allowance:
    tokens: int = 0
    expires: float = 0.0  # time.monotonic() when the tokens (or the exhaustion) stop being valid
    exhausted: bool = False


class PostgresLimiter:
    def __init__(self, db: Database, limit: int, batch: int) -> None:
        self.db, self.limit = db, limit
        # small limits claim one token at a time (exact); large ones amortize the round trip
        self.batch = max(1, min(batch, limit // 10))
        self._local: dict[str, _Allowance] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._next_prune = 0.0
        self._prune_task: asyncio.Task[None] | None = None

    async def hit(self, key: str) -> float | None:
        now = time.monotonic()
        local = self._local.get(key)
        if local is not None and now < local.expires:  # the fast path: no await, no database
            if local.tokens > 0:
                local.tokens -= 1
                return None
            if local.exhausted:
                return local.expires - now
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # one claim in flight per key; the others wait for its tokens
            now = time.monotonic()
            local = self._local.get(key)
            if local is not None and now < local.expires:
                if local.tokens > 0:
                    local.tokens -= 1
                    return None
                if local.exhausted:
                    return local.expires - now
            sent = time.monotonic()
            async with self.db.connection() as conn:
                row = await queries.claim_rate_tokens(conn, key_id=key, window_seconds=WINDOW_SECONDS,
                                                      want=self.batch, max_hits=self.limit)
            granted, expires = int(row["granted"]), sent + max(0.0, float(row["reset_in"]))
            self._local[key] = _Allowance(tokens=max(0, granted - 1), expires=expires, exhausted=granted == 0)
            self._maybe_prune(sent)
            return None if granted > 0 else max(0.0, expires - time.monotonic())

    def _maybe_prune(self, now: float) -> None:
        """Once a window per process: drop rows of windows that have ended (in the background)."""
        if now < self._next_prune:
            return
        self._next_prune = now + WINDOW_SECONDS
        for key in [k for k, a in self._local.items() if a.expires <= now]:
            del self._local[key]
            lock = self._locks.get(key)
            if lock is not None and not lock.locked():
                del self._locks[key]

        async def prune() -> None:
            try:
                async with self.db.connection() as conn:
                    await queries.prune_rate_windows(conn, window_seconds=WINDOW_SECONDS)
            except Exception as exc:  # noqa: BLE001 - pruning is housekeeping; the next window retries
                log.warning("rate_limit_prune_failed", error=exc.__class__.__name__)

        self._prune_task = asyncio.create_task(prune())

    async def close(self) -> None:
        if self._prune_task is not None and not self._prune_task.done():
            await asyncio.wait([self._prune_task], timeout=2)


class RedisLimiter:
    def __init__(self, url: str, limit: int) -> None:
        from limits import RateLimitItemPerMinute
        from limits.aio.storage import RedisStorage
        from limits.aio.strategies import MovingWindowRateLimiter

        uri = url if url.startswith("async+") else f"async+{url}"
        self._storage = RedisStorage(uri, implementation="redispy", key_prefix="support_mcp")
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._item = RateLimitItemPerMinute(limit)

    async def hit(self, key: str) -> float | None:
        try:
            if await self._limiter.hit(self._item, key):
                return None
            stats = await self._limiter.get_window_stats(self._item, key)
        except Exception as exc:  # noqa: BLE001 - any Redis failure: one clear line, no internals
            from .errors import UpstreamUnavailable

            log.warning("rate_limit_redis_failed", error=exc.__class__.__name__)
            raise UpstreamUnavailable("the rate-limit store (Redis) is unavailable; retry in a few seconds") from None
        return max(0.0, stats.reset_time - time.time())

    async def close(self) -> None:
        client = getattr(getattr(self._storage, "bridge", None), "storage", None)  # redis.asyncio.Redis
        if client is not None and hasattr(client, "aclose"):
            try:
                await client.aclose()
            except Exception as exc:  # noqa: BLE001 - shutting down anyway
                log.warning("rate_limit_redis_close_failed", error=exc.__class__.__name__)


def build_limiter(settings: Settings, db: Database) -> Limiter | None:
    if settings.rate_limit_per_minute <= 0:
        return None
    if settings.redis_url is not None:
        return RedisLimiter(settings.redis_url.get_secret_value(), settings.rate_limit_per_minute)
    return PostgresLimiter(db, settings.rate_limit_per_minute, settings.rate_limit_batch)
