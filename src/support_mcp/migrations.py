"""Numbered migrations per schema kind (sql/global, sql/tenant), one ledger per schema.

Global migrations run as the admin under an advisory lock, followed by the app role's grants
(sql/privileges). Tenant migrations run one transaction per
tenant schema through the scoping point (so new objects are owned by the tenant role),
with a short lock_timeout and retries so live requests are never queued behind them.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import asyncpg

from . import isolation, privileges
from .db import Database, queries
from .errors import MigrationFailed, SupportError
from .logging import get_logger
from .settings import Settings

log = get_logger(__name__)

_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_GLOBAL_LOCK = 0x5E_4D_C9  # advisory lock key for global migrations

_LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""
GLOBAL_LEDGER = "public.support_mcp_migrations"
TENANT_LEDGER = "schema_migrations"  # unqualified: lives in each tenant schema


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load(kind: str, source: Traversable | Path | None = None) -> list[Migration]:
    """Migrations of a schema kind ('global' or 'tenant'), ordered by version."""
    folder = source if source is not None else files("support_mcp.sql") / kind
    found = []
    for entry in folder.iterdir():
        m = _FILE_RE.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if len(set(versions)) != len(versions):
        raise MigrationFailed(f"duplicate migration versions in {kind}: {versions}")
    return found


async def _applied(conn: asyncpg.Connection, ledger: str) -> set[int]:
    await conn.execute(_LEDGER_DDL.format(table=ledger))
    return {r[0] for r in await conn.fetch(f"SELECT version FROM {ledger}")}


async def apply_pending(
    conn: asyncpg.Connection, migrations: Iterable[Migration], ledger: str
) -> list[int]:
    """Apply what the ledger lacks, in the caller's transaction. Returns applied versions."""
    done = await _applied(conn, ledger)
    applied = []
    for mig in migrations:
        if mig.version in done:
            continue
        try:
            await conn.execute(mig.sql)
        except asyncpg.PostgresError as exc:
            if isinstance(exc, asyncpg.LockNotAvailableError):
                raise
            raise MigrationFailed(
                f"migration {mig.version:04d}_{mig.name} failed: {exc.__class__.__name__}: "
                f"{str(exc).splitlines()[0][:200]}"
            ) from exc
        await conn.execute(
            f"INSERT INTO {ledger} (version, name, checksum) VALUES ($1, $2, $3)",
            mig.version, mig.name, mig.checksum,
        )
        applied.append(mig.version)
    return applied


def database(settings: Settings) -> Database:
    """The Database every entry point opens (CLI, server, doctor): starting it applies the pending
    global migrations and the app role's grants as the admin, before the app pool opens."""
    return Database(settings, prepare=apply_global)


async def grant_role(settings: Settings, role: str) -> None:
    """`support-mcp db grants --apply`: as the admin, the global migrations and the configured app
    role's grants (what starting does), then `role`'s grants if it is another role."""
    db = await database(settings).start(app=False)
    try:
        if role != db.app_role:
            async with db.admin_scope() as conn:
                await privileges.apply(conn, role, shared=db.isolation == "rls")
    finally:
        await db.close()


async def apply_global(db: Database, migrations: list[Migration] | None = None) -> list[int]:
    migrations = load("global") if migrations is None else migrations
    async with db.admin_scope() as conn:
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _GLOBAL_LOCK)
        applied = await apply_pending(conn, migrations, GLOBAL_LEDGER)
        mode = await isolation.settle(conn, db.settings.isolation)
        if mode == "rls":  # the shared tenant tables: migrated once, here, owned by the admin
            shared = await apply_pending(conn, load("shared"), isolation.SHARED_LEDGER)
            if shared:
                log.info("shared_migrations_applied", versions=shared)
        # tables new or old: the app role's grants
        await privileges.apply(conn, db.app_role, db.app_password, shared=mode == "rls")
    if applied:
        log.info("global_migrations_applied", versions=applied)
    return applied


async def migrate_tenant(
    db: Database, slug: str, migrations: list[Migration], *, lock_timeout_ms: int, retries: int
) -> list[int]:
    """One tenant, one transaction; backs off and retries while a live request holds a lock.
    RLS mode: nothing per tenant (the shared tables migrate once, with the global migrations)."""
    if db.isolation == "rls":
        return []
    for attempt in range(retries + 1):
        try:
            async with db.tenant_scope(slug, allow_suspended=True) as scope:
                await scope.conn.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
                return await apply_pending(scope.conn, migrations, TENANT_LEDGER)
        except SupportError as exc:
            if not isinstance(exc.__cause__, asyncpg.LockNotAvailableError) or attempt == retries:
                raise
        await asyncio.sleep(min(0.5, 0.01 * 2**attempt) * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")


@dataclass
class MigrateReport:
    tenants: int = 0
    migrated: int = 0
    up_to_date: int = 0
    failed: dict[str, str] = field(default_factory=dict)


async def migrate_all(
    db: Database,
    migrations: list[Migration] | None = None,
    *,
    on_progress: Callable[[str], None] | None = None,
) -> MigrateReport:
    """Global first, then every tenant schema with bounded parallelism. Failures stay local."""
    await apply_global(db)
    migrations = load("tenant") if migrations is None else migrations
    s = db.settings
    async with db.connection() as conn:
        slugs = [r["slug"] async for r in queries.list_tenant_slugs(conn)]
    report = MigrateReport(tenants=len(slugs))
    if db.isolation == "rls":
        report.up_to_date = len(slugs)
        return report
    todo = iter(slugs)

    async def worker() -> None:
        # a few workers pulling from one iterator: 10,000 gathered coroutines stalled the
        # event loop for ~200 ms just being scheduled
        for slug in todo:
            try:
                applied = await migrate_tenant(
                    db, slug, migrations,
                    lock_timeout_ms=s.migrate_lock_timeout_ms, retries=s.migrate_retries,
                )
            except SupportError as exc:
                report.failed[slug] = str(exc)
                log.error("tenant_migration_failed", tenant=slug, error=str(exc))
            else:
                if applied:
                    report.migrated += 1
                else:
                    report.up_to_date += 1
            if on_progress:
                on_progress(slug)

    await asyncio.gather(*(worker() for _ in range(min(s.migrate_concurrency, max(1, len(slugs))))))
    return report
