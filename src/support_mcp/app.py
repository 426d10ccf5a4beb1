"""The long-lived objects a server shares across calls and sessions (the lifespan context)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from .access import Principal
from .db import Database
from .settings import Settings


@dataclass
class App:
    settings: Settings
    principal: Principal
    db: Database
    owns_db: bool = True
    started_at: float = field(default_factory=time.monotonic)
    _users: int = 0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def principal_for(self, ctx: Any) -> Principal:
        """The caller of this request. (Static for operator-flag access.)"""
        return self.principal

    @asynccontextmanager
    async def lifespan(self, _server: object) -> AsyncIterator[App]:
        """Start shared clients once, however many sessions (SSE opens one per client) enter."""
        async with self._lock:
            if self._users == 0 and self.owns_db:
                await self.db.start()
            self._users += 1
        try:
            yield self
        finally:
            async with self._lock:
                self._users -= 1
                if self._users == 0 and self.owns_db:
                    await self.db.close()
