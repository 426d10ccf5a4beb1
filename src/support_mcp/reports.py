"""Operator reports: the audit trail and cross-tenant analytics.

Analytics visits each tenant schema through the scoping point (bounded parallelism) and reads
the global audit/feedback tables: no cross-schema joins, and never in a tool's request path."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .db import Database, queries, validate_slug
from .errors import InvalidInput
from .keys import parse_duration


def since_from(text: str | None) -> datetime | None:
    """'1h' / '7d' ago, or an ISO date or timestamp (UTC unless it names a zone); InvalidInput otherwise."""
    if not text:
        return None
    try:
        return datetime.now(timezone.utc) - parse_duration(text)
    except InvalidInput:
        pass
    try:
        stamp = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"--since {text[:40]!r}: give a duration (30m, 12h, 7d, 2w) or an ISO date or time "
                           "(2026-11-30, 2026-11-30T08:00)") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


async def audit_rows(db: Database, *, tenant: str | None, since: datetime | None, limit: int) -> list[dict[str, Any]]:
    if tenant:
        validate_slug(tenant)
    async with db.admin_scope() as conn:
        return [dict(r) async for r in queries.list_audit(conn, slug=tenant, since=since, limit=limit)]


@dataclass
class TenantStats:
    slug: str
    status: str
    tickets: dict[str, int] = field(default_factory=dict)
    calls: int = 0
    errors: int = 0
    p50_ms: float | None = None
    ratings: int = 0
    avg_rating: float | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.calls if self.calls else None


async def analytics(db: Database, *, since: datetime | None = None, concurrency: int = 4) -> list[TenantStats]:
    async with db.admin_scope() as conn:
        tenants = [r async for r in queries.list_tenants(conn)]
        calls = {r["tenant_id"]: r async for r in queries.audit_stats(conn, since=since)}
        fb = {r["tenant_id"]: r async for r in queries.feedback_stats(conn, since=since)}
    gate = asyncio.Semaphore(concurrency)

    async def one(t: Any) -> TenantStats:
        stats = TenantStats(t["slug"], t["status"])
        async with gate, db.tenant_scope(t["slug"], allow_suspended=True) as s:
            stats.tickets = {r["status"]: r["n"] async for r in queries.ticket_status_counts(s.conn)}
        if (c := calls.get(t["id"])) is not None:
            stats.calls, stats.errors, stats.p50_ms = c["calls"], c["errors"], c["p50_ms"]
        if (f := fb.get(t["id"])) is not None:
            stats.ratings, stats.avg_rating = f["ratings"], f["avg_rating"]
        return stats

    return list(await asyncio.gather(*(one(t) for t in tenants)))



