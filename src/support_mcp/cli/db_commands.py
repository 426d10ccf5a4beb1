"""`support-mcp migrate` and `support-mcp db grants`."""

from __future__ import annotations

import asyncio

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

from .. import migrations, privileges, tenancy
from ..db import Database
from ..errors import SupportError
from .common import fail, is_tty, progress_bar, run_with_db, settings

db_app = typer.Typer(help="Database roles and privileges.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate)
    app.add_typer(db_app, name="db")


@db_app.command("grants")
def grants(
    apply: bool = typer.Option(False, "--apply", help="Also run it as the admin (after the global migrations)."),
    role: str | None = typer.Option(None, "--role", help="The app role. Default: the user of "
                                    "SUPPORT_MCP_DATABASE_URL when SUPPORT_MCP_DATABASE_ADMIN_URL is set, else "
                                    "SUPPORT_MCP_DB_APP_ROLE."),
) -> None:
    """Print the SQL that creates the request path's role and grants it exactly what it needs."""
    s = settings()
    if role is None:
        two_urls = s.database_admin_url is not None and s.database_url is not None
        role = privileges.url_user(s.database_url.get_secret_value()) if two_urls else s.db_app_role
    try:
        sql = privileges.script(role, shared=s.isolation == "rls")  # RLS mode: the shared tables too
    except SupportError as exc:
        raise fail(str(exc)) from None
    typer.echo(sql)
    if not apply:
        return
    try:
        asyncio.run(migrations.grant_role(s, role))
    except SupportError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"-- applied: \"{role}\" exists and is granted", err=True)


def migrate() -> None:
    """Apply pending global migrations, then pending tenant migrations to every tenant schema."""
    s = settings()

    async def go(db: Database) -> migrations.MigrateReport:
        if not is_tty():
            return await migrations.migrate_all(db)
        with progress_bar(TextColumn("migrating tenants"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
            task = bar.add_task("migrate", total=None)

            def tick(_slug: str) -> None:
                bar.advance(task)

            bar.update(task, total=await tenancy.count_tenants(db))
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
