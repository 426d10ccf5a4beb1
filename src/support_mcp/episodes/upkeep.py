"""What a server does for episodes in the background: sweep expired ones, keep the warm pool full.

Started with the HTTP app (episodes/http.py installs it) when the process has the admin's
database URL. Two tasks: the sweeper destroys expired episodes every
SUPPORT_MCP_EPISODES_SWEEP_SECONDS (0 = off; `support-mcp episodes sweep` does one pass), the
refiller tops the pool up to SUPPORT_MCP_EPISODES_WARM_POOL spares, woken after each claim and
every few seconds. Failures are logged and retried at the next round; they never stop a server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from ..logging import get_logger
from . import pool, service

log = get_logger(__name__)
REFILL_CHECK_SECONDS = 5.0


class Upkeep:
    def __init__(self, app: Any) -> None:  # app.App (imported lazily by its users)
        self.app = app
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()

    def start(self) -> None:
        s = self.app.settings
        if self.app.db.admin_pool is None or self._tasks:
            return  # only the app role's URL: nothing here may provision or destroy
        if s.episodes_sweep_seconds > 0:
            self._tasks.append(asyncio.create_task(self._every(s.episodes_sweep_seconds, self.sweep),
                                                   name="episodes-sweeper"))
        if s.episodes_warm_pool > 0:
            self._wake.set()  # fill at start
            self._tasks.append(asyncio.create_task(self._refiller(s.episodes_warm_pool), name="episodes-pool"))

    def wake(self) -> None:
        """A spare was (maybe) claimed: refill soon."""
        self._wake.set()

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def sweep(self) -> None:
        await service.sweep(self.app.db, self.app.kb, self.forget_key)

    def forget_key(self, name: str) -> None:
        self.app.verifier.forget(name=f"key:{name}")

    async def _every(self, seconds: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            await self._run(job)

    async def _refiller(self, target: int) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), REFILL_CHECK_SECONDS)
            self._wake.clear()
            await self._run(lambda: pool.refill(self.app.db, target, self.app.kb))

    async def _run(self, job: Callable[[], Awaitable[Any]]) -> None:
        try:
            await job()
        except Exception as exc:  # noqa: BLE001 - logged; the next round retries
            log.warning("episodes_upkeep_failed", error=f"{type(exc).__name__}: {str(exc)[:200]}")
