"""`support-mcp docs ...`: ingest, list, delete and reindex a tenant's knowledge base."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

from ..db import Database, validate_slug
from ..errors import InvalidInput, NotFound, SupportError, UpstreamUnavailable
from ..kb.extract import SUFFIXES, load_file, scan
from ..kb.index import NamespaceNotFoundError
from ..kb.service import KnowledgeBase
from .common import fail, progress_bar, run_with_db, usage

app = typer.Typer(help="The tenants' knowledge bases (help-center documents).", no_args_is_help=True)
out = Console(soft_wrap=True)

TenantOpt = typer.Option(None, "--tenant", help="The tenant whose knowledge base to use.")
GlobalOpt = typer.Option(False, "--global", help="The shared global documents instead of a tenant's.")


async def _slug(kb: KnowledgeBase, tenant: str | None, shared: bool) -> str:
    if shared == bool(tenant):
        raise InvalidInput("give --tenant SLUG or --global")
    return await kb.ensure_shared_tenant() if shared else validate_slug(tenant)


@app.command("ingest")
def ingest(paths: list[Path] = typer.Argument(..., help="Files and folders (.md .txt .html .pdf)."),
           tenant: str | None = TenantOpt, shared: bool = GlobalOpt) -> None:
    """Ingest documents (unchanged ones are skipped, changed ones replaced atomically)."""
    files, skipped = usage(scan, paths)
    if skipped:
        names = ", ".join(str(f) for f in skipped[:10]) + (f" and {len(skipped) - 10} more" if len(skipped) > 10 else "")
        typer.echo(f"warning: skipped {len(skipped)} unsupported file(s) (supported: "
                   f"{' '.join(sorted(SUFFIXES))}): {names}", err=True)

    async def go(db: Database) -> tuple[dict[str, int], list[str]]:
        kb = KnowledgeBase(db.settings, db)
        counts, errors = {"created": 0, "updated": 0, "unchanged": 0, "chunks": 0}, []
        try:
            slug = await _slug(kb, tenant, shared)
            with progress_bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                              TimeElapsedColumn()) as bar:
                task = bar.add_task("ingesting", total=len(files))
                for f in files:
                    bar.update(task, description=f"ingesting {f.name[:40]}")
                    try:
                        doc = load_file(f)
                        result = await kb.ingest(slug, title=doc.title, text=doc.text, source_uri=doc.source_uri)
                    except InvalidInput as exc:
                        errors.append(f"{f}: {exc}")
                    else:
                        counts[result.status] += 1
                        counts["chunks"] += result.chunks if result.status != "unchanged" else 0
                    bar.advance(task)
        finally:
            await kb.close()
        return counts, errors

    counts, errors = run_with_db(go)
    typer.echo(f"ingested: {counts['created']} created, {counts['updated']} updated, {counts['unchanged']} "
               f"unchanged, {counts['chunks']} chunks indexed, {len(errors)} failed")
    for e in errors:
        typer.echo(f"  FAILED {e}", err=True)
    if errors:
        raise typer.Exit(1)


@app.command("list")
def list_(tenant: str | None = TenantOpt, shared: bool = GlobalOpt,
          as_json: bool = typer.Option(False, "--json")) -> None:
    """List documents."""

    async def go(db: Database) -> list[dict]:
        kb = KnowledgeBase(db.settings, db)
        return await kb.list_documents(await _slug(kb, tenant, shared), None, None, 10_000)

    rows = run_with_db(go)
    if as_json:
        typer.echo(json.dumps(rows, default=str, indent=2))
        return
    for r in rows:
        typer.echo(f"{r['id']}  {r['chunks']:>4} chunks  {r['title'][:70]}")
    typer.echo(f"{len(rows)} document(s)")


@app.command("delete")
def delete(document_id: str, tenant: str | None = TenantOpt, shared: bool = GlobalOpt,
           yes: bool = typer.Option(False, "--yes", help="Required: confirms the deletion.")) -> None:
    """Delete one document and its passages."""
    if not yes:
        raise fail("repeat with --yes to delete the document", 2)

    async def go(db: Database) -> None:
        kb = KnowledgeBase(db.settings, db)
        try:
            await kb.delete_document(await _slug(kb, tenant, shared), UUID(document_id))
        except ValueError:
            raise InvalidInput("document id must be a uuid") from None
        finally:
            await kb.close()

    run_with_db(go)
    typer.echo(f"deleted {document_id}")


@app.command("reindex")
def reindex(tenant: str | None = TenantOpt, shared: bool = GlobalOpt) -> None:
    """Rebuild the vector index of a knowledge base from Postgres (no re-embedding)."""

    async def go(db: Database) -> int:
        kb = KnowledgeBase(db.settings, db)
        try:
            return await kb.reindex(await _slug(kb, tenant, shared))
        finally:
            await kb.close()

    try:
        n = run_with_db(go)
    except SupportError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"reindexed {n} chunks")


async def _engine_call(kb: KnowledgeBase, slug: str, what: str, **kw):  # noqa: ANN202 - the worker's dict
    """``optimize`` or ``optimize_status`` of the slug's namespace on the embedded engine."""
    from ..kb.index_edge import EdgeWorkerError  # numpy: only when the command runs

    index = await kb.index()
    if not hasattr(index, "optimize_status"):
        raise InvalidInput("only the embedded engine needs this; a Qdrant server optimizes itself")
    namespace = (await kb.namespace(slug))[0]
    try:
        return {"namespace": namespace, **await getattr(index, what)(namespace, **kw)}
    except NamespaceNotFoundError:
        raise NotFound(f"'{slug}' has no knowledge-base index yet (ingest documents first)") from None
    except EdgeWorkerError as exc:  # e.g. the optimizer child died: the namespace is unchanged
        raise UpstreamUnavailable(str(exc)) from None


@app.command("optimize")
def optimize(tenant: str | None = TenantOpt, shared: bool = GlobalOpt,
             wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait for it to finish.")) -> None:
    """Build the embedded engine's HNSW index of a knowledge base now (after a bulk ingest).

    It runs in the background in a child process on a copy of the namespace, so searches and
    writes go on meanwhile (the copy doubles its disk use until it is swapped in); the engine
    also does this by itself after bulk ingests (SUPPORT_MCP_KB_AUTO_OPTIMIZE_POINTS). Joins
    one already running. A Qdrant server optimizes by itself."""

    async def go(db: Database) -> dict:
        kb = KnowledgeBase(db.settings, db)
        try:
            return await _engine_call(kb, await _slug(kb, tenant, shared), "optimize", wait=wait)
        finally:
            await kb.close()

    job = run_with_db(go)
    messages = {"optimized": f"optimized in {job['seconds']:.1f} s", "unchanged": "nothing to optimize"}
    typer.echo(messages.get(job["state"], f"{job['state']} in the background (docs status shows progress)"))


@app.command("status")
def status(tenant: str | None = TenantOpt, shared: bool = GlobalOpt,
           as_json: bool = typer.Option(False, "--json")) -> None:
    """The embedded engine's index of a knowledge base: points, how many lack the HNSW index, and
    the last or running background optimize (RLS mode: of the one shard every tenant shares)."""

    async def go(db: Database) -> dict:
        kb = KnowledgeBase(db.settings, db)
        try:
            return await _engine_call(kb, await _slug(kb, tenant, shared), "optimize_status")
        finally:
            await kb.close()

    st = run_with_db(go)
    if as_json:
        typer.echo(json.dumps(st, indent=2))
        return
    auto = st["auto_optimize_points"]
    typer.echo(f"{st['namespace']}: {st['points']} points, about {st['unindexed']} outside the HNSW index "
               f"(automatic optimize {'after ' + str(auto) + ' such points' if auto else 'off'})")
    if st["state"] != "idle":
        pid = f", child pid {st['pid']}" if st["state"] in ("starting", "optimizing") else ""
        error = f": {st['error']}" if st["error"] else ""
        typer.echo(f"optimize: {st['state']} ({'automatic' if st['auto'] else 'asked'}, "
                   f"{st['seconds']:.1f} s{pid}){error}")
