"""The audit log: one row per tool call (allowed or refused), written in batches off the
request path. Arguments are stored only in masked, truncated form."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from .db import Database
from .logging import get_logger, mask_pii

log = get_logger(__name__)
_COLUMNS = ("at", "tenant_id", "tenant_slug", "key_id", "principal", "tool", "outcome", "duration_ms",
            "arguments")
_MAX_TEXT = 200


def mask_arguments(args: Any) -> Any:
    """PII-masked, size-bounded copy of tool arguments for the audit row."""
    if isinstance(args, str):
        text = mask_pii(args)
        return text if len(text) <= _MAX_TEXT else f"{text[:_MAX_TEXT]}…({len(text)} chars)"
    if isinstance(args, dict):
        return {str(k)[:60]: mask_arguments(v) for k, v in list(args.items())[:30]}
    if isinstance(args, list | tuple):
        return [mask_arguments(v) for v in list(args)[:30]]
    if args is None or isinstance(args, bool | int | float):
        return args
    return mask_arguments(str(args))


@dataclass
class AuditRecord:
    tool: str
    principal: str
    outcome: str
    duration_ms: float
    arguments: Any
    tenant_slug: str | None = None
    tenant_id: UUID | None = None
    key_id: UUID | None = None
    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def row(self) -> tuple[Any, ...]:
        return (self.at, self.tenant_id, self.tenant_slug, self.key_id, self.principal, self.tool,
                self.outcome, self.duration_ms, mask_arguments(self.arguments))


class AuditWriter:
    """Buffers records and COPYs them into global.audit_log every `interval` seconds."""

    def __init__(self, db: Database, *, interval: float = 0.25, max_buffer: int = 100_000) -> None:
        self.db, self.interval, self.max_buffer = db, interval, max_buffer
        self._buffer: list[AuditRecord] = []
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.dropped = 0
        self.on_flush: list[Any] = []  # extra async callbacks run with each flush (last_used_at)

    def record(self, rec: AuditRecord) -> None:
        if len(self._buffer) >= self.max_buffer:
            self.dropped += 1  # the database is down for long: keep serving, count the loss
            return
        self._buffer.append(rec)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="audit-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - never let the writer die; rows stay buffered
                log.warning("audit_flush_failed", buffered=len(self._buffer))

    async def flush(self) -> int:
        async with self._lock:
            batch, self._buffer = self._buffer, []
            if batch:
                try:
                    async with self.db.connection() as conn:
                        await conn.copy_records_to_table("audit_log", schema_name="global", columns=_COLUMNS,
                                                         records=[r.row() for r in batch])
                except Exception:
                    self._buffer[:0] = batch  # retry next time, oldest first
                    raise
            for callback in self.on_flush:
                await callback()
            return len(batch)
