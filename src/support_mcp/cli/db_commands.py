"""`support-mcp migrate`."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .. import migrations
from ..db import Database, queries
from .common import fail, is_tty, run_with_db, settings


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate)


def migrate() -> None:
    """Apply pending global migrations, then pending tenant migrations to every tenant schema."""
    s = settings()

    async def go(db: Database) -> migrations.MigrateReport:
        if not is_tty():
            return await migrations.migrate_all(db)
        with Progress(
            TextColumn("migrating tenants"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            transient=True,
        ) as bar:
            task = bar.add_task("migrate", total=None)

            def tick(_slug: str) -> None:
                bar.advance(task)

            async with db.connection() as conn:
                bar.update(task, total=await queries.count_tenants(conn))
            return await migrations.migrate_all(db, on_progress=tick)

    report = run_with_db(go, s)
    typer.echo(
        f"migrate: {report.tenants} tenant(s): {report.migrated} migrated, "
        f"{report.up_to_date} up to date, {len(report.failed)} failed"
    )
    for slug, err in sorted(report.failed.items()):
        typer.echo(f"  FAILED {slug}: {err}", err=True)
    if report.failed:
        raise fail("some tenant schemas were not migrated; fix and rerun `support-mcp migrate`")
