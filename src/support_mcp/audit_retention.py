"""Audit retention: rows older than SUPPORT_MCP_AUDIT_RETENTION_DAYS are deleted (and rows of
deleted tenants that a server stored after the deletion), by the running server periodically
and by `support-mcp audit prune`."""

from __future__ import annotations

from .db import Database, queries
from .errors import InvalidInput
from .logging import get_logger

log = get_logger(__name__)
PRUNE_BATCH = 10_000


async def prune(db: Database, days: int, *, batch: int = PRUNE_BATCH) -> int:
    """Delete audit rows older than `days` days, one short transaction per batch. Returns the count.
    Runs as the admin: the request path's role may only append to the trail, never delete from it."""
    if days < 1:
        raise InvalidInput("retention must be at least 1 day (0 means keep forever: nothing to prune)")
    total = 0
    while True:
        async with db.admin_scope() as conn:
            gone = await queries.prune_audit(conn, days=days, batch=batch)
        total += gone
        if gone < batch:
            break
    if total:
        log.info("audit_pruned", rows=total, retention_days=days)
    return total
