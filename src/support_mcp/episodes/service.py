"""Episodes: an ephemeral tenant seeded from a fixture, with one API key granted only that tenant.

`create` provisions the tenant (slug `ep_<hex>`), records the episode row (sql/global/0009: the
row is what makes a tenant an episode), applies the fixture and creates the key (scopes read +
write, named `episode:<id>`, expiring with the episode). `destroy` deletes the key, the tenant
(schema, role, registry row, audit rows, and with it the episode row) and its knowledge-base
namespace; it takes only an episode id, never a tenant slug. All of it runs as the admin.
Expired episodes are not swept yet: `destroy` them (or wait for the sweeper of a later change).

Deterministic episodes (`deterministic=True`, sql/global/0015) record a frozen clock (the
fixture's `clock`, else DEFAULT_CLOCK) and a seed derived from the fixture (`seed_of`), so the
same tool calls on two of them export the same state: README "Determinism rules".
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from .. import keys, tenancy
from ..db import Database, queries
from ..errors import InvalidInput, NotFound
from ..logging import get_logger
from ..stripe_sandbox import store as sandbox_store
from ..stripe_sandbox.trigger import trigger as sandbox_trigger
from .fixtures import Fixture, apply_fixture, load_fixture
from .state import export_state, normalize, state_hash

if TYPE_CHECKING:
    from ..kb.service import KnowledgeBase
    from ..payments.webhooks import WebhookReceiver

log = get_logger(__name__)

DEFAULT_TTL = timedelta(minutes=30)
SLUG_PREFIX = "ep_"
SCOPES = ["read", "write"]
#: a deterministic episode's "now" when its fixture names no `clock`
DEFAULT_CLOCK = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)


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


async def create(db: Database, kb: KnowledgeBase, fixture: str | Path | Fixture,
                 ttl: timedelta = DEFAULT_TTL, *, deterministic: bool = False) -> dict[str, Any]:
    """Provision an episode; returns {"episode", "tenant", "api_key", "expires_at"} (plus
    "deterministic": true and "clock" when deterministic); the key is shown once."""
    if not isinstance(fixture, Fixture):
        fixture = load_fixture(fixture)
    if ttl <= timedelta(0):
        raise InvalidInput("an episode's ttl must be positive")
    episode_id = uuid.uuid4()
    slug = f"{SLUG_PREFIX}{secrets.token_hex(8)}"
    data = fixture.model_dump(mode="json")
    expires_at = datetime.now(timezone.utc) + ttl
    fixture_sha256 = state_hash(data)
    clock = (fixture.clock or DEFAULT_CLOCK).astimezone(timezone.utc) if deterministic else None
    await tenancy.create_tenant(db, slug, fixture.tenant.name or f"Episode {slug}")
    try:
        async with db.admin_scope() as conn:
            await queries.insert_episode(conn, id=episode_id, slug=slug, fixture_sha256=fixture_sha256,
                                         fixture=data, expires_at=expires_at, deterministic=deterministic,
                                         clock=clock)
        # deterministic: the sandbox mints ids from the fixture's seed and its "now" is the clock
        await apply_fixture(db, kb, slug, fixture, stripe_seed=seed_of(fixture_sha256) if deterministic else None,
                            stripe_clock=clock)
        created = await keys.create_key(db, f"episode:{episode_id}", tenants=[slug], all_tenants=False,
                                        scopes=scopes_for(fixture), expires_in=expires_at - datetime.now(timezone.utc))
        async with db.admin_scope() as conn:
            await queries.set_episode_key(conn, id=episode_id, key_id=created.id)
    except BaseException:
        try:
            await _remove(db, kb, slug, None)  # nothing half-made is left behind
        except Exception as exc:  # noqa: BLE001 - the original error is the one to report
            log.warning("episode_cleanup_failed", tenant=slug, error=exc.__class__.__name__)
        raise
    log.info("episode_created", episode=str(episode_id), tenant=slug, deterministic=deterministic)
    made: dict[str, Any] = {"episode": str(episode_id), "tenant": slug, "api_key": created.key,
                            "expires_at": expires_at.isoformat()}
    if clock is not None:
        made.update(deterministic=True, clock=clock.isoformat())
    return made


async def _get(db: Database, episode_id: str | UUID) -> dict[str, Any]:
    eid = parse_id(episode_id)
    async with db.admin_scope() as conn:
        row = await queries.get_episode(conn, id=eid)
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


async def destroy(db: Database, episode_id: str | UUID, kb: KnowledgeBase | None = None) -> dict[str, Any]:
    """Delete the episode's key, tenant (with its audit rows and the episode row) and search namespace."""
    ep = await _get(db, episode_id)
    await _remove(db, kb, ep["tenant"], ep["key_id"])
    log.info("episode_destroyed", episode=str(ep["id"]), tenant=ep["tenant"])
    return {"episode": str(ep["id"]), "tenant": ep["tenant"]}


async def _remove(db: Database, kb: KnowledgeBase | None, slug: str, key_id: UUID | None) -> None:
    async with db.admin_scope() as conn:
        if key_id is None:  # a half-made episode: its key, if any, is the one named after it
            key_id = await queries.episode_key_by_tenant(conn, slug=slug)
        if key_id is not None:
            await queries.delete_api_key(conn, id=key_id)
        namespace = await queries.tenant_namespace(conn, slug=slug)
    if namespace is None:
        return
    await tenancy.delete_tenant(db, slug)
    if kb is not None:
        try:
            await kb.drop_tenant_namespace(namespace)
        except Exception as exc:  # noqa: BLE001 - the tenant is gone; the namespace is unreachable
            log.warning("episode_namespace_left", tenant=slug, namespace=namespace, error=str(exc))


async def list_(db: Database) -> list[dict[str, Any]]:
    async with db.admin_scope() as conn:
        return [dict(r) async for r in queries.list_episodes(conn)]


async def trigger(db: Database, receiver: WebhookReceiver, episode_id: str | UUID, event_type: str,
                  object_id: str | None, **options: Any) -> dict[str, Any]:
    """Make a Stripe event happen on the episode's sandbox account and deliver it through the
    webhook path (stripe_sandbox/trigger.py); `receiver`'s gateway must have the sandbox running."""
    ep = await _get(db, episode_id)
    return {"episode": str(ep["id"]), **await sandbox_trigger(db, receiver, ep["tenant"], event_type, object_id,
                                                              **options)}


async def reset_stripe(db: Database, episode_id: str | UUID) -> str | None:
    """Put the episode's Stripe sandbox account back to its fixture (for `episodes reset`)."""
    ep = await _get(db, episode_id)
    return await sandbox_store.reset_account(db, ep["tenant"])


__all__ = ["DEFAULT_CLOCK", "DEFAULT_TTL", "create", "destroy", "list_", "parse_id", "reset_stripe", "seed_of", "state",
           "trigger"]
