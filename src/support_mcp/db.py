"""PostgreSQL access: the pool and THE scoping point.

`Database.tenant_scope(slug)` is the only way code reaches a tenant's tables: it opens a
transaction whose BEGIN carries the enter call (`public.support_mcp_enter_tenant`, which refuses
unknown and suspended tenants and sets search_path and role with is_local = true; in RLS mode
`support_mcp_enter_shared`, which sets the transaction-local tenant) and yields the connection
(scoping.TenantScope). Nothing else in the code sets search_path, role or the tenant.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any

import aiosql
import asyncpg

from . import dberrors, isolation, privileges
from .dbconn import ResettingConnection, init_connection, release, transaction
from .scoping import Scope, TenantIds, TenantScope, acquire, enter_open_transaction
from .scoping import raise_mapped as _reraise
from .errors import InvalidInput, NotPermitted, SupportError, UpstreamUnavailable
from .logging import get_logger
from .settings import Settings

log = get_logger(__name__)

SLUG_RE = re.compile(r"^[a-z_][a-z0-9_]{0,39}$")
RESERVED_SLUGS = frozenset(
    {"public", "global", "information_schema", "default", "postgres", "template0",
     "template1", "admin", "root", "system", "support_mcp", "tenant", "tenants", "all", "none"}
)

_DBTAG_SQL = "SELECT left(md5(current_database()), 8)"
_CAN_CREATE_ROLES_SQL = "SELECT rolsuper OR rolcreaterole FROM pg_catalog.pg_roles WHERE rolname = current_user"
_APP_ROLE_SQL = """SELECT rolname AS name,
       rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls OR rolinherit AS privileged
FROM pg_catalog.pg_roles WHERE rolname = current_user"""
_NO_ADMIN = ("this needs the database owner: set SUPPORT_MCP_DATABASE_ADMIN_URL "
             "(this process has only the app role's URL)")
APPLICATION_NAME = "support-mcp"  # visible in pg_stat_activity

queries: Any = aiosql.from_path(files("support_mcp.sql") / "queries", "asyncpg")


def validate_slug(slug: object) -> str:
    """Refuse a bad slug before any SQL is built. Returns the slug."""
    if not isinstance(slug, str) or not slug:
        raise InvalidInput("tenant slug is empty: use 1-40 characters from a-z, 0-9 and _")
    if len(slug) > 40:
        raise InvalidInput(f"tenant slug is {len(slug)} characters long; the limit is 40")
    if not SLUG_RE.match(slug):
        raise InvalidInput(
            f"invalid tenant slug {slug[:60]!r}: use only lowercase a-z, digits 0-9 and _, "
            "not starting with a digit"
        )
    if slug in RESERVED_SLUGS or slug.startswith("pg_"):
        raise InvalidInput(f"tenant slug '{slug}' is reserved; choose another")
    return slug


class Database:
    """The two pools. `pool` is the request path's: a non-superuser, NOINHERIT app role that
    owns nothing (sql/privileges). `admin_pool` is the owner/admin's, for DDL and operator
    work (`admin_scope`); None when this process was given only the app role's URL.

    URLs: with SUPPORT_MCP_DATABASE_ADMIN_URL, that is the admin and SUPPORT_MCP_DATABASE_URL
    the app role. Otherwise the one URL (or the embedded server) is the admin if its user can
    create roles, and the request path connects as `db_app_role` on the same server (created
    and granted at start); if it cannot, it is the app role's and no DDL runs here.

    `prepare` runs as the admin once the admin pool is open, before the app pool opens: the
    composition root passes `migrations.apply_global` (global migrations, then the app role and
    its grants) through `migrations.database(settings)`; this module never imports migrations."""

    def __init__(self, settings: Settings, *, prepare: Callable[[Database], Awaitable[object]] | None = None) -> None:
        self.settings = settings
        self.prepare = prepare
        self.dsn: str | None = None  # the request path's (app role's) URL
        self.admin_dsn: str | None = None
        self.pool: asyncpg.Pool | None = None
        self.admin_pool: asyncpg.Pool | None = None
        self.app_role = ""
        self.app_password: str | None = None  # set on the app role at start (one URL only)
        self.dbtag = ""  # distinguishes role names of databases sharing one cluster
        self.isolation = settings.isolation  # as recorded in the database (checked at start)
        self.tenant_ids = TenantIds()  # slug -> id, for the scoping point (scoping.py)

    async def start(self, *, app: bool = True) -> Database:
        """Open the pools; as the admin, run `prepare` (the global migrations and the app role's
        grants). app=False: the admin pool only (`support-mcp db grants --apply`)."""
        s = self.settings
        given = s.database_admin_url or s.database_url
        if given is not None:
            url = given.get_secret_value()
        else:
            from .embedded import start_embedded

            url = await asyncio.to_thread(start_embedded, s.data_dir, s.embedded_database)
        try:
            await self._open(url)
            if self.admin_pool is not None:
                async with self.admin_pool.acquire() as conn:
                    self.dbtag = await conn.fetchval(_DBTAG_SQL)
                if self.prepare is not None:
                    await self.prepare(self)  # migrations.apply_global also creates and grants the app role
            elif not app:
                raise NotPermitted(_NO_ADMIN)
            if app:
                if self.pool is None:
                    self.pool = await self._create_pool(self.dsn, s.db_pool_min_size, s.db_pool_max_size)
                async with self.pool.acquire() as conn:
                    role = await conn.fetchrow(_APP_ROLE_SQL)
                    self.dbtag = self.dbtag or await conn.fetchval(_DBTAG_SQL)
                    recorded = await isolation.recorded_mode(conn)
                if recorded != s.isolation:
                    raise isolation.mismatch(recorded, s.isolation)
        except Exception as exc:
            await self.close()
            if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError) and self.app_role:
                raise UpstreamUnavailable(
                    f"cannot log in as the app role '{self.app_role}': allow it without a password, set "
                    "SUPPORT_MCP_DB_APP_PASSWORD, or give its URL (see `support-mcp db grants`)") from exc
            if isinstance(exc, SupportError) or dberrors.translate(exc) is None:
                raise
            raise UpstreamUnavailable(
                "cannot connect to PostgreSQL; check SUPPORT_MCP_DATABASE_URL"
            ) from exc
        if app and role["privileged"]:
            await self.close()
            raise NotPermitted(
                f"the request path's role '{role['name']}' is a superuser, can create roles or databases, "
                "replicates, bypasses RLS or inherits privileges: give SUPPORT_MCP_DATABASE_URL a dedicated "
                "role (see `support-mcp db grants`)")
        return self

    async def _open(self, url: str) -> None:
        """Decide the admin and app URLs (see the class docstring); opens the admin pool."""
        s = self.settings
        self.admin_pool = await self._create_pool(url, 0, 4)
        if s.database_admin_url is None and not await self.admin_pool.fetchval(_CAN_CREATE_ROLES_SQL):
            # the one URL names an unprivileged role: it is the app role's; no DDL from here
            await self.admin_pool.close()
            self.admin_pool = None
            self.dsn = url
            self.pool = await self._create_pool(url, s.db_pool_min_size, s.db_pool_max_size)
            self.app_role = await self.pool.fetchval("SELECT current_user")
            log.info("database_no_admin", hint="migrations and provisioning need SUPPORT_MCP_DATABASE_ADMIN_URL")
            return
        self.admin_dsn = url
        if s.database_admin_url is not None and s.database_url is not None:
            self.dsn = s.database_url.get_secret_value()
            self.app_role = privileges.url_user(self.dsn)
        else:
            self.app_role = s.db_app_role
            self.app_password = s.db_app_password.get_secret_value() if s.db_app_password else None
            self.dsn = privileges.as_user(url, self.app_role, self.app_password)

    async def _create_pool(self, dsn: str | None, min_size: int, max_size: int) -> asyncpg.Pool:
        s = self.settings
        return await asyncpg.create_pool(
            dsn,
            min_size=min(min_size, max_size),
            max_size=max_size,
            max_queries=s.db_pool_max_queries,
            max_inactive_connection_lifetime=s.db_pool_max_idle_seconds,
            command_timeout=s.db_command_timeout,
            timeout=s.db_connect_timeout,
            init=init_connection,
            server_settings={"application_name": APPLICATION_NAME},
            connection_class=ResettingConnection,
        )

    async def close(self) -> None:
        for pool in (self.pool, self.admin_pool):
            if pool is not None:
                await pool.close()
        self.pool = self.admin_pool = None

    async def __aenter__(self) -> Database:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection with no tenant scope (registry and global tables only)."""
        pool = self.pool
        conn = await acquire(pool)
        try:
            yield conn
        except Exception as exc:
            _reraise(exc)
        finally:
            await release(pool, conn)

    @asynccontextmanager
    async def admin_scope(self) -> AsyncIterator[asyncpg.Connection]:
        """A transaction as the owner/admin role: DDL, provisioning, key management, operator reads.
        Never on the request path."""
        if self.admin_pool is None:
            raise NotPermitted(_NO_ADMIN)
        try:
            async with self.admin_pool.acquire() as conn:
                async with conn.transaction():
                    yield conn
        except Exception as exc:
            _reraise(exc)

    @asynccontextmanager
    async def global_scope(self) -> AsyncIterator[asyncpg.Connection]:
        """A transaction on the app role for registry and `global` tables (schema-qualified SQL)."""
        async with self.connection() as conn, transaction(conn):
            yield conn

    def tenant_scope(self, slug: str, *, allow_suspended: bool = False) -> TenantScope:
        """THE scoping point: one transaction confined to one tenant's schema and role (schema
        mode) or to its rows (RLS mode). ``async with db.tenant_scope(slug) as scope``."""
        return TenantScope(self, validate_slug(slug), allow_suspended)

    async def enter_in_transaction(
        self, conn: asyncpg.Connection, slug: str, *, allow_suspended: bool = True
    ) -> Scope:
        """Scope an already-open transaction (provisioning, restore) to a tenant."""
        validate_slug(slug)
        if not conn.is_in_transaction():
            raise RuntimeError("enter_in_transaction needs an open transaction")
        try:
            return await enter_open_transaction(self, conn, slug, allow_suspended)
        except Exception as exc:
            _reraise(exc, slug)
