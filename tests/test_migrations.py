"""Tenant migrations: idempotent, resumable, failures stay in their schema."""

from __future__ import annotations

import pytest

from support_mcp import migrations
from support_mcp.db import Database
from support_mcp.errors import MigrationFailed


async def _versions(db: Database, slug: str) -> list[int]:
    async with db.tenant_scope(slug, allow_suspended=True) as s:
        return [r[0] for r in await s.conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")]


async def _has_column(db: Database, slug: str, column: str) -> bool:
    async with db.tenant_scope(slug, allow_suspended=True) as s:
        return await s.conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = 'tickets' AND column_name = $1)", column)


def test_migration_files_are_numbered_and_loadable() -> None:
    for kind in ("global", "tenant"):
        found = migrations.load(kind)
        assert found and [m.version for m in found] == sorted({m.version for m in found})


@pytest.mark.schema_only
async def test_migrate_all_is_idempotent(db: Database, make_tenant) -> None:
    await make_tenant("idem")
    extra = migrations.load("tenant") + [
        migrations.Migration(901, "add_sla", "ALTER TABLE tickets ADD COLUMN sla_minutes integer")
    ]
    first = await migrations.migrate_all(db, extra)
    assert not first.failed and first.migrated >= 1
    second = await migrations.migrate_all(db, extra)
    assert not second.failed and second.migrated == 0 and second.up_to_date == second.tenants


@pytest.mark.schema_only
async def test_failure_stays_in_one_schema_and_rerun_resumes(db: Database, make_tenant) -> None:
    good, bad, other = await make_tenant("good"), await make_tenant("bad"), await make_tenant("oth")
    base = migrations.load("tenant")
    # fails only inside the `bad` tenant's schema, after doing part of its work
    flaky = migrations.Migration(
        902, "add_channel",
        "ALTER TABLE tickets ADD COLUMN channel text;\n"
        f"DO $$ BEGIN IF current_schema() = 'tenant_{bad}' THEN RAISE EXCEPTION 'boom'; END IF; END $$;",
    )
    report = await migrations.migrate_all(db, base + [flaky])
    assert set(report.failed) == {bad}
    assert "902_add_channel" in report.failed[bad]
    assert await _has_column(db, good, "channel") and await _has_column(db, other, "channel")
    assert not await _has_column(db, bad, "channel")  # its transaction rolled back whole
    assert 902 not in await _versions(db, bad) and 902 in await _versions(db, good)
    # the operator fixes the migration and reruns: only `bad` is migrated now
    fixed = migrations.Migration(902, "add_channel", "ALTER TABLE tickets ADD COLUMN channel text;")
    rerun = await migrations.migrate_all(db, base + [fixed])
    assert not rerun.failed
    assert await _has_column(db, bad, "channel") and 902 in await _versions(db, bad)


@pytest.mark.schema_only
async def test_migrate_reaches_suspended_tenants(db: Database, make_tenant) -> None:
    from support_mcp import tenancy

    slug = await make_tenant("susp")
    await tenancy.set_status(db, slug, "suspended")
    extra = migrations.load("tenant") + [migrations.Migration(903, "x", "CREATE TABLE extra_903 (id int)")]
    report = await migrations.migrate_all(db, extra)
    assert slug not in report.failed
    assert 903 in await _versions(db, slug)


@pytest.mark.schema_only
async def test_migration_waits_briefly_for_locks_then_retries(db: Database, make_tenant) -> None:
    import asyncio

    slug = await make_tenant("lock")
    extra = migrations.load("tenant") + [
        migrations.Migration(904, "lockme", "ALTER TABLE tickets ADD COLUMN locked_note text")
    ]
    async with db.tenant_scope(slug) as s:  # a live request holding a lock on tickets
        await s.conn.execute("LOCK TABLE tickets IN ACCESS SHARE MODE")
        task = asyncio.create_task(
            migrations.migrate_tenant(db, slug, extra, lock_timeout_ms=20, retries=100)
        )
        async def tried() -> None:  # the migration's ALTER reached the server (waiting, or timed out)
            while True:
                async with db.admin_scope() as conn:
                    if await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                                           "AND query LIKE 'ALTER TABLE tickets ADD COLUMN locked_note%'"):
                        return
                await asyncio.sleep(0.01)

        await asyncio.wait_for(tried(), 60)  # a hang guard only
        assert not task.done()  # backing off, not blocking the lock queue
    assert await task == [904]


def test_duplicate_versions_are_refused(tmp_path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_b.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationFailed, match="duplicate"):
        migrations.load("tenant", tmp_path)
