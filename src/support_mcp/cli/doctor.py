"""`support-mcp doctor`: check the configuration and every backend; exit 1 on any problem."""

from __future__ import annotations

import asyncio
import json

import typer

from .. import doctor as checks
from .common import settings


def doctor(
    as_json: bool = typer.Option(False, "--json", help="One JSON object: config, checks, ok."),
    all_settings: bool = typer.Option(False, "--all", help="Print every setting, not only those set."),
) -> None:
    """Print the effective configuration (secrets masked) and one ok/problem line per check, with the fix."""
    s = settings()
    report = asyncio.run(checks.run(s))
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        config = report.config if all_settings else checks.effective_config(s, only_set=True)
        typer.echo("configuration" + ("" if all_settings else " (set by flags, environment or .env; --all for every "
                                     "setting)") + ":")
        for name, value in config.items():
            typer.echo(f"  {name} = {value}")
        if not config:
            typer.echo("  (all defaults)")
        typer.echo("checks:")
        for c in report.checks:
            typer.echo(f"  {c.status:<8} {c.name}: {c.detail}" + (f"\n           fix: {c.fix}" if c.fix else ""))
    if not report.ok:
        raise typer.Exit(1)
