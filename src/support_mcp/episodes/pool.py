"""The warm pool: spare episode tenants provisioned ahead, so creating an episode claims one.

A spare is made by the same `tenancy.create_tenant` as any tenant (schema, role, its grant to the
app role, every tenant migration), under its final random slug `ep_<hex>`, and kept *suspended*:
the scoping point refuses it to every caller, so nothing can be written into it before it is
claimed. `claim` (inside the episode's admin transaction) takes the oldest spare with
`FOR UPDATE SKIP LOCKED` (concurrent creates never take the same one), activates it with the
episode's name, policies and today's dates, and then `bring_current` applies any tenant migration
added since the spare was made, as the tenant role, in the same transaction: a claimed spare is
indistinguishable from a tenant provisioned at that moment. No rename is needed: the slug never
appeared anywhere before the claim.

In RLS mode (SUPPORT_MCP_ISOLATION=rls) a spare is only its registry row (provisioning is that
insert) and `bring_current` has nothing to apply; the pool still saves the namespace creation.

`refill` tops the pool up to a target; `serve` runs it in the background (episodes/upkeep.py,
SUPPORT_MCP_EPISODES_WARM_POOL), creating each spare's empty search namespace as well. An empty
pool is no error: `create` provisions a tenant then. Destroying a spare's tenant (never needed
by hand) would leave its empty namespace behind.
"""

from __future__ import annotations

import secrets
from functools import cache
from typing import TYPE_CHECKING

import asyncpg

from .. import migrations, tenancy
from ..db import Database, queries
from ..logging import get_logger

if TYPE_CHECKING:
    from ..kb.service import KnowledgeBase

log = get_logger(__name__)

SLUG_PREFIX = "ep_"
SPARE_NAME = "Spare episode tenant"


def new_slug() -> str:
    return f"{SLUG_PREFIX}{secrets.token_hex(8)}"


@cache
def _tenant_migrations() -> list[migrations.Migration]:
    return migrations.load("tenant")  # read once per process (the files ship with the package)


async def add_spare(db: Database, kb: KnowledgeBase | None = None) -> str:
    """One spare; with `kb`, its (empty) search namespace too: creating an index shard is the slowest
    part of loading a fixture's documents (100-500 ms on a loaded machine), so it is done ahead."""
    slug = new_slug()
    info = await tenancy.create_tenant(db, slug, SPARE_NAME, status="suspended",
                                       tenant_migrations=_tenant_migrations())
    if kb is not None:
        emb, index = await kb.embedder(), await kb.index()
        await index.ensure_namespace(info.rag_index_namespace, emb.dense_dim)
    async with db.admin_scope() as conn:
        await queries.insert_spare(conn, slug=slug)
    return slug


async def claim(conn: asyncpg.Connection, name: str | None, policies: str | None) -> str | None:
    """In the caller's admin transaction: a spare's slug, now active (None when the pool is empty).
    Call `bring_current` last in that transaction."""
    return await queries.claim_spare(conn, name=name, policies=policies)


async def bring_current(db: Database, conn: asyncpg.Connection, slug: str) -> None:
    """Apply tenant migrations the spare lacks; switches the transaction to the tenant role (last step).
    RLS mode: nothing to do (no per-tenant migrations: the shared tables migrate with the global ones)."""
    if db.isolation == "rls":
        return
    scope = await db.enter_in_transaction(conn, slug)
    applied = await migrations.apply_pending(scope.conn, _tenant_migrations(), migrations.TENANT_LEDGER)
    if applied:
        log.info("spare_migrated", tenant=slug, versions=applied)


async def size(db: Database) -> int:
    async with db.admin_scope() as conn:
        return await queries.count_spares(conn)


async def refill(db: Database, target: int, kb: KnowledgeBase | None = None) -> int:
    """Provision spares until the pool holds `target`; returns how many were made."""
    made = 0
    while target > 0 and await size(db) < target:
        await add_spare(db, kb)
        made += 1
    if made:
        log.info("episode_pool_refilled", made=made, target=target)
    return made


async def remove_orphans(db: Database) -> list[str]:
    """Spares a crash left unrecorded (provisioned, never listed in the pool): deleted."""
    async with db.admin_scope() as conn:
        slugs = [r["slug"] async for r in queries.orphan_spares(conn, spare_name=SPARE_NAME)]
    for slug in slugs:
        await tenancy.delete_tenant(db, slug)
        log.warning("episode_orphan_spare_deleted", tenant=slug)
    return slugs


async def drain(db: Database, kb: KnowledgeBase | None = None) -> int:
    """Delete every spare (and its namespace): after lowering the pool size, or before a schema change."""
    async with db.admin_scope() as conn:
        taken = [(r["slug"], r["rag_index_namespace"]) async for r in queries.take_spares(conn)]
    for slug, namespace in taken:
        await tenancy.delete_tenant(db, slug)
        if kb is not None:
            await kb.drop_tenant_namespace(namespace)
    return len(taken)
