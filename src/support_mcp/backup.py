"""Backup and restore of one tenant.

Format 2 (written now, both isolation modes): a tar with manifest.json, tenant.json (the registry
row) and data/<table>.jsonl (tenant_data.py: rows as JSON lines, without tenant_id), so a tenant
moves between a schema-mode and an RLS-mode database. Restore provisions the tenant and inserts
its rows in one transaction; under a new slug nothing in the rows changes.

Format 1 (read, schema mode only): schema.dump, pg_dump custom format of the tenant schema, no
owners or privileges. Restore replays the dump with psql in one transaction; under a new slug the
schema is renamed inside that same transaction (a live schema of the old name is moved aside and
back), so no data text is ever rewritten.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from . import migrations, tenancy, tenant_data
from .db import Database, queries, validate_slug
from .errors import Conflict, InvalidInput, NotFound, UpstreamUnavailable
from .logging import get_logger
from .pgtools import find_bin_dir
from .tenancy import ensure_slug_free, role_name, schema_name

log = get_logger(__name__)
FORMAT_DUMP = "support-mcp-tenant-backup/1"
FORMAT = "support-mcp-tenant-backup/2"
_REGISTRY_FIELDS = ("id", "slug", "name", "stripe_account_id", "stripe_webhook_secret",
                    "rag_index_namespace", "status", "branding", "policies", "created_at")


async def _bin_dir(db: Database) -> Path:
    async with db.connection() as conn:
        major = int(await conn.fetchval("SHOW server_version_num")) // 10000
    return find_bin_dir(major)


def _run(args: list[str], what: str) -> None:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise UpstreamUnavailable(f"{what} failed: {detail[-1] if detail else proc.returncode}")


async def backup_tenant(db: Database, slug: str, output: Path) -> int:
    validate_slug(slug)
    async with db.admin_scope() as conn:
        row = await queries.get_tenant(conn, slug=slug)
    if row is None:
        raise NotFound(f"unknown tenant '{slug}'")
    registry = {k: row[k] for k in _REGISTRY_FIELDS}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        counts = await tenant_data.export(
            db, slug, lambda table: open(folder / f"{table}.jsonl", "w", encoding="utf-8"))  # noqa: SIM115
        manifest = {"format": FORMAT, "slug": slug, "isolation": db.isolation, "rows": counts}
        output.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds secrets
        with os.fdopen(fd, "wb") as fh, tarfile.open(fileobj=fh, mode="w") as tar:
            for name, data in (("manifest.json", manifest), ("tenant.json", registry)):
                blob = json.dumps(data, default=str, indent=2).encode()
                info = tarfile.TarInfo(name)
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
            for table in counts:
                tar.add(folder / f"{table}.jsonl", arcname=f"data/{table}.jsonl")
    log.info("tenant_backed_up", tenant=slug, bytes=output.stat().st_size)
    return output.stat().st_size


def _read_archive(archive: Path, into: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Extract the data (schema.dump, or data/*.jsonl) into `into`; returns (manifest, registry row)."""
    try:
        with tarfile.open(archive, mode="r") as tar:
            names = set(tar.getnames())
            if not {"manifest.json", "tenant.json"} <= names:
                raise InvalidInput(f"{archive} is not a support-mcp tenant backup")
            manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
            registry = json.load(tar.extractfile("tenant.json"))  # type: ignore[arg-type]
            if manifest.get("format") == FORMAT_DUMP and "schema.dump" in names:
                tar.extract("schema.dump", into, filter="data")
            elif manifest.get("format") == FORMAT:
                for name in names:
                    if name.startswith("data/") and name.endswith(".jsonl"):
                        tar.extract(name, into, filter="data")
    except (tarfile.TarError, json.JSONDecodeError, OSError, AttributeError) as exc:
        raise InvalidInput(f"{archive} is not a readable tenant backup: {exc}") from exc
    if manifest.get("format") not in (FORMAT, FORMAT_DUMP) or not isinstance(registry, dict):
        raise InvalidInput(f"{archive} has unsupported backup format {manifest.get('format')!r}")
    return manifest, registry


async def _tenant_exists(db: Database, slug: str) -> bool:
    async with db.admin_scope() as conn:
        return await queries.tenant_exists(conn, slug=slug)


async def _restore_rows(db: Database, work: Path, reg: dict[str, Any], old_slug: str, slug: str) -> None:
    """Format 2: provision the tenant and insert its rows, in one transaction."""
    tables = {p.stem: p for p in (work / "data").glob("*.jsonl")} if (work / "data").is_dir() else {}
    keep = slug == old_slug
    if await _tenant_exists(db, slug):
        raise Conflict(f"tenant '{slug}' already exists; delete it or restore with --as NEWSLUG")
    async with db.admin_scope() as conn:
        await tenancy.provision(
            db, conn, slug, reg["name"], stripe_account_id=reg.get("stripe_account_id"),
            stripe_webhook_secret=reg.get("stripe_webhook_secret"), branding=reg.get("branding") or {},
            policies=reg.get("policies"),
            rag_index_namespace=reg["rag_index_namespace"] if keep else None,
            tenant_id=reg["id"] if keep else None, status=reg.get("status"), enter=True)
        files = {t: p.open(encoding="utf-8") for t, p in tables.items()}
        try:
            await tenant_data.import_rows(conn, files)
        finally:
            for fh in files.values():
                fh.close()


_WRAPPER = r"""\set ON_ERROR_STOP on
\i :vars
BEGIN;
SELECT format('ALTER SCHEMA %I RENAME TO %I', :'old_schema', :'hold')
 WHERE :'old_schema' <> :'new_schema'
   AND EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = :'old_schema') \gexec
\i :script
SELECT format('ALTER SCHEMA %I RENAME TO %I', :'old_schema', :'new_schema')
 WHERE :'old_schema' <> :'new_schema' \gexec
SELECT format('ALTER SCHEMA %I RENAME TO %I', :'hold', :'old_schema')
 WHERE EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = :'hold') \gexec
RESET ALL;
CREATE ROLE :"role" NOLOGIN;
GRANT :"role" TO CURRENT_USER;
GRANT :"role" TO :"app_role";
ALTER SCHEMA :"new_schema" OWNER TO :"role";
SELECT format('ALTER %s %I.%I OWNER TO %I',
              CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                             WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
              n.nspname, c.relname, :'role')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = :'new_schema' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
   AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d
            WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))) \gexec
INSERT INTO public.tenants (id, slug, name, schema_name, role_name, stripe_account_id,
    stripe_webhook_secret, rag_index_namespace, status, branding, policies, created_at)
VALUES (CASE WHEN :'keep_id' = 'yes' THEN :'id'::uuid ELSE gen_random_uuid() END,
        :'slug', :'name', :'new_schema', :'role', NULLIF(:'stripe_account_id', ''),
        NULLIF(:'stripe_webhook_secret', ''), :'rag_index_namespace', :'status',
        :'branding'::jsonb, :'policies', :'created_at'::timestamptz);
COMMIT;
"""


def _psql_quote(value: str) -> str:
    """A psql single-quoted meta-command argument (psql unescapes \\, \\n, \\r, \\t and '')."""
    return "'" + (value.replace("\\", "\\\\").replace("'", "''").replace("\n", "\\n")
                  .replace("\r", "\\r").replace("\t", "\\t")) + "'"


async def restore_tenant(db: Database, archive: Path, *, as_slug: str | None = None) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        manifest, reg = _read_archive(archive, work)
        old_slug = validate_slug(manifest.get("slug"))
        slug = validate_slug(as_slug or old_slug)
        if manifest["format"] == FORMAT:
            await _restore_rows(db, work, reg, old_slug, slug)
            log.info("tenant_restored", tenant=slug, source=old_slug)
            return slug
        if db.isolation != "schema":
            raise InvalidInput(f"{archive} is a pg_dump backup (format 1), which restores into a schema-mode "
                               "database only: restore it there and make a new backup")
        new_schema, role = schema_name(slug), role_name(slug, db.dbtag)
        async with db.admin_scope() as conn:
            await ensure_slug_free(conn, slug, new_schema, role, "; delete it or restore with --as NEWSLUG")
        bindir = await _bin_dir(db)
        script = work / "restore.sql"
        _run([str(bindir / "pg_restore"), "--no-owner", "--no-privileges", f"--file={script}",
              str(work / "schema.dump")], "pg_restore")
        (work / "wrapper.sql").write_text(_WRAPPER)
        values = {
            "script": str(script), "old_schema": manifest["schema"], "new_schema": new_schema,
            "hold": f"rh_{secrets.token_hex(8)}", "role": role, "app_role": db.app_role, "slug": slug,
            "keep_id": "yes" if slug == old_slug else "no",
            "rag_index_namespace": reg["rag_index_namespace"] if slug == old_slug else f"tenant_{slug}_docs",
            "branding": json.dumps(reg.get("branding") or {}),
        }
        for key in ("id", "name", "stripe_account_id", "stripe_webhook_secret", "status",
                    "policies", "created_at"):
            values.setdefault(key, "" if reg.get(key) is None else str(reg[key]))
        # Values go through a 0600 file of \set lines, not argv (secrets) nor SQL text.
        (work / "vars.sql").write_text("".join(f"\\set {k} {_psql_quote(v)}\n" for k, v in values.items()))
        _run([str(bindir / "psql"), "-X", "-q", f"--dbname={db.admin_dsn}", "-v", f"vars={work / 'vars.sql'}",
              "-f", str(work / "wrapper.sql")], "restore")
    s = db.settings
    await migrations.migrate_tenant(db, slug, migrations.load("tenant"),
                                    lock_timeout_ms=s.migrate_lock_timeout_ms, retries=s.migrate_retries)
    log.info("tenant_restored", tenant=slug, source=old_slug)
    return slug
