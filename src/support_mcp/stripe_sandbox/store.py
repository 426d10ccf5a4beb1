"""The per-episode sandbox accounts, kept in PostgreSQL (admin-only tables, sql/global/0011).

Why PostgreSQL and not a process's memory: episodes are made by the CLI (`episodes create`, its own
process) and by a running server's admin API; `episodes state` and `episodes trigger` run from
the CLI too; several server processes may share one database. Every one of them must see the same
accounts, so the objects live in the database every process already shares, and any process can
host the sandbox's HTTP side (listener.py) over them.

An account is loaded whole into an :class:`Account` (episode accounts are small: a fixture's
objects plus what an agent did), the request runs the double's own API code on it (api.py), and
what changed is written back in the same transaction, with the account row locked for writes.
Ids come from `SeededIds(seed)`, its counter kept in the row: a seeded account mints the same ids
for the same calls. Connected account ids themselves are random (unique across episodes).
"""

from __future__ import annotations

import json
import secrets
import string
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..db import queries
from .fixture import StripeSection, populate
from .ids import SeededIds
from .objects import Account

if TYPE_CHECKING:
    import asyncpg

    from ..db import Database

_ALNUM = string.ascii_letters + string.digits
_EXPORTED = {
    "charge": ("id", "amount", "currency", "status", "amount_refunded", "refunded", "disputed", "customer",
               "payment_intent"),
    "refund": ("id", "charge", "amount", "currency", "reason", "status"),
    "dispute": ("id", "charge", "amount", "currency", "reason", "status"),
}


@dataclass
class Loaded:
    """One account opened for a request: the objects, the id minter, and what they were."""

    acct: Account
    ids: SeededIds
    minted: int
    before: dict[str, str] = field(default_factory=dict)


def _text(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _clock(value: datetime | int | None) -> int | None:
    if value is None:
        return None
    return int(value.timestamp()) if isinstance(value, datetime) else int(value)


def _account(account_id: str, seed: str, minted: int, clock: int | None) -> tuple[Account, SeededIds]:
    ids = SeededIds(seed, minted)
    return Account(account_id, threading.RLock(), mint=ids, clock=(lambda: clock) if clock is not None else None), ids


async def load(conn: asyncpg.Connection, account_id: str, *, write: bool) -> Loaded | None:
    """The account's objects (None: no such sandbox account). `write` locks the account row
    until the transaction ends, so writes to one account are serialized."""
    row = await (queries.sandbox_lock_account if write else queries.sandbox_get_account)(conn, id=account_id)
    if row is None:
        return None
    acct, ids = _account(row["id"], row["seed"], row["minted"], row["clock"])
    loaded = Loaded(acct, ids, row["minted"])
    async for r in queries.sandbox_objects(conn, account_id=account_id):
        acct.restore(r["body"], r["seq"])
        loaded.before[r["body"]["id"]] = _text(r["body"])
    return loaded


async def save(conn: asyncpg.Connection, loaded: Loaded) -> int:
    """Write back the objects that are new or changed (and the id counter); returns how many."""
    changed = [dict(account_id=loaded.acct.id, id=o["id"], kind=o["object"], seq=seq, body=o)
               for seq, o in loaded.acct.all_objects() if loaded.before.get(o["id"]) != _text(o)]
    if changed:
        await queries.sandbox_put_object(conn, changed)
    if loaded.ids.counter != loaded.minted:
        await queries.sandbox_set_minted(conn, id=loaded.acct.id, minted=loaded.ids.counter)
    return len(changed)


async def _fill(conn: asyncpg.Connection, account_id: str, seed: str, clock: int | None,
                section: StripeSection) -> None:
    acct, ids = _account(account_id, seed, 0, clock)
    populate(acct, section)
    await save(conn, Loaded(acct, ids, 0))


def new_account_id() -> str:
    return "acct_" + "".join(secrets.choice(_ALNUM) for _ in range(16))


async def put_account(db: Database, slug: str, section: StripeSection, *, seed: str | int | None = None,
                      clock: datetime | int | None = None) -> str:
    """Give the tenant a sandbox account holding `section`'s objects and connect the tenant to it
    (its connected account and a new webhook secret), in one transaction; an account the tenant
    already has is emptied and refilled. `seed` derives every id the account mints (give the
    same seed to get the same ids; default random); `clock` freezes its "now" (default: real
    time). Returns the account id."""
    seed_text = str(seed) if seed is not None else secrets.token_hex(16)
    frozen, fixture = _clock(clock), section.model_dump(mode="json")
    async with db.admin_scope() as conn:
        row = await queries.sandbox_account_of(conn, slug=slug)
        if row is not None:
            account_id = row["id"]
            await queries.sandbox_clear_account(conn, id=account_id)
            await queries.sandbox_reset_account(conn, id=account_id, seed=seed_text, clock=frozen, fixture=fixture)
        else:
            account_id = await queries.sandbox_insert_account(conn, id=new_account_id(), slug=slug, seed=seed_text,
                                                              clock=frozen, fixture=fixture)
            if account_id is None:
                raise LookupError(f"no tenant {slug}")
            await queries.set_tenant_stripe(conn, slug=slug, account=account_id,
                                            secret="whsec_" + secrets.token_hex(24))
        await _fill(conn, account_id, seed_text, frozen, section)
    return account_id


async def reset_account(db: Database, slug: str) -> str | None:
    """Put the tenant's sandbox account back to its fixture: the fixture's objects only, the id
    counter at zero (so the same calls mint the same ids again), no idempotency keys. Returns
    the account id, or None when the tenant has no sandbox account."""
    async with db.admin_scope() as conn:
        row = await queries.sandbox_account_of(conn, slug=slug)
        if row is None:
            return None
        await queries.sandbox_clear_account(conn, id=row["id"])
        await queries.sandbox_set_minted(conn, id=row["id"], minted=0)
        await _fill(conn, row["id"], row["seed"], row["clock"], StripeSection.model_validate(row["fixture"]))
        return row["id"]


async def delete_account(db: Database, slug: str) -> str | None:
    """Delete the tenant's sandbox account and its objects (deleting the tenant does it too)."""
    async with db.admin_scope() as conn:
        account_id = await queries.sandbox_delete_account(conn, slug=slug)
        if account_id is not None:
            await queries.set_tenant_stripe(conn, slug=slug, account=None, secret=None)
        return account_id


async def account_of(db: Database, slug: str) -> dict[str, Any] | None:
    """{"id", "seed", "minted", "clock"} of the tenant's sandbox account, or None."""
    async with db.admin_scope() as conn:
        row = await queries.sandbox_account_of(conn, slug=slug)
    return None if row is None else {k: row[k] for k in ("id", "seed", "minted", "clock")}


async def export(db: Database, slug: str) -> dict[str, list[dict[str, Any]]] | None:
    """The sandbox part of an episode's state export: charges (refunded amounts, disputed), refunds
    and disputes with the fields an agent or a trigger can change, in creation order; None when
    the tenant has no sandbox account. Ids are the fixture's or minted (seeded: deterministic);
    account ids, timestamps and metadata (which names the tenant and key) are left out."""
    async with db.admin_scope() as conn:
        if await queries.sandbox_account_of(conn, slug=slug) is None:
            return None
        rows = [r async for r in queries.sandbox_export(conn, slug=slug)]
    out: dict[str, list[dict[str, Any]]] = {"charges": [], "refunds": [], "disputes": []}
    for r in rows:
        body = r["body"]
        out[r["kind"] + "s"].append({k: body.get(k) for k in _EXPORTED[r["kind"]]})
    return out
