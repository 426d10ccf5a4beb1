"""The audit log: one row per tool call (allowed or refused), written in batches off the
request path.

Nothing a caller sends can stop it: a row is made storable when it is recorded (see
audit_values), a batch the database refuses is split until the bad row is found (that row
is stored as a minimal "unstorable" row), failures back off exponentially, a full buffer drops
its oldest rows and counts them, and `stop()` flushes with a bounded wait."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import asyncpg

from .audit_values import clean_text, number, storable_arguments
from .db import SLUG_RE, Database
from .dberrors import CONNECTION_ERRORS
from .errors import SupportError
from .logging import get_logger

log = get_logger(__name__)
_COLUMNS = ("at", "tenant_id", "tenant_slug", "key_id", "principal", "tool", "outcome", "duration_ms",
            "arguments")
Row = tuple[Any, ...]


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

    def row(self) -> Row:
        """The storable row: every text column escaped and bounded, arguments reduced."""
        slug = self.tenant_slug if isinstance(self.tenant_slug, str) and SLUG_RE.match(self.tenant_slug) else None
        duration = number(float(self.duration_ms))
        return (self.at, self.tenant_id, slug, self.key_id, clean_text(str(self.principal), 120),
                clean_text(str(self.tool), 100), clean_text(str(self.outcome), 40),
                duration if isinstance(duration, float) else -1.0, storable_arguments(self.arguments))


def minimal_row(row: Row, reason: str) -> Row:
    """What is left of a row the database refused: who, when, which tool, that it was lost."""
    def ascii_only(value: Any, limit: int) -> str:
        return clean_text(str(value), limit).encode("ascii", "backslashreplace").decode("ascii")[:limit]

    def uuid_or_none(value: Any) -> UUID | None:
        try:
            return value if isinstance(value, UUID) else UUID(str(value)) if value is not None else None
        except ValueError:
            return None

    slug = row[2] if isinstance(row[2], str) and SLUG_RE.match(row[2]) else None
    at = row[0] if isinstance(row[0], datetime) else datetime.now(timezone.utc)
    return (at, uuid_or_none(row[1]), slug, uuid_or_none(row[3]), ascii_only(row[4], 120), ascii_only(row[5], 100),
            ascii_only(row[6], 40), 0.0, {"unstorable": True, "error": ascii_only(reason, 80)})


def _transient(exc: BaseException) -> bool:
    """The database (not the row) is the problem: keep the rows and retry later."""
    if isinstance(exc, ValueError | TypeError | UnicodeError | OverflowError | RecursionError):
        return False  # a value the client-side encoder refused (asyncpg's DataError is a ValueError)
    if isinstance(exc, (*CONNECTION_ERRORS, SupportError, asyncpg.QueryCanceledError,
                        asyncpg.OperatorInterventionError, asyncpg.InsufficientResourcesError)):
        return True
    state = getattr(exc, "sqlstate", None) or ""
    return state[:2] in ("08", "40", "42", "53", "55", "57", "58", "XX")  # not a property of the row


def backoff(previous: float, interval: float, cap: float) -> float:
    """The wait after another failed flush: doubled, at most `cap`, jittered down by up to 25 %
    (replicas that failed together do not retry in step)."""
    return min(cap, max(interval, previous) * 2) * random.uniform(0.75, 1.0)


def _describe(exc: BaseException) -> str:
    """Error class and SQLSTATE only: never a value from the row."""
    state = getattr(exc, "sqlstate", None)
    return f"{type(exc).__name__}{f' ({state})' if state else ''}"


class AuditWriter:
    """Buffers rows and COPYs them into global.audit_log every `interval` seconds."""

    def __init__(self, db: Database, *, interval: float = 0.25, max_buffer: int = 100_000,
                 batch_rows: int = 5_000, stop_seconds: float = 5.0, backoff_max: float = 30.0) -> None:
        self.db, self.interval, self.max_buffer = db, interval, max_buffer
        self.batch_rows, self.stop_seconds, self.backoff_max = batch_rows, stop_seconds, backoff_max
        self._buffer: deque[Row] = deque()
        self._inflight = 0
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.dropped = 0  # oldest rows dropped because the buffer was full
        self.unstorable = 0  # rows the database refused, stored as a minimal row instead
        self.lost = 0  # rows not stored at all (not even minimal; or still pending at shutdown)
        self.failures = 0  # consecutive failed flushes
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        self._logged_dropped = 0
        self.on_flush: list[Any] = []  # extra async callbacks run with each flush (last_used_at)
        self.periodic: list[Any] = []  # (every_seconds, async callback) run by the writer task

    @property
    def pending(self) -> int:
        return len(self._buffer) + self._inflight

    def stats(self) -> dict[str, Any]:
        return {"pending": self.pending, "dropped": self.dropped, "unstorable": self.unstorable,
                "lost": self.lost, "consecutive_failures": self.failures, "last_error": self.last_error,
                "last_error_at": self.last_error_at}

    def record(self, rec: AuditRecord) -> None:
        try:
            row = rec.row()
        except Exception as exc:  # noqa: BLE001 - a call is always audited, if only minimally
            row = minimal_row((rec.at, None, None, None, rec.principal, rec.tool, rec.outcome), _describe(exc))
        self._append(row)

    def _append(self, row: Row) -> None:
        if len(self._buffer) >= self.max_buffer:
            self._buffer.popleft()  # the database is down for long: keep serving, drop the oldest, count it
            self.dropped += 1
        self._buffer.append(row)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="audit-writer")

    async def stop(self) -> None:
        """Stop the writer and store what is buffered, waiting at most `stop_seconds`. A flush in
        progress is waited for, not cancelled (a COPY cancelled after the server stored it would
        be stored twice), unless the wait runs out."""
        try:
            async with asyncio.timeout(self.stop_seconds):
                async with self._lock:
                    await self._cancel_task()
                    await self._flush_locked()
        except Exception as exc:  # noqa: BLE001 - shutdown must finish; say what was lost
            self._fail(exc)
        await self._cancel_task()
        if self.pending:
            self.lost += self.pending
            log.error("audit_rows_lost_at_shutdown", lost=self.pending, stop_seconds=self.stop_seconds,
                      error=self.last_error)
            self._buffer.clear()
        if self.dropped or self.unstorable or self.lost:
            log.warning("audit_writer_stopped", dropped=self.dropped, unstorable=self.unstorable, lost=self.lost)

    async def _cancel_task(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        delay = self.interval
        due = [time.monotonic()] * len(self.periodic)
        while True:
            await asyncio.sleep(delay)
            try:
                await self.flush()
                delay = self.interval
            except Exception as exc:  # noqa: BLE001 - never let the writer die; rows stay buffered
                self._fail(exc)
                delay = backoff(delay, self.interval, self.backoff_max)
                log.warning("audit_flush_failed", pending=self.pending, dropped=self.dropped,
                            failures=self.failures, error=self.last_error, retry_in_s=round(delay, 2))
            if self.dropped != self._logged_dropped:
                log.warning("audit_buffer_full", dropped=self.dropped - self._logged_dropped,
                            dropped_total=self.dropped, max_rows=self.max_buffer)
                self._logged_dropped = self.dropped
            for i, (every, callback) in enumerate(self.periodic):
                if time.monotonic() >= due[i]:
                    due[i] = time.monotonic() + every
                    try:
                        await callback()
                    except Exception as exc:  # noqa: BLE001 - retried at the next period
                        log.warning("audit_periodic_failed", task=getattr(callback, "__name__", "?"),
                                    error=_describe(exc))

    def _fail(self, exc: BaseException) -> None:
        self.failures += 1
        self.last_error, self.last_error_at = _describe(exc), datetime.now(timezone.utc)

    async def flush(self) -> int:
        """Store everything buffered; raises (rows kept, oldest first) if the database fails."""
        async with self._lock:
            return await self._flush_locked()

    async def _flush_locked(self) -> int:
        stored = 0
        while self._buffer:
            batch = [self._buffer.popleft() for _ in range(min(self.batch_rows, len(self._buffer)))]
            self._inflight = len(batch)
            try:
                stored += await self._store(batch)
            finally:
                self._inflight = 0
        self.failures = 0
        for callback in self.on_flush:
            await callback()
        return stored

    async def _store(self, batch: list[Row]) -> int:
        """COPY the batch; on a refused row, bisect so every other row is stored.

        After 3 failed flushes in a row, a database error that looks transient is bisected too
        (only a lost connection is not): if it was caused by a row after all, that row must not
        hold the others back forever; if not, the bisection costs log2(batch) failed COPYs."""
        chunks, stored = [batch], 0
        suspect = self.failures >= 3
        try:
            async with self.db.connection() as conn:
                while chunks:
                    chunk = chunks[-1]
                    try:
                        await self._copy(conn, chunk)
                    except Exception as exc:
                        if _transient(exc) and (not suspect or isinstance(exc, CONNECTION_ERRORS)):
                            raise
                        if len(chunk) > 1:
                            mid = len(chunk) // 2
                            chunks[-1:] = [chunk[mid:], chunk[:mid]]  # first half on top: keeps the order
                            continue
                        stored += await self._store_minimal(conn, chunk[0], exc)
                    else:
                        stored += len(chunk)
                    chunks.pop()
        except BaseException:
            rest = [row for chunk in reversed(chunks) for row in chunk]
            self._buffer.extendleft(reversed(rest))  # retry next time, oldest first
            while len(self._buffer) > self.max_buffer:
                self._buffer.popleft()
                self.dropped += 1
            raise
        return stored

    async def _copy(self, conn: asyncpg.Connection, rows: list[Row]) -> None:
        await conn.copy_records_to_table("audit_log", schema_name="global", columns=_COLUMNS, records=rows)

    async def _store_minimal(self, conn: asyncpg.Connection, row: Row, exc: BaseException) -> int:
        log.warning("audit_row_unstorable", tool=clean_text(str(row[5]), 100), error=_describe(exc))
        try:
            await self._copy(conn, [minimal_row(row, _describe(exc))])
        except Exception as again:
            if _transient(again):
                raise
            self.lost += 1
            log.error("audit_row_lost", tool=clean_text(str(row[5]), 100), error=_describe(again))
            return 0
        self.unstorable += 1
        return 1
