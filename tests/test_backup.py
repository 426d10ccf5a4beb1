"""Backup -> delete -> restore, and restore under a new slug with text left intact."""

from __future__ import annotations

from pathlib import Path

import pytest

from support_mcp import backup, tenancy
from support_mcp.db import Database
from support_mcp.errors import Conflict, InvalidInput


async def _rows(db: Database, slug: str) -> dict[str, list[tuple]]:
    """Every row of the tenant's tables but its tenant_id (RLS mode), and its migration ledger (schema mode)."""
    out = {}
    async with db.tenant_scope(slug) as s:
        tables = ["customers", "tickets", "messages"] + (["schema_migrations"] if db.isolation == "schema" else [])
        for table in tables:
            cols = "*" if table != "schema_migrations" else "version, name, checksum"
            rows = await s.conn.fetch(f"SELECT {cols} FROM {table} ORDER BY created_at, 1" if cols == "*"
                                      else f"SELECT {cols} FROM {table} ORDER BY 1")
            out[table] = [tuple(v for k, v in r.items() if k != "tenant_id") for r in rows]
    return out


async def _seed(db: Database, slug: str) -> None:
    async with db.tenant_scope(slug) as s:
        cid = await s.conn.fetchval(
            "INSERT INTO customers (name, email, phone) VALUES ('Ann O''Neil', 'ann@x.test', '+1 555 0100') RETURNING id")
        tid = await s.conn.fetchval(
            "INSERT INTO tickets (customer_id, subject, tags) VALUES ($1, 'Refund', '{billing,vip}') RETURNING id", cid)
        for text in (
            f"Please move me off tenant_{slug} -- the {slug} account; SET ROLE x; \\restrict no",
            "line1\nline2\ttab 'quoted' \"double\" \\backslash ünïcödé 🎉",
            f"CREATE SCHEMA tenant_{slug}; COPY tenant_{slug}.tickets FROM stdin;",
        ):
            await s.conn.execute(
                "INSERT INTO messages (ticket_id, author_role, content) VALUES ($1, 'customer', $2)", tid, text)


async def test_backup_delete_restore_gives_identical_rows(db: Database, make_tenant, tmp_path: Path) -> None:
    slug = await make_tenant("bk", policies="Refunds within 30 days.\nBe kind.", stripe_account_id="acct_123")
    await _seed(db, slug)
    before_rows, before_info = await _rows(db, slug), await tenancy.get_tenant(db, slug)
    archive = tmp_path / "bk.tar"
    assert await backup.backup_tenant(db, slug, archive) > 0
    assert archive.stat().st_mode & 0o077 == 0  # holds the webhook secret: owner-only
    await tenancy.delete_tenant(db, slug)
    assert await backup.restore_tenant(db, archive) == slug
    assert await _rows(db, slug) == before_rows
    after = await tenancy.get_tenant(db, slug)
    assert (after.id, after.name, after.policies, after.stripe_account_id) == (
        before_info.id, before_info.name, before_info.policies, before_info.stripe_account_id)
    # the restored tenant is usable and isolated like any other
    async with db.tenant_scope(slug) as s:
        if db.isolation == "schema":
            assert (await s.conn.fetchval("SELECT current_user")).endswith(slug)
        num = await s.conn.fetchval(
            "INSERT INTO tickets (customer_id, subject) SELECT id, 'next' FROM customers LIMIT 1 RETURNING number")
        assert num == 1002  # the identity sequence came back too


async def test_restore_under_new_slug_keeps_text_and_original(db: Database, make_tenant, tmp_path: Path) -> None:
    slug = await make_tenant("orig")
    await _seed(db, slug)
    original = await _rows(db, slug)
    archive = tmp_path / "o.tar"
    await backup.backup_tenant(db, slug, archive)
    new = f"{slug}_copy"
    assert await backup.restore_tenant(db, archive, as_slug=new) == new
    copy = await _rows(db, new)
    assert copy == original  # message text mentioning tenant_<old> is byte-identical
    assert any(f"tenant_{slug}" in m[4] for m in copy["messages"])
    assert await _rows(db, slug) == original  # the live original is untouched
    assert (await tenancy.get_tenant(db, new)).id != (await tenancy.get_tenant(db, slug)).id
    async with db.tenant_scope(new) as s:
        if db.isolation == "schema":
            assert await s.conn.fetchval("SELECT current_setting('search_path')") == f"tenant_{new}"
        else:
            assert await s.conn.fetchval("SELECT current_setting('support_mcp.tenant')") == str(s.tenant_id)


async def test_restore_refuses_existing_slug_and_junk(db: Database, make_tenant, tmp_path: Path) -> None:
    slug = await make_tenant("dup")
    archive = tmp_path / "d.tar"
    await backup.backup_tenant(db, slug, archive)
    with pytest.raises(Conflict, match="already exists"):
        await backup.restore_tenant(db, archive)
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar")
    with pytest.raises(InvalidInput):
        await backup.restore_tenant(db, junk)
    with pytest.raises(InvalidInput):
        await backup.restore_tenant(db, archive, as_slug="Bad-Slug")


async def test_restored_tenants_stay_searchable(db: Database, kb, make_tenant, tmp_path: Path) -> None:
    """Regression (issue 13): after `tenants restore` (same or new slug) search_docs returned []
    until someone ran `docs reindex`: Postgres had the chunks, the search index had nothing."""
    slug = await make_tenant("bks")
    await kb.ingest(slug, title="Refunds", text="# Refunds\n\nRefunds reach the card in five to ten business days.")
    assert (await kb.search(slug, "how long do refunds take")).results
    archive = tmp_path / "bks.tar"
    await backup.backup_tenant(db, slug, archive)
    namespace = (await tenancy.get_tenant(db, slug)).rag_index_namespace
    await tenancy.delete_tenant(db, slug)  # what `tenants delete` does: the rows and the namespace go
    await kb.drop_tenant_namespace(namespace)
    assert await backup.restore_tenant(db, archive) == slug
    found = (await kb.search(slug, "how long do refunds take")).results
    assert [h.title for h in found] == ["Refunds"]
    assert await backup.restore_tenant(db, archive, as_slug=f"{slug}_new") == f"{slug}_new"
    copy = (await kb.search(f"{slug}_new", "how long do refunds take")).results
    assert [h.title for h in copy] == ["Refunds"] and copy[0].chunk_id == found[0].chunk_id
    # the copy has its own namespace: deleting the original's documents leaves the copy's results
    await kb.delete_document(slug, found[0].document_id)
    assert (await kb.search(slug, "how long do refunds take")).results == []
    assert [h.title for h in (await kb.search(f"{slug}_new", "how long do refunds take")).results] == ["Refunds"]
