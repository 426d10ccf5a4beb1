"""API keys: creation, verification, expiry, revocation, forgery."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from support_mcp import keys
from support_mcp.db import Database
from support_mcp.errors import InvalidInput, NotFound, NotPermitted


async def test_key_roundtrip_and_storage(db: Database, make_tenant, make_key) -> None:
    a, b = await make_tenant("ka"), await make_tenant("kb")
    key = await make_key(tenants=[a, b], scopes=["read"])
    assert keys.KEY_RE.match(key)
    p = await keys.KeyVerifier(db, ttl=0).principal(key)
    assert p.tenants == frozenset({a, b}) and p.scopes == frozenset({"read"}) and p.key_id is not None
    # only a hash is stored: the key text appears nowhere in the table
    async with db.admin_scope() as conn:
        dump = str([dict(r) for r in await conn.fetch('SELECT * FROM "global".api_keys')])
    assert key not in dump and key.split("_", 2)[2] not in dump
    listed = {str(r["id"]): r for r in await keys.list_keys(db)}
    assert sorted(listed[str(p.key_id)]["tenants"]) == sorted([a, b])


async def test_all_tenants_key(db: Database, make_key) -> None:
    p = await keys.KeyVerifier(db, ttl=0).principal(await make_key(all_tenants=True, scopes=["read"]))
    assert p.tenants is None


@pytest.mark.parametrize("mangle", [
    lambda k: k[:-1],                       # truncated
    lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"),  # forged secret, valid prefix
    lambda k: "smk_00000000_" + k.split("_", 2)[2],   # unknown prefix
    lambda k: k.upper(),
    lambda k: "",
    lambda k: "Bearer " + k,
    lambda k: k + "x",
    lambda k: "sk_test_abc",
])
async def test_forged_and_malformed_keys_are_refused(db: Database, make_tenant, make_key, mangle) -> None:
    key = await make_key(tenants=[await make_tenant("kf")])
    with pytest.raises(NotPermitted):
        await keys.KeyVerifier(db, ttl=0).principal(mangle(key))


async def test_expired_and_revoked_keys(db: Database, make_tenant, make_key) -> None:
    a = await make_tenant("ke")
    short = await make_key(tenants=[a], expires_in=timedelta(seconds=1))
    verifier = keys.KeyVerifier(db, ttl=60)
    await verifier.principal(short)
    await asyncio.sleep(1.2)
    with pytest.raises(NotPermitted, match="expired"):
        await verifier.principal(short)  # expiry is checked even on a cached key
    key = await make_key(tenants=[a])
    p = await verifier.principal(key)
    await keys.revoke_key(db, str(p.key_id))
    fresh = keys.KeyVerifier(db, ttl=0)
    with pytest.raises(NotPermitted):
        await fresh.principal(key)


async def test_create_key_validation(db: Database, make_tenant) -> None:
    a = await make_tenant("kv")
    with pytest.raises(InvalidInput, match="scopes"):
        await keys.create_key(db, "x", tenants=[a], all_tenants=False, scopes=["superuser"])
    with pytest.raises(InvalidInput):
        await keys.create_key(db, "x", tenants=[a], all_tenants=True, scopes=["read"])
    with pytest.raises(InvalidInput):
        await keys.create_key(db, "x", tenants=[], all_tenants=False, scopes=["read"])
    with pytest.raises(NotFound, match="unknown tenant"):
        await keys.create_key(db, "x", tenants=["nosuch_tenant"], all_tenants=False, scopes=["read"])
    with pytest.raises(InvalidInput):
        keys.parse_duration("forever")
    assert keys.parse_duration("30d") == timedelta(days=30)


async def test_last_used_is_recorded_in_batches(db: Database, make_tenant, make_key) -> None:
    key = await make_key(tenants=[await make_tenant("ku")])
    verifier = keys.KeyVerifier(db, ttl=0)
    p = await verifier.principal(key)
    await verifier.flush_used()
    row = next(r for r in await keys.list_keys(db) if r["id"] == p.key_id)
    assert row["last_used_at"] is not None
