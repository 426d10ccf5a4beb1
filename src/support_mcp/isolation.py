"""The isolation mode (SUPPORT_MCP_ISOLATION), fixed per database when it is first set up.

- ``schema`` (default): a schema and a NOLOGIN role per tenant (sql/tenant, one ledger per
  schema). The scoping point calls ``support_mcp_enter_tenant``, which sets search_path and role.
- ``rls``: the tenant tables exist once, in schema ``shared`` (sql/shared, migrated once), with a
  ``tenant_id`` column and forced row-level security. The scoping point sends ``BEGIN`` and
  ``support_mcp_enter_shared`` in one round trip; that function checks the tenant and sets the
  transaction-local ``support_mcp.tenant`` the policies compare with.

The named queries (sql/queries) are the same in both modes. This module decides which mode a
database is in and holds the RLS half of the scoping point; db.Database calls it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg

from . import dberrors
from .dberrors import UNKNOWN_TENANT
from .dbconn import transaction
from .errors import NotFound, NotPermitted

if TYPE_CHECKING:
    from .db import Database

MODES = ("schema", "rls")
SHARED_LEDGER = "public.support_mcp_shared_migrations"
SHARED_SCHEMA = "shared"

_MODE_SQL = "SELECT mode FROM public.support_mcp_isolation"
_RECORD_SQL = """INSERT INTO public.support_mcp_isolation (mode)
SELECT CASE WHEN EXISTS (SELECT 1 FROM public.tenants) THEN 'schema' ELSE $1 END
ON CONFLICT (singleton) DO NOTHING"""
_TENANT_ID_SQL = "SELECT id FROM public.tenants WHERE slug = $1"
_ENTER_SHARED_SQL = "SELECT public.support_mcp_enter_shared($1, $2, $3)"
_ID_CACHE_LIMIT = 100_000


def mismatch(recorded: str, wanted: str) -> NotPermitted:
    return NotPermitted(
        f"this database was set up with SUPPORT_MCP_ISOLATION={recorded} but the server was started with "
        f"{wanted}: start it with SUPPORT_MCP_ISOLATION={recorded} (the mode is fixed per database; move "
        "tenants between databases with `support-mcp tenants backup` and `restore`)")


async def settle(conn: asyncpg.Connection, wanted: str) -> str:
    """As the admin, in the global migrations' transaction: record the mode on first setup (a
    database that already has tenants is 'schema'); refuse another mode. Returns the mode."""
    await conn.execute(_RECORD_SQL, wanted)
    recorded = await conn.fetchval(_MODE_SQL)
    if recorded != wanted:
        raise mismatch(recorded, wanted)
    return recorded


async def recorded_mode(conn: asyncpg.Connection) -> str:
    """The mode as the app role sees it ('schema' for a database from before modes existed)."""
    try:
        return await conn.fetchval(_MODE_SQL) or "schema"
    except asyncpg.UndefinedTableError:
        return "schema"


class SharedScopes:
    """The RLS half of the scoping point. Keeps slug -> tenant id (ids never change; the enter
    function re-checks the pair and the status in every transaction, so a stale entry can only
    fail, and is then looked up once more)."""

    def __init__(self) -> None:
        self._ids: dict[str, UUID] = {}

    async def _lookup(self, conn: asyncpg.Connection, slug: str) -> UUID:
        tenant_id = await conn.fetchval(_TENANT_ID_SQL, slug)
        if tenant_id is None:
            raise NotFound(f"unknown tenant '{slug}'")
        if len(self._ids) >= _ID_CACHE_LIMIT:
            self._ids.clear()
        self._ids[slug] = tenant_id
        return tenant_id

    def forget(self, slug: str) -> None:
        self._ids.pop(slug, None)

    @asynccontextmanager
    async def scope(self, db: Database, slug: str, allow_suspended: bool) -> AsyncIterator[tuple[Any, UUID]]:
        """(connection, tenant id) inside one transaction entered for `slug`. The slug has passed
        validate_slug and the id came from the registry, so both are safe as literals: BEGIN and
        the enter call travel as one simple query."""
        for attempt in range(2):
            cached = self._ids.get(slug) if attempt == 0 else None
            started = False
            async with db.connection() as conn:
                tenant_id = cached or await self._lookup(conn, slug)
                enter = (f"SELECT public.support_mcp_enter_shared('{slug}', '{tenant_id}', "
                         f"{'true' if allow_suspended else 'false'})")
                try:
                    async with transaction(conn, enter=enter):
                        started = True
                        yield conn, tenant_id
                    return
                except asyncpg.PostgresError as exc:
                    if not started and cached is not None and exc.sqlstate == UNKNOWN_TENANT:
                        self.forget(slug)  # deleted, or deleted and created again: look it up once more
                        continue
                    mapped = dberrors.translate(exc, tenant=slug)  # here, where the slug is known
                    if mapped is None:
                        raise
                    raise mapped from exc

    async def enter_in_transaction(self, conn: asyncpg.Connection, slug: str, allow_suspended: bool) -> UUID:
        tenant_id = await self._lookup(conn, slug)
        await conn.execute(_ENTER_SHARED_SQL, slug, tenant_id, allow_suspended)
        return tenant_id


# Every shared table holding tenant data, children before parents: the order deletion empties
# them in (tests/test_rls.py checks it names every table of schema "shared").
TENANT_TABLES = ("chunks", "documents", "messages", "ticket_stripe_refs", "stripe_refunds", "tickets",
                 "customers", "stripe_events", "stripe_quarantine", "ticket_numbers")


async def empty_tenant_rows(conn: asyncpg.Connection, *, keep: tuple[str, ...] = ()) -> None:
    """Inside the scoping point's transaction (RLS mode): delete the scoped tenant's rows from every
    shared table but `keep`, children first; never TRUNCATE (the tables hold every tenant). The
    counter row goes too, so ticket numbers restart at 1001 as a schema-mode TRUNCATE ... RESTART
    IDENTITY does."""
    for table in TENANT_TABLES:
        if table not in keep:
            await conn.execute(f"DELETE FROM {SHARED_SCHEMA}.{table} "
                               f"WHERE tenant_id = {SHARED_SCHEMA}.current_tenant()")


async def delete_shared_rows(db: Database, slug: str, *, batch: int = 5000) -> int:
    """Delete one tenant's rows from every shared table, `batch` rows per transaction (live
    requests never wait long behind it). Resumable: run it again after an interruption. As the
    admin, itself held to the policies (FORCE), so each batch enters the tenant through the scoping
    point (`Database.enter_in_transaction`; the tenant is suspended by then)."""
    total = 0
    for table in TENANT_TABLES:
        sql = (f"DELETE FROM {SHARED_SCHEMA}.{table} WHERE ctid = ANY (ARRAY("
               f"SELECT ctid FROM {SHARED_SCHEMA}.{table} WHERE tenant_id = {SHARED_SCHEMA}.current_tenant() "
               f"LIMIT $1))")
        while True:
            async with db.admin_scope() as conn:
                await db.enter_in_transaction(conn, slug, allow_suspended=True)
                status = await conn.execute(sql, batch)
            done = int(status.split()[-1])
            total += done
            if done < batch:
                break
    return total
