"""The audit writer against the real database: poison rows, overflow, shutdown with the database
unreachable, tenant deletion and retention (issue 10, findings 1 and 8)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest
from typer.testing import CliRunner

from support_mcp import migrations, tenancy
from support_mcp.audit import AuditRecord, AuditWriter
from support_mcp.db import Database


def rec(principal: str, tool: str = "list_tickets", **kw: object) -> AuditRecord:
    return AuditRecord(tool=tool, principal=principal, outcome=kw.pop("outcome", "ok"), duration_ms=1.0,
                       arguments=kw.pop("arguments", {}), **kw)  # type: ignore[arg-type]


async def rows_of(db: Database, principal: str) -> list[dict]:
    async with db.admin_scope() as conn:
        return [dict(r) for r in await conn.fetch(
            'SELECT * FROM "global".audit_log WHERE principal = $1 ORDER BY id', principal)]


async def test_one_poison_row_does_not_block_the_batch(db: Database) -> None:
    who = f"poison-{secrets.token_hex(3)}"
    writer = AuditWriter(db)
    for i in range(10):
        writer.record(rec(who, tool=f"t{i}"))
    writer.record(rec(who, tool="bad_uuid", tenant_id="not-a-uuid"))  # the client-side encoder refuses it
    append = getattr(writer, "_append", None) or writer._buffer.append  # noqa: SLF001
    append((datetime.now(timezone.utc), None, None, None, who, "bad\x00text", "ok", 1.0, {}))  # past sanitizing: the server refuses it
    for i in range(10, 20):
        writer.record(rec(who, tool=f"t{i}"))
    assert await writer.flush() == 22
    rows = await rows_of(db, who)
    assert [r["tool"] for r in rows[:10]] == [f"t{i}" for i in range(10)]
    assert [r["tool"] for r in rows[12:]] == [f"t{i}" for i in range(10, 20)]
    minimal = rows[10:12]
    assert [r["tool"] for r in minimal] == ["bad_uuid", "bad\\u0000text"]
    assert all(r["arguments"]["unstorable"] is True and r["tenant_id"] is None for r in minimal)
    assert writer.unstorable == 2 and writer.pending == 0 and writer.lost == 0
    writer.record(rec(who, tool="after"))  # later rows go on as usual
    await writer.flush()
    assert (await rows_of(db, who))[-1]["tool"] == "after"


async def test_hostile_values_are_stored_escaped(db: Database) -> None:
    who = f"hostile-{secrets.token_hex(3)}"
    writer = AuditWriter(db)
    deep: object = "bottom"
    for _ in range(500):
        deep = [deep]
    hostile = {"tenant": "a\x00b", "query": "x\x00y", "t\x00ag": "\ud800lone", "n": float("nan"),
               "big": float("inf"), "neg": float("-inf"), "huge_int": 10 ** 400, "deep": deep,
               "wide": list(range(10_000)), "many": {f"k{i}": i for i in range(1000)}, "\udfff": "\x00" * 10}
    writer.record(rec(f"{who}\x00\ud800", tool="to\x00ol\udc00", arguments=hostile, outcome="o\x00k"))
    assert await writer.flush() == 1 and writer.unstorable == 0
    async with db.admin_scope() as conn:
        row = await conn.fetchrow('SELECT * FROM "global".audit_log WHERE principal LIKE $1', f"{who}%")
    assert row["tool"] == "to\\u0000ol\\udc00" and row["outcome"] == "o\\u0000k"
    args = row["arguments"]
    assert args["tenant"] == "a\\u0000b" and args["t\\u0000ag"] == "\\ud800lone"
    assert args["query"]["chars"] == 3 and len(args["query"]["sha256"]) == 12
    assert (args["n"], args["big"], args["neg"]) == ("NaN", "Infinity", "-Infinity")
    assert args["huge_int"].startswith("[integer")
    assert len(json.dumps(args)) < 20_000  # depth and size bounded


def test_free_text_names_and_emails_never_stored_as_text() -> None:
    from support_mcp.audit_values import storable_arguments

    marker = "Zanzibar"
    stored = json.dumps(storable_arguments({
        "tenant": "acme", "description": f"{marker} short", "content": marker, "comment": marker, "text": marker,
        "query": marker, "policies": marker, "subject": marker, "customer_name": f"{marker} Smith",
        "name": marker, "assignee": marker, "customer_email": "zed@example.com", "ticket": "#12",
        "other": f"{marker} " * 40, "tags": [marker + "@example.com"], "password": "hunter2",
    }))
    assert marker not in stored and "example.com" not in stored and "hunter2" not in stored
    assert '"tenant": "acme"' in stored and '"ticket": "#12"' in stored and '"customer_name": "[name]"' in stored
    assert stored.count('"sha256"') == 8  # 7 free-text arguments + one long string


async def test_full_buffer_drops_the_oldest_and_counts(db: Database) -> None:
    who = f"full-{secrets.token_hex(3)}"
    writer = AuditWriter(db, max_buffer=3)
    for i in range(5):
        writer.record(rec(who, tool=f"t{i}"))
    await writer.flush()
    assert [r["tool"] for r in await rows_of(db, who)] == ["t2", "t3", "t4"]
    assert writer.stats()["dropped"] == 2 and writer.pending == 0


@contextlib.asynccontextmanager
async def black_hole():
    """A TCP server that accepts connections and never answers (a database that hangs)."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        held.append(w)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for w in held:
            w.close()
        server.close()


async def test_stop_with_the_database_unreachable_returns_within_the_bounded_wait(settings) -> None:
    async with black_hole() as port:
        hung = Database(settings)
        hung.pool = await asyncpg.create_pool(f"postgresql://x@127.0.0.1:{port}/x", min_size=0, timeout=3600)
        writer = AuditWriter(hung, stop_seconds=0.2)
        for i in range(3):
            writer.record(rec("unreachable", tool=f"t{i}"))
        await writer.start()
        # the hang guard is far above the 0.2 s bound: without the bound, stop() waits an hour
        await asyncio.wait_for(writer.stop(), 30)
        assert writer.lost == 3 and writer.pending == 0 and writer.last_error is not None
        hung.pool.terminate()


async def test_flush_failures_keep_rows_and_back_off(settings) -> None:
    down = Database(settings)  # never started: every flush fails as "database unavailable"
    writer = AuditWriter(down, interval=0.01, backoff_max=0.05, max_buffer=10)
    for i in range(4):
        writer.record(rec("down", tool=f"t{i}"))
    await writer.start()
    async def failed_three_times() -> None:
        while writer.failures < 3:  # noqa: ASYNC110 - the writer task retries on its own
            await asyncio.sleep(0.01)

    await asyncio.wait_for(failed_three_times(), 60)  # a hang guard only
    assert writer.pending == 4 and writer.dropped == 0 and "UpstreamUnavailable" in writer.last_error
    for i in range(10):
        writer.record(rec("down", tool=f"more{i}"))
    assert writer.pending == 10 and writer.dropped == 4  # oldest first
    writer.stop_seconds = 0.1
    await writer.stop()
    assert writer.lost == 10


def test_backoff_doubles_up_to_the_cap() -> None:
    from support_mcp.audit import backoff

    delay, seen = 0.25, []
    for _ in range(12):
        delay = backoff(delay, 0.25, 30.0)
        seen.append(delay)
    assert 0.375 <= seen[0] <= 0.5 and all(d <= 30.0 for d in seen) and seen[-1] >= 22.5
    assert all(b >= a * 1.5 for a, b in zip(seen[:5], seen[1:6], strict=True))


async def test_deleting_a_tenant_removes_its_global_rows(db: Database, connect_key, make_tenant, make_key) -> None:
    from support_mcp import audit_retention

    gone, kept = await make_tenant("del"), await make_tenant("keep")
    key = await make_key(tenants=[gone, kept], name=f"del-{gone}")
    async with connect_key(key) as c:
        for t in (gone, kept):
            ticket = await c.ok("create_ticket", tenant=t, subject="s", description="d", customer_email="a@b.test")
            await c.ok("record_feedback", tenant=t, ticket=ticket["id"], rating=5, comment="fine")
    async with db.admin_scope() as conn:
        gone_id = await conn.fetchval("SELECT id FROM public.tenants WHERE slug = $1", gone)
    writer = AuditWriter(db)
    writer.record(rec("refused", tenant_slug=gone, outcome="not_permitted"))  # slug only: refused before the tenant
    await writer.flush()

    async def counts(slug: str, tenant_id: object) -> tuple[int, int, int]:
        async with db.admin_scope() as conn:
            return (await conn.fetchval('SELECT count(*) FROM "global".audit_log WHERE tenant_id = $1 OR tenant_slug = $2',
                                        tenant_id, slug),
                    await conn.fetchval('SELECT count(*) FROM "global".feedback WHERE tenant_id = $1', tenant_id),
                    await conn.fetchval('SELECT count(*) FROM "global".api_key_tenants WHERE tenant_id = $1', tenant_id))

    assert all(n > 0 for n in await counts(gone, gone_id))
    await tenancy.delete_tenant(db, gone)
    assert await counts(gone, gone_id) == (0, 0, 0)
    async with db.admin_scope() as conn:
        kept_id = await conn.fetchval("SELECT id FROM public.tenants WHERE slug = $1", kept)
    assert all(n > 0 for n in await counts(kept, kept_id))
    # a server still holding the tenant's rows stores them after the deletion: the prune removes them
    late = AuditWriter(db)
    late.record(rec("late", tenant_id=gone_id, tenant_slug=gone))
    await late.flush()
    assert (await counts(gone, gone_id))[0] == 1
    await audit_retention.prune(db, 90)
    assert (await counts(gone, gone_id))[0] == 0


async def test_retention_prunes_old_rows(db: Database) -> None:
    from support_mcp import audit_retention

    who = f"old-{secrets.token_hex(3)}"
    writer = AuditWriter(db)
    now = datetime.now(timezone.utc)
    for days in (1, 29, 31, 400):
        writer.record(rec(who, tool=f"d{days}", at=now - timedelta(days=days)))
    await writer.flush()
    assert await audit_retention.prune(db, 30) >= 2
    assert [r["tool"] for r in await rows_of(db, who)] == ["d1", "d29"]
    with pytest.raises(Exception, match="at least 1 day"):
        await audit_retention.prune(db, 0)


async def test_running_server_prunes_periodically(db: Database, connect) -> None:
    who = f"srv-{secrets.token_hex(3)}"
    writer = AuditWriter(db)
    writer.record(rec(who, tool="ancient", at=datetime.now(timezone.utc) - timedelta(days=40)))
    writer.record(rec(who, tool="recent"))
    await writer.flush()
    import mcp

    from support_mcp.access import Principal
    from support_mcp.server import build_server

    s = db.settings.model_copy(update={"audit_retention_days": 30, "audit_prune_interval_seconds": 3600})
    server = build_server(s, Principal.operator(None, True), db=db)
    async with mcp.Client(server):
        for _ in range(1200):  # the first prune runs with the writer's first round; poll for it (60 s: a hang guard)
            if [r["tool"] for r in await rows_of(db, who)] == ["recent"]:
                break
            await asyncio.sleep(0.05)
    assert [r["tool"] for r in await rows_of(db, who)] == ["recent"]


def test_audit_prune_cli(settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from support_mcp.cli import app

    monkeypatch.setenv("SUPPORT_MCP_DATA_DIR", str(settings.data_dir))
    if settings.database_url is not None:
        monkeypatch.setenv("SUPPORT_MCP_DATABASE_URL", settings.database_url.get_secret_value())
    else:
        monkeypatch.delenv("DATABASE_URL", raising=False)
    who = f"cli-{secrets.token_hex(3)}"

    async def seed_and_count(seed: bool) -> list[str]:
        async with migrations.database(settings) as db:
            if seed:
                writer = AuditWriter(db)
                writer.record(rec(who, tool="old", at=datetime.now(timezone.utc) - timedelta(days=100)))
                writer.record(rec(who, tool="new"))
                await writer.flush()
            return [r["tool"] for r in await rows_of(db, who)]

    assert asyncio.run(seed_and_count(True)) == ["old", "new"]
    monkeypatch.setenv("SUPPORT_MCP_AUDIT_RETENTION_DAYS", "0")
    result = CliRunner().invoke(app, ["audit", "prune"])
    assert result.exit_code == 0 and "nothing pruned" in result.stdout
    monkeypatch.setenv("SUPPORT_MCP_AUDIT_RETENTION_DAYS", "90")
    result = CliRunner().invoke(app, ["audit", "prune"])
    assert result.exit_code == 0 and "older than 90 day(s) deleted" in result.stdout, result.output
    assert asyncio.run(seed_and_count(False)) == ["new"]
    assert CliRunner().invoke(app, ["audit", "--limit", "1", "--json"]).exit_code == 0  # listing still works


async def test_stop_waits_for_a_flush_in_progress_instead_of_storing_twice(db: Database) -> None:
    who = f"twice-{secrets.token_hex(3)}"
    copying = asyncio.Event()

    class SlowAck(AuditWriter):
        async def _copy(self, conn, rows):  # noqa: ANN001 - the server has the rows; the answer is slow
            await super()._copy(conn, rows)
            copying.set()
            await asyncio.sleep(0.2)

    writer = SlowAck(db, interval=0.01)
    for i in range(5):
        writer.record(rec(who, tool=f"t{i}"))
    await writer.start()
    await asyncio.wait_for(copying.wait(), 30)  # a hang guard only
    await writer.stop()
    assert [r["tool"] for r in await rows_of(db, who)] == [f"t{i}" for i in range(5)]
    assert writer.lost == 0 and writer.pending == 0


async def test_a_row_failing_like_an_outage_is_isolated_after_repeated_failures(db: Database) -> None:
    who = f"sticky-{secrets.token_hex(3)}"

    class RefusesOneRow(AuditWriter):
        async def _copy(self, conn, rows):  # noqa: ANN001 - a row-caused error that looks like the server's fault
            if any(isinstance(r[8], dict) and "evil" in r[8] for r in rows):
                raise asyncpg.InternalServerError("looks transient")
            await super()._copy(conn, rows)

    writer = RefusesOneRow(db)
    for i in range(6):
        writer.record(rec(who, tool=f"t{i}", arguments={"evil": 1} if i == 2 else {}))
    for _ in range(3):  # first taken for an outage: rows kept, order kept
        with pytest.raises(asyncpg.InternalServerError):
            await writer.flush()
        assert writer.pending == 6
        writer._fail(RuntimeError())  # noqa: SLF001 - what the writer task records per failed flush
    assert await writer.flush() == 6
    rows = await rows_of(db, who)
    assert [r["tool"] for r in rows] == [f"t{i}" for i in range(6)]
    assert rows[2]["arguments"]["unstorable"] is True and writer.unstorable == 1
