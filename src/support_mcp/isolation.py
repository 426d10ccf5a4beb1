"""The isolation mode (SUPPORT_MCP_ISOLATION), fixed per database when it is first set up.

- ``schema`` (default): a schema and a NOLOGIN role per tenant (sql/tenant, one ledger per
  schema). The scoping point calls ``support_mcp_enter_tenant``, which sets search_path and role.
- ``rls``: the tenant tables exist once, in schema ``shared`` (sql/shared, migrated once), with a
  ``tenant_id`` column and forced row-level security. The scoping point (scoping.py) sends
  ``BEGIN`` and ``support_mcp_enter_shared`` in one round trip; that function checks the tenant
  and sets the transaction-local ``support_mcp.tenant`` the policies compare with.

The named queries (sql/queries) are the same in both modes. This module decides which mode a
database is in, and empties a tenant's rows from the shared tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg

from .errors import NotPermitted

if TYPE_CHECKING:
    from .db import Database

MODES = ("schema", "rls")
SHARED_LEDGER = "public.support_mcp_shared_migrations"
SHARED_SCHEMA = "shared"

_MODE_SQL = "SELECT mode FROM public.support_mcp_isolation"
_RECORD_SQL = """INSERT INTO public.support_mcp_isolation (mode)
SELECT CASE WHEN EXISTS (SELECT 1 FROM public.tenants) THEN 'schema' ELSE $1 END
ON CONFLICT (singleton) DO NOTHING"""


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
