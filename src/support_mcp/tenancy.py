"""Tenants: naming, provisioning and registry operations.

A tenant is a row in public.tenants, a schema `tenant_{slug}` and a NOLOGIN role owning it
(granted to the app role, which can only switch into it through the scoping point). Provisioning runs as the admin.
In RLS mode (isolation.py) a tenant is only its registry row: provisioning inserts it, deletion
empties the shared tables of the tenant's rows in batches first.
This module (with backup.py) is the only code that derives schema or role names, and it only
quotes them as identifiers after `validate_slug`. Reading and writing tenant data goes
through `Database.tenant_scope`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from . import isolation, migrations, privileges
from .db import Database, queries, validate_slug
from .errors import Conflict, InvalidInput, NotFound, NotPermitted
from .logging import get_logger

log = get_logger(__name__)


def schema_name(slug: str) -> str:
    return f"tenant_{validate_slug(slug)}"


def role_name(slug: str, dbtag: str) -> str:
    # Roles are cluster-wide; the database tag keeps two databases on one server apart.
    return f"tn_{dbtag}_{validate_slug(slug)}"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def ensure_slug_free(conn: asyncpg.Connection, slug: str, schema: str, role: str, hint: str = "") -> None:
    """Refuse a slug whose tenant, schema or role already exists (provisioning and restore)."""
    if await queries.tenant_exists(conn, slug=slug):
        raise Conflict(f"tenant '{slug}' already exists{hint}")
    if await queries.role_exists(conn, role_name=role) or await queries.schema_exists(conn, schema_name=schema):
        raise Conflict(f"a schema or role for '{slug}' is left over from an earlier tenant; "
                       "remove it or choose another slug")


@dataclass(frozen=True)
class TenantInfo:
    id: UUID
    slug: str
    name: str
    status: str
    stripe_account_id: str | None
    rag_index_namespace: str
    created_at: datetime
    updated_at: datetime
    branding: dict[str, Any] | None = None
    policies: str | None = None
    has_webhook_secret: bool | None = None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> TenantInfo:
        data = {k: row[k] for k in row.keys() if k in cls.__dataclass_fields__}
        if "stripe_webhook_secret" in row.keys():
            data["has_webhook_secret"] = row["stripe_webhook_secret"] is not None
        return cls(**data)


async def create_tenant(db: Database, slug: str, name: str, **options: Any) -> TenantInfo:
    """Schema + role + latest template + registry row, all in one transaction (RLS mode: the
    registry row only). `options` are `provision`'s; `status`: 'active' (the default) or
    'suspended' (a spare of the episodes' warm pool, unreachable until claimed)."""
    async with db.admin_scope() as conn:
        row = await provision(db, conn, slug, name, **options)
    log.info("tenant_created", tenant=slug)
    return TenantInfo.from_row(row)


async def provision(
    db: Database,
    conn: asyncpg.Connection,
    slug: str,
    name: str,
    *,
    stripe_account_id: str | None = None,
    stripe_webhook_secret: str | None = None,
    branding: dict[str, Any] | None = None,
    policies: str | None = None,
    tenant_migrations: list[migrations.Migration] | None = None,
    rag_index_namespace: str | None = None,
    tenant_id: UUID | None = None,
    status: str | None = None,
    enter: bool = False,
) -> asyncpg.Record:
    """create_tenant inside the caller's admin transaction (restore adds the tenant's rows to it).
    Schema mode leaves the transaction running as the tenant role; RLS mode scopes it to the
    tenant with enter=True. Returns the registry row."""
    validate_slug(slug)
    if not name or not name.strip():
        raise InvalidInput("tenant name is empty")
    if stripe_account_id is not None and not stripe_account_id.startswith("acct_"):
        raise InvalidInput("stripe account id must look like acct_...")
    if stripe_webhook_secret is not None and not stripe_webhook_secret.startswith("whsec_"):
        raise InvalidInput("webhook secret must look like whsec_...")
    rls = db.isolation == "rls"
    schema, role = (None, None) if rls else (schema_name(slug), role_name(slug, db.dbtag))
    if not rls:
        await ensure_slug_free(conn, slug, schema, role)
        await conn.execute(f"CREATE ROLE {quote_ident(role)} NOLOGIN")
        await conn.execute(f"GRANT {quote_ident(role)} TO CURRENT_USER")
        await conn.execute(f"GRANT {quote_ident(role)} TO {quote_ident(db.app_role)}")  # membership without its privileges: the app role is NOINHERIT
        await conn.execute(f"CREATE SCHEMA {quote_ident(schema)} AUTHORIZATION {quote_ident(role)}")
    try:  # RLS mode: this insert is the whole provisioning (the shared tables are there already)
        await queries.insert_tenant(
            conn, id=tenant_id, slug=slug, name=name.strip(), schema_name=schema, role_name=role,
            stripe_account_id=stripe_account_id, stripe_webhook_secret=stripe_webhook_secret,
            rag_index_namespace=rag_index_namespace or f"tenant_{slug}_docs", status=status, branding=branding,
            policies=policies,
        )
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "tenants_slug_key":
            raise Conflict(f"tenant '{slug}' already exists") from exc
        raise
    row = await queries.get_tenant(conn, slug=slug)
    if rls and enter:
        await db.enter_in_transaction(conn, slug)
    if not rls:
        # From here on the transaction runs as the tenant role, inside its schema.
        tmpl = migrations.load("tenant") if tenant_migrations is None else tenant_migrations
        scope = await db.enter_in_transaction(conn, slug)
        await migrations.apply_pending(scope.conn, tmpl, migrations.TENANT_LEDGER)
    return row


async def list_tenants(db: Database) -> list[TenantInfo]:
    async with db.admin_scope() as conn:
        return [TenantInfo.from_row(r) async for r in queries.list_tenants(conn)]


async def count_tenants(db: Database) -> int:
    async with db.connection() as conn:
        return await queries.count_tenants(conn)


async def get_tenant(db: Database, slug: str) -> TenantInfo:
    validate_slug(slug)
    async with db.admin_scope() as conn:
        row = await queries.get_tenant(conn, slug=slug)
    if row is None:
        raise NotFound(f"unknown tenant '{slug}'")
    return TenantInfo.from_row(row)


async def active_tenant_names(db: Database, slugs: frozenset[str] | None, limit: int) -> list[tuple[str, str]]:
    """(slug, name) of the active tenants among `slugs` (None: every tenant), at most `limit`, by slug;
    as the app role (the request path lists what a caller may read)."""
    wanted = sorted(validate_slug(s) for s in slugs) if slugs is not None else None
    async with db.global_scope() as conn:
        return [(r["slug"], r["name"]) async for r in queries.active_tenant_names(conn, slugs=wanted, limit=limit)]


async def check_servable(db: Database, slugs: list[str]) -> None:
    """`serve --tenant`: refuse at start a tenant that does not exist (or is suspended) in this database,
    naming where it looked. Reads the registry as the app role (works with only the app role's URL)."""
    for slug in slugs:
        validate_slug(slug)
        async with db.global_scope() as conn:
            status = await queries.tenant_status(conn, slug=slug)
        where = privileges.database_location(db.settings)
        if status is None:
            raise NotFound(f"tenant '{slug}' does not exist in {where}: create it (`support-mcp tenants create "
                           f"{slug}`) or point --data-dir / --database-url at the right one")
        if status != "active":
            raise NotPermitted(f"tenant '{slug}' is {status} in {where}: resume it with "
                               f"`support-mcp tenants resume {slug}` first")


async def set_status(db: Database, slug: str, status: str) -> None:
    validate_slug(slug)
    async with db.admin_scope() as conn:
        if await queries.set_tenant_status(conn, slug=slug, status=status) is None:
            raise NotFound(f"unknown tenant '{slug}'")
    log.info("tenant_status_changed", tenant=slug, status=status)


async def set_allow_global_docs(db: Database, slug: str, allowed: bool) -> None:
    """Whether the tenant's agents may also search the shared global documents."""
    async with db.admin_scope() as conn:
        if await queries.set_allow_global_docs(conn, slug=validate_slug(slug), allowed=allowed) is None:
            raise NotFound(f"unknown tenant '{slug}'")


async def delete_tenant(db: Database, slug: str) -> None:
    """Drop the schema (with all its data), the role and the registry row, and delete the
    tenant's rows in every global table (audit log by id and slug, feedback, key grants), in
    one transaction. A tombstone lets the audit prune remove rows a server stores later.
    RLS mode: the tenant is suspended first (the scoping point refuses it), its rows are deleted in
    batches, then the rest as above; an interrupted deletion resumes when run again."""
    validate_slug(slug)
    if db.isolation == "rls":
        async with db.admin_scope() as conn:
            row = await queries.get_tenant(conn, slug=slug)
            if row is None:
                raise NotFound(f"unknown tenant '{slug}'")
            await queries.set_tenant_status(conn, slug=slug, status="suspended")
        rows = await isolation.delete_shared_rows(db, slug)
        log.info("tenant_rows_deleted", tenant=slug, rows=rows)
    async with db.admin_scope() as conn:
        row = await queries.get_tenant(conn, slug=slug)
        if row is None:
            raise NotFound(f"unknown tenant '{slug}'")
        audit = await queries.delete_tenant_audit(conn, tenant_id=row["id"], slug=slug)
        await queries.delete_tenant_feedback(conn, tenant_id=row["id"])
        await queries.delete_tenant_key_grants(conn, tenant_id=row["id"])
        await queries.insert_deleted_tenant(conn, tenant_id=row["id"], slug=slug)
        await queries.delete_tenant(conn, slug=slug)
        if row["schema_name"] is not None:  # schema mode
            await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(row['schema_name'])} CASCADE")
            await conn.execute(f"DROP ROLE IF EXISTS {quote_ident(row['role_name'])}")
    log.info("tenant_deleted", tenant=slug, audit_rows=audit)


async def get_profile(db: Database, slug: str) -> dict[str, Any]:
    """Name, branding and policies: the part of the registry row a tenant's agent may read."""
    validate_slug(slug)
    async with db.connection() as conn:
        row = await queries.get_tenant_profile(conn, slug=slug)
    if row is None:
        raise NotFound(f"unknown tenant '{slug}'")
    return dict(row)


async def set_profile(db: Database, slug: str, *, name: str | None = None, policies: str | None = None,
                      branding: dict[str, Any] | None = None) -> None:
    """Change the tenant's name, policies text and/or branding (None keeps the current value); as the
    admin. Branding is a JSON object and replaces the old one whole."""
    validate_slug(slug)
    if name is not None and not name.strip():
        raise InvalidInput("tenant name is empty")
    if branding is not None and not isinstance(branding, dict):
        raise InvalidInput("branding must be a JSON object")
    async with db.admin_scope() as conn:
        if await queries.update_tenant_profile(conn, slug=slug, name=name.strip() if name else None,
                                               policies=policies, branding=branding) is None:
            raise NotFound(f"unknown tenant '{slug}'")
    log.info("tenant_profile_changed", tenant=slug)
