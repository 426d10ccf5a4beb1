"""Backend health for the `status` tool and `/healthz`."""

from __future__ import annotations

import time
from datetime import datetime

from pydantic import BaseModel, Field

from .db import Database, queries
from .errors import SupportError


class DatabaseStatus(BaseModel):
    reachable: bool
    kind: str
    round_trip_ms: float | None
    server_version: str | None
    tenants: int | None
    error: str | None = None


class AuditStatus(BaseModel):
    """The audit writer of this server process (shown to all-tenant clients only)."""

    pending: int = Field(description="Rows recorded but not yet stored.")
    dropped: int = Field(description="Oldest rows dropped since start because the buffer was full.")
    unstorable: int = Field(description="Rows the database refused, stored as a minimal 'unstorable' row instead.")
    lost: int = Field(description="Rows not stored at all since start.")
    consecutive_failures: int = Field(description="Failed flushes in a row (0 when the last flush worked).")
    last_error: str | None = Field(description="Error class (and SQLSTATE) of the last failed flush.")
    last_error_at: datetime | None
    retention_days: int = Field(description="Rows older than this are pruned; 0 keeps them forever.")


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
