"""Episodes (issue 12): reset in place, expiry sweep, the warm pool, the `episodes` scope."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from support_mcp import keys, migrations, tenancy
from support_mcp.access import Principal
from support_mcp.db import queries
from support_mcp.episodes import pool, service
from support_mcp.episodes.fixtures import parse_fixture
from support_mcp.errors import InvalidInput, NotFound, NotPermitted

from .test_episodes import ACME


async def _count(db, slug: str, table: str) -> int:
    async with db.tenant_scope(slug) as s:
        return await s.conn.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608 - test constant


async def test_reset_puts_the_fixture_back_in_place(db, kb, connect_key) -> None:
    ep = await service.create(db, kb, ACME, timedelta(minutes=5))
    fresh = await service.state(db, ep["episode"])
    async with connect_key(ep["api_key"]) as c:
        number = fresh["state"]["tickets"][0]["number"]
        await c.ok("update_ticket", tenant=ep["tenant"], ticket=str(number), status="solved")
        made = await c.ok("create_ticket", tenant=ep["tenant"], subject="Agent-made", description="x",
                          customer_email="new@example.com")
        assert made["number"] == 1004
        await c.ok("ingest_document", tenant=ep["tenant"], title="Agent notes", text="Rockets need fuel.")
    async with db.admin_scope() as conn:
        await queries.update_tenant_profile(conn, slug=ep["tenant"], name="Renamed", policies="changed", branding=None)
    assert (await service.state(db, ep["episode"]))["state_hash"] != fresh["state_hash"]
    done = await service.reset(db, kb, ep["episode"])
    assert done == {"episode": ep["episode"], "tenant": ep["tenant"]}
    again = await service.state(db, ep["episode"])
    assert again == fresh  # same export, same hash
    assert await _count(db, ep["tenant"], "documents") == 2
    info = await tenancy.get_tenant(db, ep["tenant"])
    assert info.name == "Acme Rockets" and info.policies.startswith("Refunds:")
    async with connect_key(ep["api_key"]) as c:  # the same key still works; numbering starts over
        hits = await c.ok("search_docs", tenant=ep["tenant"], query="fuel for rockets")
        assert "Agent notes" not in json.dumps(hits)  # the search namespace was emptied too
        hits = await c.ok("search_docs", tenant=ep["tenant"], query="express shipping")
        assert "Shipping" in json.dumps(hits)
        made = await c.ok("create_ticket", tenant=ep["tenant"], subject="After reset", description="x",
                          customer_email="new@example.com")
        assert made["number"] == 1004
    # the knowledge base untouched since: reset keeps it (same documents, still searchable)
    await service.reset(db, kb, ep["episode"])
    assert await service.state(db, ep["episode"]) == fresh
    async with connect_key(ep["api_key"]) as c:
        hits = await c.ok("search_docs", tenant=ep["tenant"], query="express shipping")
        assert "Shipping" in json.dumps(hits)
    await service.destroy(db, ep["episode"], kb)


async def test_reset_touches_only_its_own_tenant(db, kb, connect_key, make_tenant) -> None:
    # RLS mode keeps every tenant in the same tables: a reset deletes only its tenant's rows (never a
    # TRUNCATE), in schema mode it empties only its schema
    ep = await service.create(db, kb, ACME, timedelta(minutes=5))
    other = await service.create(db, kb, ACME, timedelta(minutes=5))
    real = await make_tenant("resetnb")
    async with connect_key(other["api_key"]) as c:
        await c.ok("create_ticket", tenant=other["tenant"], subject="Neighbour's", description="x",
                   customer_email="nb@example.com")
    async with db.tenant_scope(real) as s:
        await s.conn.execute("INSERT INTO customers (name, email) VALUES ('R', 'r@example.com')")
    before = await service.state(db, other["episode"])
    async with connect_key(ep["api_key"]) as c:
        await c.ok("ingest_document", tenant=ep["tenant"], title="Agent notes", text="Rockets need fuel.")
    await service.reset(db, kb, ep["episode"])
    assert await service.state(db, other["episode"]) == before
    assert len(before["state"]["tickets"]) == 4 and await _count(db, other["tenant"], "documents") == 2
    assert await _count(db, real, "customers") == 1
    async with connect_key(other["api_key"]) as c:  # its knowledge base is still searchable
        hits = await c.ok("search_docs", tenant=other["tenant"], query="express shipping")
        assert "Shipping" in json.dumps(hits)
    for e in (ep, other):
        await service.destroy(db, e["episode"], kb)


async def test_reset_and_state_refuse_real_tenants_and_unknown_ids(db, kb, make_tenant) -> None:
    slug = await make_tenant("keepme")
    info = await tenancy.get_tenant(db, slug)
    for op in (lambda x: service.reset(db, kb, x), lambda x: service.state(db, x)):
        with pytest.raises(InvalidInput, match="distinct kinds"):
            await op(slug)
        with pytest.raises(NotFound):
            await op(str(info.id))
    assert (await tenancy.get_tenant(db, slug)).status == "active"


async def test_sweep_destroys_expired_episodes_and_their_keys(db, kb, connect_key) -> None:
    short = await service.create(db, kb, ACME, timedelta(minutes=5))
    long = await service.create(db, kb, ACME, timedelta(minutes=10))
    async with connect_key(short["api_key"]) as c:
        await c.ok("list_tickets", tenant=short["tenant"])
    async with db.admin_scope() as conn:  # expired a minute ago, without waiting for it
        await conn.execute('UPDATE "global".episodes SET expires_at = now() - interval \'1 minute\' WHERE id = $1',
                           service.parse_id(short["episode"]))
    gone = await service.sweep(db, kb)
    assert {"episode": short["episode"], "tenant": short["tenant"]} in gone
    assert long["episode"] not in {g["episode"] for g in gone}
    with pytest.raises(NotFound):
        await tenancy.get_tenant(db, short["tenant"])
    with pytest.raises(NotPermitted, match="does not exist"):
        await keys.KeyVerifier(db, ttl=0).principal(short["api_key"])
    async with db.admin_scope() as conn:
        assert await conn.fetchval('SELECT count(*) FROM "global".audit_log WHERE tenant_slug = $1',
                                   short["tenant"]) == 0
    async with connect_key(short["api_key"]) as c:
        msg = await c.err("list_tickets", tenant=short["tenant"])
        assert "\n" not in msg
    assert (await service.state(db, long["episode"]))["state_hash"]
    await service.destroy(db, long["episode"], kb)


async def test_expired_episode_key_refused_with_a_clear_line(db, kb) -> None:
    ep = await service.create(db, kb, parse_fixture({}), timedelta(minutes=5))
    async with db.admin_scope() as conn:
        await conn.execute('UPDATE "global".api_keys SET expires_at = now() - interval \'1 second\' WHERE name = $1',
                           f"episode:{ep['episode']}")
    with pytest.raises(NotPermitted, match="expired") as exc:
        await keys.KeyVerifier(db, ttl=0).principal(ep["api_key"])
    assert "\n" not in str(exc.value)
    await service.destroy(db, ep["episode"], kb)


async def test_claimed_spare_is_like_a_fresh_tenant(db, kb, make_tenant) -> None:
    spare = await pool.add_spare(db)
    # unreachable while it waits in the pool, even for an operator of every tenant
    with pytest.raises(Exception, match="suspended|not available|unavailable"):
        async with db.tenant_scope(spare):
            pass
    ep = await service.create(db, kb, ACME, timedelta(minutes=5))
    fresh = await make_tenant("cmp")
    assert ep["tenant"] == spare  # the oldest spare (tests run one at a time)
    got, ref = await tenancy.get_tenant(db, spare), await tenancy.get_tenant(db, fresh)
    assert got.status == "active" and got.name == "Acme Rockets" and got.rag_index_namespace == f"tenant_{spare}_docs"
    assert got.created_at >= ref.created_at - timedelta(seconds=60)
    assert await pool.size(db) == 0
    if db.isolation == "rls":  # a spare is only its registry row, like a fresh tenant; it takes the fixture
        async with db.admin_scope() as conn:
            rows = [await conn.fetchrow("SELECT schema_name, role_name FROM public.tenants WHERE slug = $1", t)
                    for t in (spare, fresh)]
        assert [tuple(r) for r in rows] == [(None, None), (None, None)]
        assert await _count(db, spare, "tickets") == 3 and await _count(db, fresh, "tickets") == 0
        await service.destroy(db, ep["episode"], kb)
        return
    sql = """SELECT (SELECT array_agg(version ORDER BY version) FROM {schema}.schema_migrations) AS versions,
                    (SELECT array_agg(tablename::text ORDER BY tablename) FROM pg_tables WHERE schemaname = $1) AS tables,
                    (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1) AS owner,
                    pg_has_role($2, (SELECT nspowner FROM pg_namespace WHERE nspname = $1), 'MEMBER') AS app_member"""
    async with db.admin_scope() as conn:
        a = await conn.fetchrow(sql.format(schema=tenancy.schema_name(spare)), tenancy.schema_name(spare), db.app_role)
        b = await conn.fetchrow(sql.format(schema=tenancy.schema_name(fresh)), tenancy.schema_name(fresh), db.app_role)
    assert a["versions"] == b["versions"] == [m.version for m in migrations.load("tenant")]
    assert a["tables"] == b["tables"] and a["app_member"] and b["app_member"]
    assert a["owner"] == tenancy.role_name(spare, db.dbtag)
    await service.destroy(db, ep["episode"], kb)


@pytest.mark.schema_only  # RLS mode has no per-tenant migrations (the shared tables migrate once)
async def test_spare_missing_a_new_migration_is_brought_current_at_claim(db, kb, monkeypatch) -> None:
    spare = await pool.add_spare(db)  # made with today's tenant migrations
    shipped = [*migrations.load("tenant"), migrations.Migration(9999, "probe", "CREATE TABLE spare_probe (id int)")]
    monkeypatch.setattr(pool, "_tenant_migrations", lambda: shipped)  # a newer release claims it
    ep = await service.create(db, kb, parse_fixture({}), timedelta(minutes=5))
    assert ep["tenant"] == spare
    async with db.tenant_scope(spare) as s:
        assert await s.conn.fetchval("SELECT count(*) FROM schema_migrations WHERE version = 9999") == 1
        assert await s.conn.fetchval("SELECT count(*) FROM spare_probe") == 0
    await service.destroy(db, ep["episode"], kb)


async def test_episodes_scope_key_reaches_episode_tenants_only(db, kb, make_tenant, make_key, connect_key) -> None:
    real = await make_tenant("realco")
    ep = await service.create(db, kb, ACME, timedelta(minutes=5))
    harness = await make_key(all_tenants=True, scopes=["episodes", "read", "write"], name="harness")
    p = await keys.KeyVerifier(db, ttl=0).principal(harness)
    assert p.tenants is not None and ep["tenant"] in p.tenants and real not in p.tenants
    async with connect_key(harness) as c:
        await c.ok("list_tickets", tenant=ep["tenant"])
        on_real = await c.err("list_tickets", tenant=real)
        on_missing = await c.err("list_tickets", tenant="no_such_tenant")
    assert on_real == on_missing.replace("no_such_tenant", real)  # exactly like a missing tenant
    # granted a real tenant explicitly: still not reachable with the episodes scope
    granted = await make_key(tenants=[real], scopes=["episodes", "read"], name="harness2")
    assert (await keys.KeyVerifier(db, ttl=0).principal(granted)).tenants == frozenset()
    # the admin API alone: no tenant needed
    only = await make_key(scopes=["episodes"], name="harness3")
    assert (await keys.KeyVerifier(db, ttl=0).principal(only)).scopes == frozenset({"episodes"})
    with pytest.raises(InvalidInput):
        await make_key(scopes=["read"], name="no-tenant")
    assert "episodes" not in Principal.operator(None, True).scopes
    await service.destroy(db, ep["episode"], kb)
