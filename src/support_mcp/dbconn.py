"""How a pooled connection lives: its codecs, its reset on release, and a transaction whose outcome
the caller sees exactly (used by db.Database, the pools and the scoping point)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from . import dberrors
from .errors import UpstreamUnavailable
from .logging import get_logger

log = get_logger("support_mcp.db")


# The session reset when a connection goes back to the pool. asyncpg's own (RESET ALL and the
# rest) leaves a session-level SET ROLE in place (SQL run inside a tenant transaction could leave
# the connection as another role): RESET ROLE too. RESET ALL comes first and the function is
# schema-qualified, so a function that SQL in a tenant transaction planted under that name, with a
# session search_path putting it before pg_catalog, never runs here (as the app role).
RESET_SQL = "RESET ALL;\nRESET ROLE;\nSELECT pg_catalog.pg_advisory_unlock_all();\nCLOSE ALL;\nUNLISTEN *;"


class ResettingConnection(asyncpg.Connection):
    """A pooled connection whose reset on release is RESET_SQL.

    The scoping point saves two round trips per transaction: its enter statement rides with
    asyncpg's plain ``BEGIN;`` (`begin_with`), and the reset rides with its ``COMMIT;``
    (`commit_with_reset`), after which the pool's release sends nothing."""

    _begin_with: str | None = None
    _reset_on_commit = False
    _was_reset = False

    def get_reset_query(self) -> str:
        was_reset, self._was_reset, self._reset_on_commit = self._was_reset, False, False
        return "" if was_reset else RESET_SQL

    def begin_with(self, sql: str | None) -> None:
        """The next top-level BEGIN (asyncpg's Transaction.start) carries `sql` in the same simple
        query: one round trip instead of two (the scoping point; `sql` is built from checked
        values only)."""
        self._begin_with = sql

    def commit_with_reset(self) -> None:
        """The next top-level COMMIT also resets the session (RESET_SQL) in its round trip,
        and the pool's reset on release then sends nothing. For a transaction whose connection goes
        back to the pool right after its COMMIT (the scoping point): a failed COMMIT runs none of
        the reset, and the release resets as usual."""
        self._reset_on_commit = True

    async def execute(self, query: str, *args: object, timeout: float | None = None) -> str:
        if not args:
            if self._begin_with is not None and query == "BEGIN;":
                query, self._begin_with = query + " " + self._begin_with, None
            elif self._reset_on_commit and query == "COMMIT;":
                self._reset_on_commit = False
                status = await super().execute(query + "\n" + RESET_SQL, timeout=timeout)
                self._was_reset = True
                return status
        return await super().execute(query, *args, timeout=timeout)

    def begin_pending(self) -> bool:
        """True if the statement given to begin_with was not sent (asyncpg sent no plain BEGIN)."""
        return self._begin_with is not None

    async def discard_failed_begin(self) -> None:
        """After a folded BEGIN failed (its statement raised): roll back and forget asyncpg's failed
        top-level transaction, so the connection is clean for the pool or a retry."""
        self._begin_with = None
        with contextlib.suppress(Exception):
            await super().execute("ROLLBACK")
        self._top_xact = None  # asyncpg's Transaction.start leaves its failed self here


async def init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    # binary jsonb (version byte 1 + text) so COPY (the audit writer) can send it too
    await conn.set_type_codec("jsonb", schema="pg_catalog", format="binary",
                              encoder=lambda v: b"\x01" + json.dumps(v).encode(),
                              decoder=lambda b: json.loads(b[1:]))


async def release(pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
    """Give a connection back. By now the caller's transaction has committed or rolled back, and
    its outcome (or its own error) is what the caller must see: a failure to reset the connection
    (the server went away right after COMMIT, asyncpg's "cannot switch to state ...") is logged and
    the connection dropped, never raised."""
    try:
        await pool.release(conn)
    except Exception as exc:  # noqa: BLE001 - see above
        log.warning("db_release_failed", error=f"{type(exc).__name__}: {str(exc)[:200]}")
        with contextlib.suppress(Exception):
            conn.terminate()  # asyncpg already terminates on a failed reset; make sure


@asynccontextmanager
async def transaction(conn: asyncpg.Connection, *, enter: str | None = None) -> AsyncIterator[None]:
    """A transaction whose outcome the caller sees exactly: an error raised inside it is never
    replaced by a failing ROLLBACK (a dead connection rolls back by itself), and a connection lost
    during COMMIT says the outcome is unknown. `enter`: a statement sent with BEGIN, in its round
    trip (see ResettingConnection.begin_with)."""
    tx = conn.transaction()
    if enter is None:
        await tx.start()
    else:
        conn.begin_with(enter)
        try:
            await tx.start()
            if conn.begin_pending():  # fail closed: never a transaction without its enter statement
                raise RuntimeError("the transaction started without its enter statement")
        except BaseException:
            # a connection lost during BEGIN is already back in its pool, its proxy detached (any
            # attribute raises AttributeError): nothing to discard, the original error is the answer
            discard = getattr(conn, "discard_failed_begin", None)
            if discard is not None:
                await discard()
            raise
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            await tx.rollback()
        raise
    try:
        await tx.commit()
    except dberrors.CONNECTION_ERRORS as exc:
        raise UpstreamUnavailable(
            "the database connection was lost while committing: the change may or may not have been "
            "saved; check before retrying") from exc
