"""The state export of one tenant: canonical JSON of everything an agent could change, and its hash.

Read through THE scoping point (`Database.tenant_scope`) in one statement (one snapshot). Objects
are keyed by natural keys (ticket number, customer email, document source URI, message order),
never by uuid or timestamp, so two tenants that received the same tool calls export the same
state. Format: README "Episode state (for evaluation runs)".

The tenant's Stripe sandbox objects (charges' refunded amounts, refunds, disputes) come from the
sandbox's admin-only tables (stripe_sandbox.store.export), in a second read: `stripe` is null for
a tenant without a sandbox account.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..db import Database, queries
from ..stripe_sandbox import store as sandbox

STATE_VERSION = 2  # 2: the `stripe` sandbox objects; bump when the exported shape changes (hashes of different versions never match)


async def export_state(db: Database, slug: str) -> dict[str, Any]:
    """The tenant's state as plain JSON values (see the module docstring)."""
    async with db.tenant_scope(slug, allow_suspended=True) as scope:
        row = await queries.export_state(scope.conn)
    return {
        "version": STATE_VERSION,
        "customers": row["customers"],
        "tickets": row["tickets"],
        # Refunds have no natural order of their own: a canonical one (by content)
        "refunds": sorted(row["refunds"], key=canonical_json),
        "documents": row["documents"],
        "stripe": await sandbox.export(db, slug),
    }


def normalize(value: Any, replacements: dict[str, str]) -> Any:
    """`value` with every occurrence of each key of `replacements` inside its strings (keys and
    values) replaced by its placeholder: what names one episode (its slug, its id) never reaches
    the hash."""
    if isinstance(value, str):
        for old, new in replacements.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, list):
        return [normalize(v, replacements) for v in value]
    if isinstance(value, dict):
        return {normalize(k, replacements): normalize(v, replacements) for k, v in value.items()}
    return value


def canonical_json(state: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 text as is: the same state always gives the same string."""
    return json.dumps(state, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def state_hash(state: Any) -> str:
    """SHA-256 hex of the canonical JSON (UTF-8)."""
    return hashlib.sha256(canonical_json(state).encode("utf-8")).hexdigest()
