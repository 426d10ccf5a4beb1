"""`support-mcp` command line (typer). Output for people goes to stdout; logs go to stderr."""

from __future__ import annotations

import typer

from .. import __version__
from . import db_commands, demo, docs, evaluate, keys, reports, serve, stripe, tenants

app = typer.Typer(
    name="support-mcp",
    help="Multi-tenant customer-support MCP server.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(tenants.app, name="tenants")
app.add_typer(keys.app, name="keys")
app.add_typer(stripe.app, name="stripe")
app.add_typer(docs.app, name="docs")
app.add_typer(evaluate.app, name="eval")
reports.register(app)
db_commands.register(app)
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Multi-tenant customer-support MCP server."""


def main() -> None:
    app()
