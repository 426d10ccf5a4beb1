"""Episodes: an ephemeral tenant seeded from a fixture, with one API key granted only that tenant.

An episode is a tenant (slug `ep_<hex>`) plus its row in "global".episodes (sql/global/0009: the
row is what makes a tenant an episode) and a key (scopes read + write, named `episode:<id>`,
expiring with the episode). Each operation is a short sequence of steps, all as the admin:

- create:  provision (a warm-pool spare, else a new tenant) + record (episode row, key, profile:
           one transaction) -> load the fixture (desk data, documents) -> Stripe sandbox account
- reset:   the profile back -> tenant tables emptied and the desk data re-written (one tenant
           transaction) -> search namespace emptied and documents re-ingested -> sandbox account
           back to the fixture (its id counter restarts)
- destroy: key -> tenant (schema, role, registry row, audit rows, sandbox account, and with it the
           episode row) -> search namespace
- sweep:   destroy every expired episode (serve runs it periodically; `episodes sweep` once)

Every operation takes an episode id, never a tenant slug: episodes and tenants are distinct kinds.
The Stripe sandbox account (stripe_sandbox/store.py) is keyed by the tenant and goes with it (a
foreign key cascade), so destroy and sweep need no step of their own for it.

Deterministic episodes (`deterministic=True`, sql/global/0015) record a frozen clock (the
fixture's `clock`, else DEFAULT_CLOCK) and a seed derived from the fixture (`seed_of`), so the
same tool calls on two of them export the same state: README "Determinism rules".
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg

from .. import isolation, keys, tenancy
from ..db import Database, queries
from ..errors import InvalidInput, NotFound
from ..logging import get_logger
from ..stripe_sandbox import store as sandbox_store
from ..stripe_sandbox.trigger import trigger as sandbox_trigger
from . import pool
from .documents import fixture_document_hashes
from .fixtures import Fixture, check_documents, load_fixture, parse_fixture, write_documents
from .seed import write_desk_fast
from .state import export_state, normalize, state_hash

if TYPE_CHECKING:
    from ..kb.service import KnowledgeBase
    from ..payments.webhooks import WebhookReceiver

log = get_logger(__name__)

DEFAULT_TTL = timedelta(minutes=30)
SLUG_PREFIX = pool.SLUG_PREFIX
SCOPES = ["read", "write"]
#: a deterministic episode's "now" when its fixture names no `clock`
DEFAULT_CLOCK = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)
KB_TABLES = ("documents", "chunks")  # the knowledge base's rows (their vectors live in the search namespace)
SWEEP_BATCH = 500  # expired episodes destroyed per sweep (the next sweep takes the rest)


def seed_of(fixture_sha256: str) -> int:
    """The seed of a deterministic episode's ids and numbers: from the fixture's content, so every
    deterministic episode of one fixture starts from the same seed (63 bits)."""
    return int(fixture_sha256[:16], 16) >> 1


def scopes_for(fixture: Fixture) -> list[str]:
    """The episode key's scopes: read and write, plus refund when the fixture has a Stripe sandbox."""
    return SCOPES + (["refund"] if fixture.stripe is not None else [])


def parse_id(text: str | UUID) -> UUID:
    """An episode id (uuid); anything else (a tenant slug, say) is refused with one line."""
    if isinstance(text, UUID):
        return text
    try:
        return UUID(str(text).strip())
    except ValueError:
        raise InvalidInput(f"{str(text)[:60]!r} is not an episode id (the uuid shown by `episodes create` "
                           "or `episodes list`); episodes and tenants are distinct kinds") from None


# --- create -------------------------------------------------------------------------------

async def create(db: Database, kb: KnowledgeBase, fixture: str | Path | Fixture,
                 ttl: timedelta = DEFAULT_TTL, *, deterministic: bool = False) -> dict[str, Any]:
    """Provision an episode; returns {"episode", "tenant", "api_key", "expires_at"} (plus
    "deterministic": true and "clock" when deterministic); the key is shown once."""
    if not isinstance(fixture, Fixture):
        fixture = load_fixture(fixture)
    if ttl <= timedelta(0):
        raise InvalidInput("an episode's ttl must be positive")
    check_documents(kb, fixture)  # before anything is provisioned
    episode_id = uuid.uuid4()
    expires_at = datetime.now(timezone.utc) + ttl
    data = fixture.model_dump(mode="json")
    fixture_sha256 = state_hash(data)
    clock = (fixture.clock or DEFAULT_CLOCK).astimezone(timezone.utc) if deterministic else None
    slug, key = await _provision(db, episode_id, fixture, data, fixture_sha256, expires_at, clock)
    try:
        await _load(db, kb, slug, fixture)
        if fixture.stripe is not None:  # deterministic: the sandbox mints ids from the fixture's seed, "now" is the clock
            await sandbox_store.put_account(db, slug, fixture.stripe,
                                            seed=seed_of(fixture_sha256) if deterministic else None, clock=clock)
    except BaseException:
        await _cleanup(db, kb, slug)
        raise
    log.info("episode_created", episode=str(episode_id), tenant=slug, deterministic=deterministic)
    made: dict[str, Any] = {"episode": str(episode_id), "tenant": slug, "api_key": key.key,
                            "expires_at": expires_at.isoformat()}
    if clock is not None:
        made.update(deterministic=True, clock=clock.isoformat())
    return made


async def _provision(db: Database, episode_id: UUID, fixture: Fixture, data: dict[str, Any], fixture_sha256: str,
                     expires_at: datetime, clock: datetime | None) -> tuple[str, keys.CreatedKey]:
    """The episode's tenant, row and key: a warm-pool spare claimed, recorded and brought to the
    current tenant migrations in ONE transaction; with the pool empty, a new tenant and then one
    transaction for the rest."""
    name, policies = fixture.tenant.name, fixture.tenant.policies

    async def record(conn: asyncpg.Connection, slug: str) -> keys.CreatedKey:
        await queries.insert_episode(conn, id=episode_id, slug=slug, fixture_sha256=fixture_sha256, fixture=data,
                                     expires_at=expires_at, deterministic=clock is not None, clock=clock)
        created = await keys.insert_key(conn, f"episode:{episode_id}", tenants=[slug], all_tenants=False,
                                        scopes=scopes_for(fixture), expires_in=expires_at - datetime.now(timezone.utc))
        await queries.set_episode_key(conn, id=episode_id, key_id=created.id)
        return created

    async with db.admin_scope() as conn:
        slug = await pool.claim(conn, name, policies)
        if slug is not None:
            key = await record(conn, slug)
            await pool.bring_current(db, conn, slug)  # last: switches to the tenant role
            return slug, key
    slug = pool.new_slug()
    await tenancy.create_tenant(db, slug, name or f"Episode {slug}", policies=policies)
    try:
        async with db.admin_scope() as conn:
            return slug, await record(conn, slug)
    except BaseException:
        await _cleanup(db, None, slug)
        raise


async def _load(db: Database, kb: KnowledgeBase, slug: str, fixture: Fixture) -> None:
    """The fixture's desk data in one tenant transaction, then its documents."""
    if fixture.customers or fixture.tickets:
        async with db.tenant_scope(slug) as s:
            await write_desk_fast(s.conn, fixture)
    await write_documents(kb, slug, fixture)


async def _cleanup(db: Database, kb: KnowledgeBase | None, slug: str) -> None:
    """Nothing half-made is left behind; the original error is the one reported."""
    try:
        await _remove(db, kb, slug, None)
    except Exception as exc:  # noqa: BLE001
        log.warning("episode_cleanup_failed", tenant=slug, error=exc.__class__.__name__)


# --- read ---------------------------------------------------------------------------------

async def _get(db: Database, episode_id: str | UUID, *, with_fixture: bool = False) -> dict[str, Any]:
    eid = parse_id(episode_id)
    async with db.admin_scope() as conn:
        row = await (queries.get_episode_fixture if with_fixture else queries.get_episode)(conn, id=eid)
    if row is None:
        raise NotFound(f"no episode with id {eid}")
    return dict(row)


async def state(db: Database, episode_id: str | UUID) -> dict[str, Any]:
    """{"state_hash", "state"}: the episode tenant's state export (episodes/state.py)."""
    ep = await _get(db, episode_id)
    exported = await export_state(db, ep["tenant"])
    # what names the episode itself (its tenant slug, its key `episode:<id>` quoted in refund notes
    # and sandbox metadata) differs per episode by construction: normalized to placeholders
    exported = normalize(exported, {ep["tenant"]: "<tenant>", str(ep["id"]): "<episode>"})
    return {"state_hash": state_hash(exported), "state": exported}


async def list_(db: Database) -> list[dict[str, Any]]:
    async with db.admin_scope() as conn:
        return [dict(r) async for r in queries.list_episodes(conn)]


# --- reset --------------------------------------------------------------------------------

async def reset(db: Database, kb: KnowledgeBase, episode_id: str | UUID) -> dict[str, Any]:
    """Back to the stored fixture, in place: same episode id, tenant, key and expiry."""
    ep = await _get(db, episode_id, with_fixture=True)
    slug, fixture = ep["tenant"], parse_fixture(ep["fixture"])
    async with db.admin_scope() as conn:
        await queries.reset_tenant_profile(conn, slug=slug, name=fixture.tenant.name or f"Episode {slug}",
                                           policies=fixture.tenant.policies or "")
    wanted = await fixture_document_hashes(kb, fixture) if fixture.documents else {}
    async with db.tenant_scope(slug) as s:  # emptied and re-seeded in one transaction
        held = {r["source_uri"]: r["content_hash"] async for r in queries.document_hashes(s.conn)}
        same_documents = held == wanted  # the agent left the knowledge base as the fixture made it: keep it
        if db.isolation == "rls":  # shared tables: only this tenant's rows, through its policies
            await isolation.empty_tenant_rows(s.conn, keep=KB_TABLES if same_documents else ())
        else:
            tables = [r["name"] async for r in queries.tenant_tables(s.conn)]
            if same_documents:
                tables = [t for t in tables if t not in KB_TABLES]
            await s.conn.execute(f"TRUNCATE {', '.join(tenancy.quote_ident(t) for t in tables)} RESTART IDENTITY")
        await write_desk_fast(s.conn, fixture)
    if not same_documents:  # search namespace emptied, documents written again
        await kb.drop_tenant_namespace(ep["rag_index_namespace"])
        await write_documents(kb, slug, fixture)
    await sandbox_store.reset_account(db, slug)  # back to the fixture's objects; no account: nothing to do
    log.info("episode_reset", episode=str(ep["id"]), tenant=slug, documents_kept=same_documents)
    return {"episode": str(ep["id"]), "tenant": slug}


# --- destroy ------------------------------------------------------------------------------

async def destroy(db: Database, episode_id: str | UUID, kb: KnowledgeBase | None = None,
                  forget_key: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Delete the episode's key, tenant (with its audit rows and the episode row) and search namespace.
    `forget_key(name)` runs right after the key is deleted (a server drops it from its key cache)."""
    ep = await _get(db, episode_id)
    await _remove(db, kb, ep["tenant"], ep["key_id"], forget_key)
    log.info("episode_destroyed", episode=str(ep["id"]), tenant=ep["tenant"])
    return {"episode": str(ep["id"]), "tenant": ep["tenant"]}


async def _remove(db: Database, kb: KnowledgeBase | None, slug: str, key_id: UUID | None,
                  forget_key: Callable[[str], None] | None = None) -> None:
    name = None
    async with db.admin_scope() as conn:
        if key_id is None:  # a half-made episode: its key, if any, is the one named after it
            key_id = await queries.episode_key_by_tenant(conn, slug=slug)
        if key_id is not None:
            name = await queries.delete_api_key(conn, id=key_id)
        namespace = await queries.tenant_namespace(conn, slug=slug)
    if name is not None and forget_key is not None:
        forget_key(name)  # before the episode visibly goes: its key never outlives it in this process
    if namespace is None:
        return
    await tenancy.delete_tenant(db, slug)
    if kb is not None:
        try:
            await kb.drop_tenant_namespace(namespace)
        except Exception as exc:  # noqa: BLE001 - the tenant is gone; the namespace is unreachable
            log.warning("episode_namespace_left", tenant=slug, namespace=namespace, error=str(exc))


async def sweep(db: Database, kb: KnowledgeBase | None,
                forget_key: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Destroy every expired episode (and spares a crash left unrecorded); returns what went."""
    async with db.admin_scope() as conn:
        due = [r["id"] async for r in queries.expired_episodes(conn, limit=SWEEP_BATCH)]
    gone = []
    for episode_id in due:
        try:
            gone.append(await destroy(db, episode_id, kb, forget_key))
        except NotFound:
            continue  # another sweeper (a replica, the CLI) got it first
        except Exception as exc:  # noqa: BLE001 - the next sweep retries it
            log.warning("episode_sweep_failed", episode=str(episode_id), error=exc.__class__.__name__)
    await pool.remove_orphans(db)
    if gone:
        log.info("episodes_swept", destroyed=len(gone))
    return gone


async def trigger(db: Database, receiver: WebhookReceiver, episode_id: str | UUID, event_type: str,
                  object_id: str | None, **options: Any) -> dict[str, Any]:
    """Make a Stripe event happen on the episode's sandbox account and deliver it through the
    webhook path (stripe_sandbox/trigger.py); `receiver`'s gateway must have the sandbox running."""
    ep = await _get(db, episode_id)
    return {"episode": str(ep["id"]), **await sandbox_trigger(db, receiver, ep["tenant"], event_type, object_id,
                                                              **options)}


async def reset_stripe(db: Database, episode_id: str | UUID) -> str | None:
    """Put the episode's Stripe sandbox account back to its fixture (`reset` does it too)."""
    ep = await _get(db, episode_id)
    return await sandbox_store.reset_account(db, ep["tenant"])


__all__ = ["DEFAULT_CLOCK", "DEFAULT_TTL", "create", "destroy", "list_", "parse_id", "reset", "reset_stripe",
           "seed_of", "state", "sweep", "trigger"]
