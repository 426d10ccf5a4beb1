"""RLS mode (SUPPORT_MCP_ISOLATION=rls): the recorded mode, the registry of shared tables, and
attacks across tenants from inside a scope.

Runs in both passes of the suite: the module starts its own RLS-mode database on the session's
server (a scratch database), so the schema-mode pass checks RLS mode too.

Attacks tried inside a tenant scope, as the request path's app role, and what they get:
- no tenant setting (a plain connection, or the setting emptied): no rows, every write refused;
- a setting naming no tenant: no rows, writes refused (the foreign key to the registry);
- changing the setting inside the transaction: DOES switch tenants (like an injected `SET ROLE`
  in schema mode). The guard is that the request path only runs the named queries of sql/queries,
  never text built from input; the setting is transaction-local, so it ends with the transaction;
- RESET ROLE / SET ROLE to the table owner: the app role is the table owner of nothing and a member
  of no role (refused), so the policies still apply;
- COPY tenant_table TO: the policies apply (the tenant's own rows only); COPY ... FROM: refused;
- creating a view or function: no CREATE on any schema; a temporary view runs as the app role, so
  the policies still apply through it.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from pydantic import SecretStr

from support_mcp import isolation, tenancy
from support_mcp.db import Database, queries
from support_mcp.errors import NotFound, NotPermitted, TenantUnavailable
from support_mcp.settings import Settings


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@pytest.fixture(scope="module")
async def scratch_url(db: Database) -> AsyncIterator[str]:
    """An empty database on the session's server (the admin's URL to it)."""
    name = f"sm_rls_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(db.admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield _with_database(db.admin_dsn, name)
    admin = await asyncpg.connect(db.admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _database(settings: Settings) -> Database:
    """A Database whose start applies the global migrations (through the composition root's
    factory where there is one)."""
    from support_mcp import migrations

    factory = getattr(migrations, "database", None)
    return factory(settings) if factory is not None else Database(settings)


def _settings(db: Database, url: str, mode: str) -> Settings:
    return db.settings.model_copy(update={"database_url": SecretStr(url), "database_admin_url": None,
                                          "isolation": mode})


@pytest.fixture(scope="module")
async def rls(db: Database, scratch_url: str) -> AsyncIterator[Database]:
    database = await _database(_settings(db, scratch_url, "rls")).start()
    yield database
    await database.close()


async def _seed(db: Database, slug: str, n: int) -> None:
    async with db.tenant_scope(slug) as s:
        for i in range(n):
            c = await queries.insert_customer(s.conn, name=f"C{i}", email=f"c{i}@x.test", phone=None,
                                              stripe_customer_id=None)
            t = await queries.insert_ticket(s.conn, customer_id=c["id"], subject=f"s{i}", description="",
                                            priority="normal", tags=[])
            await queries.insert_message(s.conn, ticket_id=t["id"], author_role="customer", internal=False,
                                         content="hello")


async def _counts(db: Database, slug: str) -> tuple[int, int, int]:
    async with db.tenant_scope(slug) as s:
        return tuple([await s.conn.fetchval(f"SELECT count(*) FROM {t}")  # type: ignore[return-value]
                      for t in ("customers", "tickets", "messages")])


async def test_mode_is_recorded_and_the_other_mode_is_refused(db: Database, rls: Database, scratch_url: str) -> None:
    assert rls.isolation == "rls"
    with pytest.raises(NotPermitted) as err:
        await _database(_settings(db, scratch_url, "schema")).start()
    msg = str(err.value)
    assert "\n" not in msg
    assert "set up with SUPPORT_MCP_ISOLATION=rls" in msg and "started with schema" in msg
    # and the session's own database keeps its mode against the other value
    other = "schema" if db.isolation == "rls" else "rls"
    with pytest.raises(NotPermitted, match=f"set up with SUPPORT_MCP_ISOLATION={db.isolation}"):
        await _database(db.settings.model_copy(update={"isolation": other})).start()


async def test_a_database_from_before_modes_with_tenants_is_schema(db: Database, make_tenant) -> None:
    """Upgrading: a database whose tenants predate the recorded mode is recorded as 'schema', so
    starting it with SUPPORT_MCP_ISOLATION=rls is refused (and changes nothing)."""
    if db.isolation != "schema":
        pytest.skip("rewrites the session database's recorded mode: schema pass only")
    await make_tenant("old")
    async with db.admin_scope() as conn:
        await conn.execute("DELETE FROM public.support_mcp_isolation")
    with pytest.raises(NotPermitted, match="set up with SUPPORT_MCP_ISOLATION=schema"):
        await _database(db.settings.model_copy(update={"isolation": "rls"})).start()
    async with db.admin_scope() as conn:
        assert await conn.fetchval("SELECT mode FROM public.support_mcp_isolation") is None  # rolled back
        assert not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'shared')")
    again = await _database(db.settings).start()  # the next start in schema mode records it
    await again.close()
    async with db.admin_scope() as conn:
        assert await conn.fetchval("SELECT mode FROM public.support_mcp_isolation") == "schema"


async def test_every_shared_table_has_forced_rls_and_a_policy_for_every_command(rls: Database) -> None:
    async with rls.admin_scope() as conn:
        tables = await conn.fetch("""
            SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner) AS owner,
                   EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id'
                           AND NOT a.attisdropped) AS has_tenant
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'shared' AND c.relkind IN ('r', 'p') ORDER BY 1""")
        policies = await conn.fetch("""
            SELECT tablename, cmd, permissive, qual, with_check FROM pg_policies WHERE schemaname = 'shared'""")
        app = await conn.fetchrow("SELECT rolbypassrls, rolsuper FROM pg_roles WHERE rolname = $1", rls.app_role)
        owned = await conn.fetchval("""
            SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'shared' AND pg_get_userbyid(c.relowner) = $1""", rls.app_role)
    assert {t["relname"] for t in tables} == set(isolation.TENANT_TABLES)
    for t in tables:
        assert t["has_tenant"], t["relname"]
        assert t["relrowsecurity"] and t["relforcerowsecurity"], t["relname"]
        assert t["owner"] != rls.app_role
        mine = [p for p in policies if p["tablename"] == t["relname"]]
        # one policy for ALL commands (select, insert, update, delete), USING and WITH CHECK
        assert [p["cmd"] for p in mine] == ["ALL"], t["relname"]
        assert "tenant_id = shared.current_tenant()" in mine[0]["qual"]
        assert "tenant_id = shared.current_tenant()" in mine[0]["with_check"]
    assert not app["rolbypassrls"] and not app["rolsuper"]
    assert owned == 0


async def test_provisioning_is_a_registry_row_and_tenants_stay_apart(rls: Database) -> None:
    a, b = f"a_{secrets.token_hex(3)}", f"b_{secrets.token_hex(3)}"
    async with rls.admin_scope() as conn:
        schemas = await conn.fetchval("SELECT count(*) FROM pg_namespace")
    await tenancy.create_tenant(rls, a, "A")
    await tenancy.create_tenant(rls, b, "B")
    async with rls.admin_scope() as conn:
        assert await conn.fetchval("SELECT count(*) FROM pg_namespace") == schemas
    await _seed(rls, a, 3)
    await _seed(rls, b, 5)
    assert await _counts(rls, a) == (3, 3, 3)
    assert await _counts(rls, b) == (5, 5, 5)
    # per-tenant ticket numbers
    for slug, n in ((a, 3), (b, 5)):
        async with rls.tenant_scope(slug) as s:
            numbers = sorted(r["number"] for r in await s.conn.fetch("SELECT number FROM tickets"))
        assert numbers == list(range(1001, 1001 + n))
    # another tenant's id answers like a missing one
    async with rls.tenant_scope(b) as s:
        b_ticket = await s.conn.fetchval("SELECT id FROM tickets LIMIT 1")
        b_customer = await s.conn.fetchval("SELECT id FROM customers LIMIT 1")
    async with rls.tenant_scope(a) as s:
        assert await queries.get_ticket_detail(s.conn, id=b_ticket, number=None) is None
        assert await s.conn.execute("UPDATE tickets SET subject = 'x' WHERE id = $1", b_ticket) == "UPDATE 0"
    # a row can never reference another tenant's row (composite foreign keys)
    with pytest.raises(NotFound):
        async with rls.tenant_scope(a) as s:
            await queries.insert_ticket(s.conn, customer_id=b_customer, subject="x", description="",
                                        priority="normal", tags=[])
    with pytest.raises(NotFound):
        async with rls.tenant_scope(a) as s:
            await queries.insert_message(s.conn, ticket_id=b_ticket, author_role="agent", internal=False,
                                         content="x")
    # writing a row tagged with another tenant is refused by WITH CHECK
    async with rls.admin_scope() as conn:
        b_id = await conn.fetchval("SELECT id FROM public.tenants WHERE slug = $1", b)
    with pytest.raises(NotPermitted):
        async with rls.tenant_scope(a) as s:
            await s.conn.execute("INSERT INTO customers (tenant_id, name) VALUES ($1, 'x')", b_id)
    assert await _counts(rls, b) == (5, 5, 5)


async def test_unknown_suspended_and_deleted_tenants(rls: Database) -> None:
    slug = f"d_{secrets.token_hex(3)}"
    with pytest.raises(NotFound, match=f"unknown tenant '{slug}'"):
        async with rls.tenant_scope(slug):
            pass
    await tenancy.create_tenant(rls, slug, "D")
    await _seed(rls, slug, 4)
    await tenancy.set_status(rls, slug, "suspended")
    with pytest.raises(TenantUnavailable, match=f"tenant '{slug}' is suspended"):
        async with rls.tenant_scope(slug):
            pass
    async with rls.tenant_scope(slug, allow_suspended=True) as s:
        assert await s.conn.fetchval("SELECT count(*) FROM tickets") == 4
    await tenancy.delete_tenant(rls, slug)
    # the scoping point had the id cached: it answers exactly like a never-seen slug
    with pytest.raises(NotFound, match=f"unknown tenant '{slug}'"):
        async with rls.tenant_scope(slug):
            pass
    async with rls.admin_scope() as conn:
        for table in isolation.TENANT_TABLES:
            assert await conn.fetchval(f"SELECT count(*) FROM shared.{table} t "
                                       "WHERE NOT EXISTS (SELECT 1 FROM public.tenants r WHERE r.id = t.tenant_id)") == 0
    # the same slug again is a new, empty tenant (the cached old id is not reused)
    await tenancy.create_tenant(rls, slug, "D again")
    assert await _counts(rls, slug) == (0, 0, 0)
    await _seed(rls, slug, 1)
    async with rls.tenant_scope(slug) as s:
        assert await s.conn.fetchval("SELECT number FROM tickets") == 1001


async def test_deletion_is_batched_and_resumable(rls: Database) -> None:
    slug, other = f"e_{secrets.token_hex(3)}", f"f_{secrets.token_hex(3)}"
    await tenancy.create_tenant(rls, slug, "E")
    await tenancy.create_tenant(rls, other, "F")
    await _seed(rls, slug, 7)
    await _seed(rls, other, 2)
    assert await isolation.delete_shared_rows(rls, slug, batch=2) == 7 * 3 + 1  # + its ticket counter
    assert await isolation.delete_shared_rows(rls, slug, batch=2) == 0
    await tenancy.delete_tenant(rls, slug)
    assert await _counts(rls, other) == (2, 2, 2)


async def test_attacks_from_inside_a_scope(rls: Database) -> None:
    a, b = f"g_{secrets.token_hex(3)}", f"h_{secrets.token_hex(3)}"
    await tenancy.create_tenant(rls, a, "G")
    await tenancy.create_tenant(rls, b, "H")
    await _seed(rls, a, 1)
    await _seed(rls, b, 2)
    async with rls.admin_scope() as conn:
        b_id = await conn.fetchval("SELECT id FROM public.tenants WHERE slug = $1", b)

    # no setting: a plain app-role connection sees nothing and cannot write
    async with rls.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM shared.tickets") == 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await conn.execute("INSERT INTO shared.customers (name) VALUES ('x')")
        # a setting naming no tenant: nothing visible, writes refused
        async with conn.transaction():
            await conn.execute("SELECT set_config('support_mcp.tenant', $1, true)", "00000000-0000-0000-0000-000000000000")
            assert await conn.fetchval("SELECT count(*) FROM shared.customers") == 0
            with pytest.raises(asyncpg.ForeignKeyViolationError):
                await conn.execute("INSERT INTO shared.customers (name) VALUES ('x')")

    async with rls.tenant_scope(a) as s:
        # emptying the setting inside the scope: nothing visible
        await s.conn.execute("SELECT set_config('support_mcp.tenant', '', true)")
        assert await s.conn.fetchval("SELECT count(*) FROM tickets") == 0
    async with rls.tenant_scope(a) as s:
        # changing it to another tenant's id switches tenants (documented above: the guard is that
        # no query is built from input), and only until the transaction ends
        await s.conn.execute("SELECT set_config('support_mcp.tenant', $1, true)", str(b_id))
        assert await s.conn.fetchval("SELECT count(*) FROM tickets") == 2
    async with rls.tenant_scope(a) as s:
        assert await s.conn.fetchval("SELECT count(*) FROM tickets") == 1
        # a session-level setting does not outlive the connection's return to the pool either
        await s.conn.execute("SELECT set_config('support_mcp.tenant', $1, false)", str(b_id))
    async with rls.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM shared.tickets") == 0

    async with rls.tenant_scope(a) as s:
        await s.conn.execute("RESET ROLE")
        assert await s.conn.fetchval("SELECT count(*) FROM tickets") == 1
    async with rls.admin_scope() as conn:
        owner = await conn.fetchval("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'shared.tickets'::regclass")
    with pytest.raises(NotPermitted):
        async with rls.tenant_scope(a) as s:
            await s.conn.execute(f'SET ROLE "{owner}"')
    async with rls.tenant_scope(a) as s:  # COPY out of a table: the SELECT policy applies
        out: list[bytes] = []

        async def sink(chunk: bytes) -> None:
            out.append(chunk)

        await s.conn.copy_from_table("tickets", output=sink, columns=["subject"])
        assert b"".join(out).splitlines() == [b"s0"]
    with pytest.raises(asyncpg.FeatureNotSupportedError, match="row-level security"):  # COPY into it: refused
        async with rls.tenant_scope(a) as s:
            await s.conn.copy_records_to_table("ticket_numbers", records=[(b_id, 5)], columns=["tenant_id", "last"])
    with pytest.raises(NotPermitted):  # no CREATE on the shared (or any) schema
        async with rls.tenant_scope(a) as s:
            await s.conn.execute("CREATE VIEW shared.all_tickets AS SELECT * FROM shared.tickets")
    with pytest.raises(NotPermitted):
        async with rls.tenant_scope(a) as s:
            await s.conn.execute("CREATE FUNCTION public.f() RETURNS bigint LANGUAGE sql "
                                 "AS 'SELECT count(*) FROM shared.tickets'")
    async with rls.tenant_scope(a) as s:  # a temporary view or function runs as the app role
        await s.conn.execute("CREATE TEMP VIEW all_tickets AS SELECT * FROM shared.tickets")
        await s.conn.execute("CREATE FUNCTION pg_temp.n() RETURNS bigint LANGUAGE sql "
                             "AS 'SELECT count(*) FROM shared.tickets'")
        await s.conn.execute("SELECT set_config('support_mcp.tenant', '', true)")
        assert await s.conn.fetchval("SELECT count(*) FROM pg_temp.all_tickets") == 0
        assert await s.conn.fetchval("SELECT pg_temp.n()") == 0
    assert await _counts(rls, b) == (2, 2, 2)


async def _export_state(db: Database, slug: str) -> dict:
    async with db.tenant_scope(slug) as s:
        return dict(await queries.export_state(s.conn))


async def test_a_backup_moves_a_tenant_between_modes(db: Database, rls: Database, make_tenant, tmp_path) -> None:
    """The session's database (schema mode in the default pass) to the RLS one and back."""
    from support_mcp import backup

    slug = await make_tenant("mv", stripe_account_id="acct_move1", stripe_webhook_secret="whsec_move1")
    await _seed(db, slug, 3)
    async with db.tenant_scope(slug) as s:
        await queries.link_refs(s.conn, ticket_id=await s.conn.fetchval("SELECT id FROM tickets LIMIT 1"),
                                refs=["ch_move1"])
        await queries.quarantine_event(s.conn, event_id="evt_q1", type="x", reason="r", body=b"\x00\x01",
                                       body_sha256=b"h" * 32)
    before = await _export_state(db, slug)
    await backup.backup_tenant(db, slug, tmp_path / "a.tar")
    assert await backup.restore_tenant(rls, tmp_path / "a.tar") == slug
    assert await _export_state(rls, slug) == before
    async with rls.tenant_scope(slug) as s:  # numbering continues after the restored tickets
        cid = await s.conn.fetchval("SELECT id FROM customers LIMIT 1")
        t = await queries.insert_ticket(s.conn, customer_id=cid, subject="next", description="",
                                        priority="normal", tags=[])
        assert t["number"] == 1004
        assert await s.conn.fetchval("SELECT body FROM stripe_quarantine") == b"\x00\x01"
    await backup.backup_tenant(rls, slug, tmp_path / "b.tar")
    await tenancy.delete_tenant(db, slug)
    assert await backup.restore_tenant(db, tmp_path / "b.tar") == slug
    after = await _export_state(db, slug)
    assert len(after["tickets"]) == 4
    assert after["customers"] == before["customers"] and after["tickets"][:3] == before["tickets"]
    assert (await tenancy.get_tenant(db, slug)).has_webhook_secret


def test_the_knowledge_base_index_is_one_shared_namespace_in_rls_mode(db: Database, tmp_path) -> None:
    """RLS mode: the embedded engine keeps every tenant in one shard with a tenant key (the
    contract tests of tests/kb/test_index.py run that layout as `edge-shared`)."""
    from support_mcp.kb.factory import RLS_COLLECTION, build_index

    for mode, shared in (("schema", None), ("rls", RLS_COLLECTION)):
        index = build_index(db.settings.model_copy(update={"isolation": mode, "data_dir": tmp_path,
                                                           "qdrant_url": None}))
        assert index._shared == shared  # noqa: SLF001


async def test_a_begin_that_did_not_carry_the_tenant_fails_closed(rls: Database, monkeypatch) -> None:
    """The RLS scoping point folds its enter statement into asyncpg's plain `BEGIN;`. Should asyncpg
    ever send another BEGIN text, the scope fails (it never runs without the tenant), and the
    statement is not left on the pooled connection to ride on a later transaction."""
    from asyncpg.transaction import Transaction

    slug = f"k_{secrets.token_hex(3)}"
    await tenancy.create_tenant(rls, slug, "K")
    original = Transaction.start

    async def other_begin(self) -> None:  # noqa: ANN001
        self._isolation = "repeatable_read"  # asyncpg then sends 'BEGIN ISOLATION LEVEL REPEATABLE READ;'
        await original(self)

    monkeypatch.setattr(Transaction, "start", other_begin)
    with pytest.raises(RuntimeError, match="without its enter statement"):
        async with rls.tenant_scope(slug):
            pass
    monkeypatch.undo()
    assert rls.pool is not None
    held = [await rls.pool.acquire() for _ in range(rls.pool.get_size())]
    try:
        assert not any(c.begin_pending() for c in held)
        assert not any(c.is_in_transaction() for c in held)
    finally:
        for c in held:
            await rls.pool.release(c)
    async with rls.tenant_scope(slug) as s:
        assert await s.conn.fetchval("SELECT current_setting('support_mcp.tenant')") == str(s.tenant_id)


async def test_a_connection_lost_during_the_folded_begin_answers_unavailable(rls: Database, monkeypatch) -> None:
    """The server goes away while the scoping point's BEGIN (with its enter statement) is under
    way: asyncpg has already returned the dead connection to its pool (the proxy is detached), so the
    scope answers 'unavailable' (found under load in tests/test_outage.py; it was an AttributeError
    from cleaning up the detached proxy, reported as an internal error)."""
    from support_mcp.dbconn import ResettingConnection
    from support_mcp.errors import UpstreamUnavailable

    slug = f"l_{secrets.token_hex(3)}"
    await tenancy.create_tenant(rls, slug, "L")
    original = ResettingConnection.execute

    async def lost(self, query: str, *args: object, timeout: float | None = None) -> str:  # noqa: ANN001
        if query == "BEGIN;" and self._begin_with is not None:
            self.terminate()  # as the server's shutdown would: the pool takes the connection back
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
        return await original(self, query, *args, timeout=timeout)

    monkeypatch.setattr(ResettingConnection, "execute", lost)
    with pytest.raises(UpstreamUnavailable):
        async with rls.tenant_scope(slug):
            pass
    monkeypatch.undo()
    async with rls.tenant_scope(slug) as s:  # the pool recovers
        assert await s.conn.fetchval("SELECT current_setting('support_mcp.tenant')") == str(s.tenant_id)


def test_every_tenant_table_has_a_shared_twin_and_is_backed_up() -> None:
    """A table added by a tenant migration (sql/tenant, schema mode) needs its twin with tenant_id in
    sql/shared (RLS mode), a place in isolation.TENANT_TABLES (deletion order) and in
    tenant_data.TABLES (backups)."""
    import re

    from support_mcp import migrations, tenant_data

    created = re.compile(r"^\s*CREATE TABLE (?:shared\.)?(\w+)", re.MULTILINE | re.IGNORECASE)
    dropped = re.compile(r"^\s*DROP TABLE (?:IF EXISTS )?(?:shared\.)?(\w+)", re.MULTILINE | re.IGNORECASE)

    def tables(kind: str) -> set[str]:
        out: set[str] = set()
        for m in migrations.load(kind):
            out |= set(created.findall(m.sql))
            out -= set(dropped.findall(m.sql))
        return out

    tenant = tables("tenant")
    assert tenant == tables("shared") - {"ticket_numbers"}
    assert set(isolation.TENANT_TABLES) == tenant | {"ticket_numbers"}
    assert set(tenant_data.TABLES) == tenant


async def test_an_episode_exports_the_same_state_in_both_modes(db: Database, rls: Database, kb, tmp_path) -> None:
    """The same deterministic episode, the same calls (desk, refunds, documents) and a reset give the
    same state hashes in schema and RLS mode: the export (sql/queries/state.sql) and the episodes'
    bulk writes (seed, documents, reset) do not depend on the mode."""
    import json
    from pathlib import Path

    from support_mcp.episodes import service
    from support_mcp.episodes.grading import episode_client, replay
    from support_mcp.episodes.tasks import parse_trajectory
    from support_mcp.kb.service import KnowledgeBase

    fixture = Path(service.__file__).parent / "examples" / "acme_payments.json"
    calls = parse_trajectory("\n".join(json.dumps(x) for x in (
        {"tool": "create_refund", "arguments": {"charge": "ch_skates2", "reason": "duplicate", "ticket": "1001"}},
        {"tool": "update_ticket", "arguments": {"ticket": "1002", "status": "solved", "add_tags": ["resolved"]}},
        {"tool": "create_ticket", "arguments": {"subject": "New", "description": "d",
                                                "customer_email": "new@example.com", "customer_name": "New"}},
        {"tool": "ingest_document", "arguments": {"title": "Agent notes", "text": "Rockets need fuel."}},
    )), "s")
    # the RLS database's own knowledge base (one shared shard in its own data dir), the session's embedder
    kb_rls = KnowledgeBase(rls.settings.model_copy(update={"data_dir": tmp_path}), rls,
                           embedder=await kb.embedder())
    hashes: list[list[str]] = []  # the session's database (schema mode in the default pass), then RLS
    try:
        for mode_db, mode_kb in ((db, kb), (rls, kb_rls)):
            ep = await service.create(mode_db, mode_kb, fixture, deterministic=True)
            try:
                seen = [(await service.state(mode_db, ep["episode"]))["state_hash"]]
                async with episode_client(mode_db, mode_kb, ep["api_key"], stripe_sandbox=True) as client:
                    results = await replay(client, ep["tenant"], calls)
                assert all(r.ok for r in results), results
                seen.append((await service.state(mode_db, ep["episode"]))["state_hash"])
                await service.reset(mode_db, mode_kb, ep["episode"])
                seen.append((await service.state(mode_db, ep["episode"]))["state_hash"])
            finally:
                await service.destroy(mode_db, ep["episode"], mode_kb)
            hashes.append(seen)
    finally:
        index = kb_rls._index  # noqa: SLF001
        if index is not None and hasattr(index, "stop_worker"):
            await index.stop_worker()
        await kb_rls.close()
    a, b = hashes
    assert a == b and a[0] == a[2] != a[1]
