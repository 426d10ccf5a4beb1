"""One tenant's rows in a logical, isolation-mode-independent form (backup format 2).

Each tenant table becomes JSON lines, one row per line, keyed by column name and without
tenant_id, so a tenant backed up from a schema-mode database restores into an RLS-mode one and
back. Export reads every table in one REPEATABLE READ transaction (one snapshot); import inserts
them, parents first, into a tenant the caller provisioned in the same transaction, then moves
identity sequences past the restored values.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import IO

import asyncpg

from .db import Database
from .errors import InvalidInput

# Parents before children (import order). A table added by a later tenant migration goes here.
TABLES = ("customers", "tickets", "messages", "documents", "chunks", "stripe_events",
          "ticket_stripe_refs", "stripe_refunds", "stripe_quarantine")
_BATCH = 500

_COLUMNS_SQL = """SELECT a.attname, a.attidentity <> '' AS identity
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> 'tenant_id'
ORDER BY a.attnum"""
_SETVAL_SQL = """SELECT pg_catalog.setval(s.seq, greatest($3::bigint, coalesce(pg_catalog.pg_sequence_last_value(s.seq), 0)))
FROM (SELECT pg_catalog.pg_get_serial_sequence($1, $2)::regclass AS seq) s"""


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def export(db: Database, slug: str, open_table: Callable[[str], IO[str]]) -> dict[str, int]:
    """Write each table's rows as JSON lines to open_table(table). Returns rows per table.
    As the admin: in RLS mode a superuser admin is not held to the policies, so the rows are
    selected by tenant_id explicitly."""
    counts: dict[str, int] = {}
    async with db.admin_scope() as conn:
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        scope = await db.enter_in_transaction(conn, slug)
        rls = db.isolation == "rls"
        for table in TABLES:
            sql = f"SELECT (to_jsonb(t) - 'tenant_id')::text FROM {table} t"
            args = (scope.tenant_id,) if rls else ()
            if rls:
                sql += " WHERE t.tenant_id = $1"
            n = 0
            with open_table(table) as fh:
                async for rec in conn.cursor(sql, *args, prefetch=_BATCH):
                    fh.write(rec[0] + "\n")
                    n += 1
            counts[table] = n
    return counts


def _batches(lines: Iterable[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    for line in lines:
        if line.strip():
            batch.append(line.strip())
        if len(batch) >= _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


async def import_rows(conn: asyncpg.Connection, tables: dict[str, Iterable[str]]) -> dict[str, int]:
    """Insert the rows of each table (JSON lines) inside a transaction the caller scoped to the
    new tenant (db.enter_in_transaction): tenant_id comes from the scope, never from the file."""
    unknown = set(tables) - set(TABLES)
    if unknown:
        raise InvalidInput(f"the backup has tables this version does not know: {', '.join(sorted(unknown))}")
    counts: dict[str, int] = {}
    for table in TABLES:
        if table not in tables:
            continue
        columns = {r["attname"]: r["identity"] for r in await conn.fetch(_COLUMNS_SQL, table)}
        n = 0
        for batch in _batches(tables[table]):
            have = json.loads(batch[0])
            keys = [c for c in columns if c in have]  # the columns the backup has (others: defaults)
            cols = ", ".join(_ident(c) for c in keys)
            await conn.execute(
                f"INSERT INTO {table} ({cols}) OVERRIDING SYSTEM VALUE "
                f"SELECT {cols} FROM jsonb_populate_recordset(NULL::{table}, $1::text::jsonb)",
                "[" + ",".join(batch) + "]")
            n += len(batch)
        for col, identity in columns.items():
            if identity and n:
                top = await conn.fetchval(f"SELECT max({_ident(col)}) FROM {table}")
                await conn.execute(_SETVAL_SQL, table, col, top)
        counts[table] = n
    return counts
