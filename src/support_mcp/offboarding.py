"""Deleting a tenant everywhere it has data: PostgreSQL (schema, role, registry and global rows,
in one transaction) and then its knowledge-base namespace."""

from __future__ import annotations

from . import tenancy
from .db import Database
from .kb.service import KnowledgeBase


async def delete_tenant(db: Database, slug: str) -> list[str]:
    """Delete the tenant with all its data. Returns warnings about what was left behind (the
    tenant itself is gone once this returns)."""
    namespace = (await tenancy.get_tenant(db, slug)).rag_index_namespace
    await tenancy.delete_tenant(db, slug)
    kb = KnowledgeBase(db.settings, db)
    try:
        await kb.drop_tenant_namespace(namespace)
    except Exception as exc:  # noqa: BLE001 - the tenant is gone; say what is left behind
        return [f"could not drop the search namespace {namespace}: {exc}"]
    finally:
        await kb.close()
    return []
