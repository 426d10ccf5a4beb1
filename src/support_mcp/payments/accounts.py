"""Operator actions on tenants' Stripe Connect accounts and stored webhook events: the domain side
of `support-mcp stripe ...` (the CLI parses, calls one of these and prints)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg

from ..db import Database, queries, validate_slug
from ..errors import Conflict, InvalidInput, NotFound
from ..settings import Settings
from .webhooks import retry_all


async def connect(db: Database, slug: str, account: str, webhook_secret: str | None) -> None:
    """Connect (or re-connect) a tenant to its connected account; the secret signs its webhooks."""
    if not account.startswith("acct_"):
        raise InvalidInput("the account id must look like acct_...")
    if webhook_secret is not None and not webhook_secret.startswith("whsec_"):
        raise InvalidInput("the webhook secret must look like whsec_...")
    async with db.admin_scope() as conn:
        try:
            row = await queries.set_tenant_stripe(conn, slug=validate_slug(slug), account=account,
                                                  secret=webhook_secret)
        except asyncpg.UniqueViolationError:
            raise Conflict(f"{account} is already connected to another tenant") from None
        except asyncpg.CheckViolationError:
            raise InvalidInput("the account id or webhook secret has an invalid format") from None
    if row is None:
        raise NotFound(f"unknown tenant '{slug}'")


async def disconnect(db: Database, slug: str) -> None:
    """Remove a tenant's connected account and webhook secret."""
    async with db.admin_scope() as conn:
        if await queries.set_tenant_stripe(conn, slug=validate_slug(slug), account=None, secret=None) is None:
            raise NotFound(f"unknown tenant '{slug}'")


async def retry(settings: Settings, db: Database, slugs: list[str] | None, *,
                max_attempts: int) -> dict[str, tuple[int, int]]:
    """Process stored events whose processing failed: slug -> (processed, failed). No slugs: every
    active tenant with a connected account."""
    if slugs:
        slugs = [validate_slug(s) for s in slugs]
    else:
        async with db.connection() as conn:
            slugs = [r["slug"] async for r in queries.list_connected_slugs(conn)]
    return await retry_all(settings, db, slugs, max_attempts=max_attempts)


@dataclass
class Quarantine:
    """(slug, row) pairs: events that can never be stored or processed, and stored events whose
    processing stopped after `max_attempts` failures."""

    kept: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    gave_up: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


async def quarantine(db: Database, slugs: list[str] | None, *, limit: int, max_attempts: int) -> Quarantine:
    """Each tenant's quarantined and given-up webhook events, newest first. No slugs: every tenant."""
    if slugs:
        slugs = [validate_slug(s) for s in slugs]
    else:
        async with db.connection() as conn:
            slugs = [r["slug"] async for r in queries.list_tenant_slugs(conn)]
    out = Quarantine()
    for slug in slugs:
        async with db.tenant_scope(slug, allow_suspended=True) as scope:
            out.kept += [(slug, dict(r)) async for r in queries.list_quarantine(scope.conn, limit=limit)]
            out.gave_up += [(slug, dict(r)) async for r in queries.given_up_events(
                scope.conn, max_attempts=max_attempts, limit=limit)]
    return out
