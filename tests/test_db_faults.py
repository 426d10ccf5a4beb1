"""The scoping point under connection faults (issue 10, finding 6): a transaction's outcome is
what the caller sees. Giving a connection back never raises; an error raised inside the
transaction is never replaced by the failure of a ROLLBACK on a dead connection; a connection lost
during COMMIT says the outcome is unknown. Faults are real: the server terminates the backend."""

from __future__ import annotations

import asyncio

import pytest

from support_mcp.db import Database
from support_mcp.errors import InvalidInput


_TRAP = ("CREATE OR REPLACE FUNCTION pg_advisory_unlock_all() RETURNS void LANGUAGE plpgsql "
         "AS $$BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); END$$")


async def _arm_release_trap(conn, db: Database) -> None:  # noqa: ANN001 - the scope's connection
    """Plant a function named like the first one of asyncpg's own reset (`SELECT
    pg_advisory_unlock_all()`) that terminates the backend: in the tenant's schema (RLS mode, where
    the app role may create nothing: in a schema the admin makes for it), first on the session's
    search_path."""
    if db.isolation == "rls":
        schema = "fault_trap"
        async with db.admin_scope() as admin:
            await admin.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}; SET LOCAL search_path = {schema}")
            await admin.execute(_TRAP)
            await admin.execute(f"GRANT USAGE ON SCHEMA {schema} TO PUBLIC")
    else:
        schema = await conn.fetchval("SELECT current_schema()")
        await conn.execute(_TRAP)
        await conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO PUBLIC')
    await conn.execute("SELECT set_config('search_path', $1, false)", f'"{schema}", pg_catalog')


async def _backend_alive(db: Database, pid: int) -> bool:
    async with db.connection() as conn:
        return bool(await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid))


async def _wait_gone(db: Database, pid: int) -> None:
    for _ in range(3000):  # a hang guard (60 s): the server ends a terminated backend within milliseconds
        if not await _backend_alive(db, pid):
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"backend {pid} is still alive")


async def test_a_reset_function_planted_by_tenant_sql_never_runs(db: Database, make_tenant) -> None:
    """SQL inside a tenant transaction plants a function named like the first one of asyncpg's
    reset (`pg_advisory_unlock_all`) and puts its schema before pg_catalog on the session's
    search_path. The reset that follows (folded into the scoping point's COMMIT; on release for
    other connections) runs RESET ALL first and names pg_catalog's function, so the planted one never
    runs (it ran before, as the app role, right after COMMIT)."""
    slug = await make_tenant("rel")
    async with db.tenant_scope(slug) as s:
        await s.conn.execute("INSERT INTO customers (name, email) VALUES ('Kept', 'kept@example.com')")
        pid = s.conn.get_server_pid()
        await _arm_release_trap(s.conn, db)
    async with db.tenant_scope(slug) as s:
        assert await s.conn.fetchval("SELECT count(*) FROM customers WHERE email = 'kept@example.com'") == 1
    assert await _backend_alive(db, pid), "the planted function ran (and ended the backend)"
    async with db.connection() as conn:  # a connection of the pool outside a scope: the same reset
        await conn.execute("SELECT set_config('search_path', 'fault_trap, pg_catalog', false)")
        other = conn.get_server_pid()
    assert await _backend_alive(db, other)


async def test_giving_a_connection_back_never_raises(db: Database) -> None:
    """The server ends a connection's backend before it goes back to the pool: its reset fails,
    the pool drops it (logged), the caller's block still ends normally, the pool recovers."""
    async with db.connection() as conn:
        pid = conn.get_server_pid()
        async with db.admin_scope() as admin:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        await _wait_gone(db, pid)
    for _ in range(3):
        async with db.connection() as conn:
            assert await conn.fetchval("SELECT 1") == 1
            assert conn.get_server_pid() != pid


async def test_an_error_inside_is_not_masked_by_a_dead_connection(db: Database, make_tenant) -> None:
    slug = await make_tenant("rel")
    with pytest.raises(InvalidInput, match="the caller's own error"):
        async with db.tenant_scope(slug) as s:
            await s.conn.execute("INSERT INTO customers (name, email) VALUES ('Gone', 'gone@example.com')")
            pid = s.conn.get_server_pid()
            async with db.connection() as other:
                assert await other.fetchval("SELECT pg_terminate_backend($1)", pid)
            await _wait_gone(db, pid)
            raise InvalidInput("the caller's own error")
    async with db.tenant_scope(slug) as s:
        assert await s.conn.fetchval("SELECT count(*) FROM customers WHERE email = 'gone@example.com'") == 0


async def test_a_connection_lost_during_commit_says_the_outcome_is_unknown(db: Database, make_tenant) -> None:
    from support_mcp.errors import UpstreamUnavailable

    slug = await make_tenant("rel")
    with pytest.raises(UpstreamUnavailable, match="may or may not have been saved"):
        async with db.tenant_scope(slug) as s:
            await s.conn.execute("INSERT INTO customers (name, email) VALUES ('Maybe', 'maybe@example.com')")
            pid = s.conn.get_server_pid()
            async with db.connection() as other:
                assert await other.fetchval("SELECT pg_terminate_backend($1)", pid)
            await _wait_gone(db, pid)
