"""THE scoping point's transaction (`Database.tenant_scope` returns a `TenantScope`).

One class, not a stack of generator context managers: it runs once per tool call and its own
Python cost shows in every call. Round trips per scoped transaction: BEGIN with the enter call
(one simple query), the caller's statements, COMMIT with the session reset (one simple query);
the release then sends nothing (dbconn.ResettingConnection).

The enter call is built from values that cannot carry SQL: a slug that passed
`db.validate_slug` (a-z, 0-9, _) and the tenant's id as the registry gave it (a UUID). Both modes
check the pair (slug, id) and the status inside the transaction, so the per-process id cache
(`TenantIds`) can only make a call fail, never reach another tenant: a stale id (a tenant deleted
and created again under its slug) fails like an unknown tenant and is looked up once more.
- schema mode: ``support_mcp_enter_tenant(slug, id, allow)`` (sql/global/0017) sets search_path and
  role for the transaction;
- rls mode: ``support_mcp_enter_shared(slug, id, allow)`` (sql/shared/0001) sets the
  transaction-local ``support_mcp.tenant`` the policies compare with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn
from uuid import UUID

import asyncpg

from . import dberrors
from .dberrors import UNKNOWN_TENANT
from .dbconn import release
from .errors import NotFound, UpstreamUnavailable
from .logging import get_logger

if TYPE_CHECKING:
    from .db import Database

log = get_logger("support_mcp.db")

_TENANT_ID_SQL = "SELECT id FROM public.tenants WHERE slug = $1"
_ID_CACHE_LIMIT = 100_000
_ENTER_FN = {"schema": "public.support_mcp_enter_tenant", "rls": "public.support_mcp_enter_shared"}


@dataclass(frozen=True)
class Scope:
    """A tenant's open transaction: the connection and the tenant's id."""

    conn: asyncpg.Connection
    tenant_id: Any
    slug: str


class TenantIds:
    """slug -> tenant id, per process (ids never change; the enter call re-checks the pair)."""

    def __init__(self) -> None:
        self._ids: dict[str, UUID] = {}

    def get(self, slug: str) -> UUID | None:
        return self._ids.get(slug)

    async def lookup(self, conn: asyncpg.Connection, slug: str) -> UUID:
        tenant_id = await conn.fetchval(_TENANT_ID_SQL, slug)
        if tenant_id is None:
            raise NotFound(f"unknown tenant '{slug}'")
        if not isinstance(tenant_id, UUID):  # checked once here, not per call: enter_sql quotes it
            raise TypeError(f"tenant id of '{slug}' is not a UUID")
        if len(self._ids) >= _ID_CACHE_LIMIT:
            self._ids.clear()
        self._ids[slug] = tenant_id
        return tenant_id

    def forget(self, slug: str) -> None:
        self._ids.pop(slug, None)


def enter_sql(isolation: str, slug: str, tenant_id: UUID, allow_suspended: bool) -> str:
    """The enter call as literal SQL (see the module docstring for why literals are safe here)."""
    return (f"SELECT {_ENTER_FN[isolation]}('{slug}', '{tenant_id}', "
            f"{'true' if allow_suspended else 'false'})")


async def enter_open_transaction(db: Database, conn: asyncpg.Connection, slug: str, allow_suspended: bool) -> Scope:
    """The enter call inside a transaction someone else opened (provisioning, restore, batched
    deletion): the same function as the scope's, with parameters (no BEGIN to ride with)."""
    tenant_id = await db.tenant_ids.lookup(conn, slug)
    await conn.execute(f"SELECT {_ENTER_FN[db.isolation]}($1, $2, $3)", slug, tenant_id, allow_suspended)
    return Scope(conn, tenant_id, slug)


async def acquire(pool: asyncpg.Pool | None) -> Any:
    """A connection of the request path's pool; a failure as a SupportError."""
    if pool is None:
        raise UpstreamUnavailable("the database is not started")
    try:
        return await pool.acquire()
    except Exception as exc:
        raise_mapped(exc)


class _Retry(Exception):
    """The enter call failed in a way a second attempt on a fresh connection can fix."""


class TenantScope:
    """``async with db.tenant_scope(slug) as scope``: one transaction confined to one tenant."""

    __slots__ = ("_db", "_slug", "_allow", "_conn", "_tx")

    def __init__(self, db: Database, slug: str, allow_suspended: bool) -> None:
        self._db, self._slug, self._allow = db, slug, allow_suspended
        self._conn: Any = None
        self._tx: Any = None

    async def __aenter__(self) -> Scope:
        for attempt in (1, 2):
            try:
                return await self._enter(attempt)
            except _Retry:
                continue
        raise AssertionError("unreachable")  # the second attempt never raises _Retry

    async def _enter(self, attempt: int) -> Scope:
        db, slug = self._db, self._slug
        pool = db.pool
        conn = await acquire(pool)
        cached = db.tenant_ids.get(slug) if attempt == 1 else None
        try:
            tenant_id = cached or await db.tenant_ids.lookup(conn, slug)
            tx = conn.transaction()
            conn.begin_with(enter_sql(db.isolation, slug, tenant_id, self._allow))
            await tx.start()
            if conn.begin_pending():  # fail closed: never a transaction without its enter statement
                raise RuntimeError("the transaction started without its enter statement")
        except BaseException as exc:
            # a connection lost during BEGIN is already back in its pool, its proxy detached (any
            # attribute raises AttributeError): nothing to discard, the original error is the answer
            discard = getattr(conn, "discard_failed_begin", None)
            if discard is not None:
                await discard()
            stale_id = attempt == 1 and cached is not None and getattr(exc, "sqlstate", None) == UNKNOWN_TENANT
            stale_role = attempt == 1 and _stale_membership(exc, db.isolation)
            if stale_id:
                db.tenant_ids.forget(slug)  # deleted, or deleted and created again: look it up once more
            elif stale_role:
                # PostgreSQL 16 caches a backend's role memberships, and a membership granted while
                # that cache was being rebuilt can stay missing from it (seen: 2 of 2,100 tenants
                # provisioned 4 at a time). A new backend reads the catalog afresh: drop this one.
                log.warning("db_stale_role_membership", tenant=slug)
                conn.terminate()
            await release(pool, conn)
            if stale_id or stale_role:
                raise _Retry from exc
            if isinstance(exc, Exception):
                raise_mapped(exc, slug)
            raise
        conn.commit_with_reset()
        self._conn, self._tx = conn, tx
        return Scope(conn, tenant_id, slug)

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        conn, tx, pool = self._conn, self._tx, self._db.pool
        self._conn = self._tx = None
        try:
            if exc is not None:
                try:
                    await tx.rollback()
                except Exception:  # noqa: BLE001 - a dead connection rolls back by itself; the body's error is the answer
                    pass
                if isinstance(exc, Exception):
                    raise_mapped(exc, self._slug)
                return
            try:
                await tx.commit()
            except dberrors.CONNECTION_ERRORS as err:
                raise UpstreamUnavailable(
                    "the database connection was lost while committing: the change may or may not have "
                    "been saved; check before retrying") from err
            except Exception as err:
                raise_mapped(err, self._slug)
        finally:
            await release(pool, conn)


def _stale_membership(exc: BaseException, isolation: str) -> bool:
    return (isolation == "schema" and isinstance(exc, asyncpg.InsufficientPrivilegeError)
            and "set role" in str(exc))


def raise_mapped(exc: Exception, tenant: str | None = None) -> NoReturn:
    """Raise the SupportError for a database exception (the exception itself if it is none)."""
    mapped = dberrors.translate(exc, tenant=tenant)
    if isinstance(exc, asyncpg.InternalClientError):  # mapped as a lost connection: keep it visible
        log.warning("db_connection_broken", error=str(exc)[:200])
    if mapped is None or mapped is exc:
        raise exc
    raise mapped from exc
