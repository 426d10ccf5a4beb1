"""Least privilege: the request path's role cannot escape the scoping point into a superuser.

Inside a tenant scope, arbitrary SQL that drops the tenant role (RESET ROLE, SET ROLE to the
admin, set_config('role', session_user)) lands on the app role, which reads no tenant schema,
no webhook secret and no key hash."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from pydantic import SecretStr

from support_mcp import keys, migrations, tenancy
from support_mcp.db import Database
from support_mcp.errors import NotPermitted
from support_mcp.payments.gateway import StripeGateway

ESCAPES = {
    "reset_role": "RESET ROLE",
    "set_role_admin": "SET ROLE {admin}",
    "set_config_session_user": "SELECT set_config('role', session_user, true)",
}
READS = {
    "other_tenant_table": "SELECT * FROM tenant_{b}.customers",
    "webhook_secret": "SELECT stripe_webhook_secret FROM public.tenants",
    "api_keys": 'SELECT * FROM "global".api_keys',
    "audit_log": 'SELECT * FROM "global".audit_log',
}


async def _superuser(db: Database) -> str:
    async with db.connection() as conn:
        return await conn.fetchval("SELECT rolname FROM pg_roles WHERE rolsuper ORDER BY rolname LIMIT 1")


@pytest.mark.parametrize("read", [pytest.param(r, marks=pytest.mark.schema_only) if r == "other_tenant_table" else r
                                  for r in READS])
@pytest.mark.parametrize("escape", ESCAPES)
async def test_dropping_the_tenant_role_reads_nothing(db: Database, make_tenant, make_key, escape: str,
                                                      read: str) -> None:
    a, b = await make_tenant("pa"), await make_tenant("pb", stripe_webhook_secret="whsec_privtest")
    await make_key(tenants=[b])
    async with db.tenant_scope(b) as s:
        await s.conn.execute("INSERT INTO customers (name) VALUES ('victim')")
    escape_sql = ESCAPES[escape].format(admin=await _superuser(db))
    with pytest.raises(NotPermitted, match="permission denied"):
        async with db.tenant_scope(a) as s:
            await s.conn.execute(escape_sql)
            await s.conn.fetch(READS[read].format(b=b))


async def test_request_pool_role_is_unprivileged(db: Database) -> None:
    async with db.connection() as conn:
        row = await conn.fetchrow(
            "SELECT r.rolname, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolinherit, r.rolbypassrls,"
            " current_setting('application_name') AS app_name"
            " FROM pg_roles r WHERE r.rolname = current_user")
        owned = await conn.fetchval(
            "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)")
    async with db.admin_scope() as conn:
        assert row["rolname"] == db.app_role != await conn.fetchval("SELECT session_user")
    assert not (row["rolsuper"] or row["rolcreaterole"] or row["rolcreatedb"] or row["rolinherit"]
                or row["rolbypassrls"])
    assert owned == 0
    assert row["app_name"] == "support-mcp"
    async with db.admin_scope() as conn:
        assert await conn.fetchval("SELECT current_setting('application_name')") == "support-mcp"


@pytest.mark.schema_only
async def test_tenant_membership_is_set_only(db: Database, make_tenant) -> None:
    a = await make_tenant("pm")
    async with db.connection() as conn:
        # a member (may SET ROLE) without the role's privileges
        assert await conn.fetchval("SELECT pg_has_role(current_user, $1, 'MEMBER')", f"tn_{db.dbtag}_{a}")
        assert not await conn.fetchval("SELECT pg_has_role(current_user, $1, 'USAGE')", f"tn_{db.dbtag}_{a}")
        assert not await conn.fetchval("SELECT has_schema_privilege($1, 'USAGE')", f"tenant_{a}")


async def test_secrets_reach_the_request_path_only_through_functions(db: Database, make_tenant, make_key) -> None:
    slug = await make_tenant("ps", stripe_account_id="acct_privfn1", stripe_webhook_secret="whsec_privfn")
    key = await make_key(tenants=[slug], scopes=["read"])
    # what one request needs still works on the app role: key verification (+ last_used_at), the secret
    principal = await keys.KeyVerifier(db, ttl=0).principal(key)
    assert principal.tenants == frozenset({slug})
    await keys.KeyVerifier(db).flush_used()
    gateway = StripeGateway(db.settings, db)
    acct = await gateway.registry(slug)
    assert acct is not None and acct.webhook_secret == "whsec_privfn"
    # ... but not the tables, and a tenant role may not call the functions at all (RLS mode: a scope
    # runs as the app role, which may; the request path runs named queries only)
    async with db.connection() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch('SELECT key_hash FROM "global".api_keys')
    if db.isolation == "rls":
        return
    with pytest.raises(NotPermitted):
        async with db.tenant_scope(slug) as s:
            await s.conn.fetch("SELECT * FROM public.support_mcp_tenant_stripe($1)", slug)


async def test_app_url_alone_and_with_admin_url(db: Database, make_tenant) -> None:
    slug = await make_tenant("pu")
    s = db.settings
    # the app role's URL alone: no admin here, the scoping point works
    app_only = await migrations.database(s.model_copy(update={"database_url": SecretStr(db.dsn), "database_admin_url": None})).start()
    try:
        assert app_only.admin_pool is None and app_only.app_role == db.app_role
        async with app_only.tenant_scope(slug) as sc:
            assert await sc.conn.fetchval("SELECT count(*) FROM customers") == 0
        with pytest.raises(NotPermitted, match="SUPPORT_MCP_DATABASE_ADMIN_URL"):
            async with app_only.admin_scope():
                pass
    finally:
        await app_only.close()
    # two URLs: the admin's for DDL, the app role's for requests
    both = await migrations.database(s.model_copy(update={"database_url": SecretStr(db.dsn),
                                                     "database_admin_url": SecretStr(db.admin_dsn)})).start()
    try:
        async with both.connection() as conn:
            assert await conn.fetchval("SELECT current_user") == db.app_role
    finally:
        await both.close()
    # refuses to serve requests through the admin
    with pytest.raises(NotPermitted, match="superuser, can create roles"):
        await migrations.database(s.model_copy(update={"database_url": SecretStr(db.admin_dsn),
                                               "database_admin_url": SecretStr(db.admin_dsn)})).start()


def test_rendered_sql_names_the_role_and_never_grants_the_secrets() -> None:
    from support_mcp import privileges

    sql = privileges.render("app_x")
    assert 'CREATE ROLE "app_x" LOGIN NOINHERIT' in sql and "{app" not in sql
    grants = privileges.render("app_x", role=False)
    assert "CREATE ROLE" not in grants and 'ON "global".api_keys' not in grants
    assert "stripe_webhook_secret" not in grants.split("GRANT SELECT", 1)[1].split("ON public.tenants")[0]
    with pytest.raises(Exception, match="app role name"):
        privileges.render('x"; DROP ROLE postgres; --')


async def test_an_admin_that_is_no_superuser_runs_everything(db: Database) -> None:
    """The documented minimum for an external PostgreSQL: the admin owns the database and has
    CREATEROLE (PostgreSQL 15 and 16 differ here), the app role is created by `db grants`."""
    from support_mcp import privileges

    suffix = secrets.token_hex(4)
    owner, dbname = f"sm_owner_{suffix}", f"sm_owned_{suffix}"
    boot = await asyncpg.connect(db.admin_dsn)
    try:
        await boot.execute(f'CREATE ROLE "{owner}" LOGIN CREATEROLE')
        await boot.execute(f'CREATE DATABASE "{dbname}" OWNER "{owner}"')
        url = urlunsplit(urlsplit(privileges.as_user(db.admin_dsn, owner, None))._replace(path=f"/{dbname}"))
        own = await migrations.database(db.settings.model_copy(update={"database_url": SecretStr(url),
                                                            "database_admin_url": None})).start()
        try:
            slug = f"own_{suffix}"
            await tenancy.create_tenant(own, slug, "Owned", stripe_webhook_secret="whsec_owned")
            key = (await keys.create_key(own, "k", tenants=[slug], all_tenants=False, scopes=["read"])).key
            assert (await keys.KeyVerifier(own, ttl=0).principal(key)).tenants == frozenset({slug})
            async with own.tenant_scope(slug) as s:
                if own.isolation == "rls":  # the owner of the shared tables is held to the policies (FORCE)
                    assert await s.conn.fetchval("SELECT current_setting('support_mcp.tenant')") == str(s.tenant_id)
                    await s.conn.execute("INSERT INTO customers (name) VALUES ('c')")
                else:
                    assert await s.conn.fetchval("SELECT current_user") == f"tn_{own.dbtag}_{slug}"
            with pytest.raises(NotPermitted):
                async with own.tenant_scope(slug) as s:
                    await s.conn.execute("RESET ROLE")
                    await s.conn.fetch('SELECT * FROM "global".api_keys')
            await tenancy.delete_tenant(own, slug)
        finally:
            await own.close()
    finally:
        await boot.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        tag = await boot.fetchval("SELECT left(md5($1), 8)", dbname)
        for (role,) in await boot.fetch("SELECT rolname FROM pg_roles WHERE rolname LIKE $1", f"tn\\_{tag}\\_%"):
            await boot.execute(f'DROP ROLE "{role}"')
        await boot.execute(f'DROP ROLE IF EXISTS "{owner}"')
        await boot.close()


@pytest.mark.schema_only
async def test_a_session_level_set_role_does_not_outlive_the_scope(db: Database, make_tenant) -> None:
    a, b = await make_tenant("pr"), await make_tenant("pr")
    async with db.tenant_scope(a) as s:
        await s.conn.execute(f'SET ROLE "tn_{db.dbtag}_{b}"')  # not LOCAL: survives the commit
        await s.conn.execute("SELECT set_config('search_path', 'pg_catalog', false)")
    # every pooled connection (the one above among them) is back to the app role
    assert db.pool is not None
    held = [await db.pool.acquire() for _ in range(db.pool.get_max_size())]
    try:
        back = {await c.fetchval("SELECT current_user = session_user") for c in held}
    finally:
        for c in held:
            await db.pool.release(c)
    assert back == {True}
