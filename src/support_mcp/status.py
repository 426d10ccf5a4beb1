"""Backend health for the `status` tool and `/healthz`."""

from __future__ import annotations

import time

from pydantic import BaseModel

from .db import Database, queries
from .errors import SupportError


class DatabaseStatus(BaseModel):
    reachable: bool
    kind: str
    round_trip_ms: float | None
    server_version: str | None
    tenants: int | None
    error: str | None = None


async def database_status(db: Database, *, count_tenants: bool = True) -> DatabaseStatus:
    kind = "server" if db.settings.database_url is not None else "embedded"
    try:
        async with db.connection() as conn:
            started = time.perf_counter()
            await conn.fetchval("SELECT 1")
            rtt = (time.perf_counter() - started) * 1000
            version = await conn.fetchval("SHOW server_version")
            tenants = await queries.count_tenants(conn) if count_tenants else None
    except SupportError as exc:
        return DatabaseStatus(reachable=False, kind=kind, round_trip_ms=None, server_version=None,
                              tenants=None, error=str(exc))
    return DatabaseStatus(reachable=True, kind=kind, round_trip_ms=round(rtt, 2),
                          server_version=version, tenants=tenants)
