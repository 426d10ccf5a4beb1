"""`support-mcp` command line (typer). Output for people goes to stdout; logs go to stderr."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from .. import __version__
from . import common, db_commands, demo, docs, doctor, episodes, evaluate, keys, reports, serve, stripe, tenants

# Options of the root command that may also follow the command (`support-mcp serve --data-dir D`),
# as MCP clients' `args` lists usually put them.
GLOBAL_OPTIONS = ("--data-dir", "--database-url", "--database-admin-url")


def hoist_global_options(args: list[str]) -> list[str]:
    """Move the global options (and their values) in front of the command, up to a `--`."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg.split("=", 1)[0] in GLOBAL_OPTIONS and ("=" in arg or i + 1 < len(args)):
            take = 1 if "=" in arg else 2
            front.extend(args[i:i + take])
            i += take
            continue
        rest.append(arg)
        i += 1
    return front + rest


# Help shows what a value is (SLUG, ID, DURATION), not its Python type (`<str>`, `<list[str]>`).
METAVARS = {
    "slug": "SLUG", "key_id": "ID", "document_id": "ID", "episode_id": "ID", "paths": "PATH", "archive": "FILE",
    "tenant": "SLUG", "as_slug": "SLUG", "name": "TEXT", "since": "WHEN", "expires": "DURATION",
    "ttl": "DURATION", "grace": "DURATION", "scope": "SCOPE", "stripe_account": "ACCOUNT", "account": "ACCOUNT",
    "webhook_secret": "SECRET", "policies": "TEXT|@FILE", "output": "FILE", "dataset": "DIR", "role": "ROLE",
    "host": "HOST", "port": "PORT", "days": "DAYS", "limit": "N", "max_attempts": "N", "split": "NAME",
}


def _readable(params: list[Any]) -> list[Any]:
    for param in params:
        if getattr(param, "is_flag", False):
            param.metavar = ""  # a flag takes no value: nothing to show
        elif param.metavar is None:
            desc = getattr(param, "type_descriptor", None)
            if desc is not None and desc.is_choice:
                param.metavar = "|".join(str(getattr(c, "value", c)) for c in desc.choices or ())
            else:
                param.metavar = METAVARS.get(param.name or "", (param.name or "value").upper())
        if getattr(param, "param_type_name", "") == "argument":
            param.display_type_rich = lambda ctx: None  # its metavar already names it
    return params


def readable_help(command: Any) -> None:
    """Readable help for `command` and its subcommands: a metavar naming what each value is (SLUG,
    ID, DURATION) instead of its Python type, none for flags. Applied when help lists a command's
    parameters, so the help and completion options typer adds later are covered too."""
    params_of = command.get_params
    command.get_params = lambda ctx: _readable(params_of(ctx))
    _readable(command.params)  # usage lines and error messages name them the same way
    for sub in getattr(command, "commands", {}).values():
        if not sub.short_help and sub.help:
            sub.short_help = summary(sub.help)
        readable_help(sub)


def summary(help_text: str, width: int = 110) -> str:
    """A command's one-line summary for the command lists: its first paragraph if short, else its
    first sentence (the lists otherwise show the first line of the first paragraph, cut mid-sentence)."""
    first = " ".join(inspect.cleandoc(help_text).split("\n\n")[0].split())
    if len(first) <= width and not first.endswith(":"):  # ":" introduces what the summary leaves out
        return first
    for stop in (". ", ": "):
        if stop in first:
            return first[:first.index(stop)] + "."
    return first


class _Group(TyperGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        readable_help(self)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args))

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """As click's, but a command line click refuses (a missing argument, an unknown option, a
        value out of range) is one line on stderr, like every other error, with exit code 2."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except typer.Abort:
            typer.secho("error: aborted", fg=typer.colors.RED, err=True)
            sys.exit(1)
        except Exception as exc:  # click's ClickException (typer vendors click privately)
            if not (hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int)):
                raise
            message = " ".join(exc.format_message().split())
            if message:  # (none when the help was shown instead: a group called without a command)
                where = getattr(getattr(exc, "ctx", None), "command_path", None)
                hint = f" (see `{where} --help`)" if where else ""
                typer.secho(f"error: {message}{hint}", fg=typer.colors.RED, err=True)
            sys.exit(exc.exit_code)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="support-mcp",
    help="Multi-tenant customer-support MCP server.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    cls=_Group,
)
app.add_typer(tenants.app, name="tenants")
app.add_typer(keys.app, name="keys")
app.add_typer(stripe.app, name="stripe")
app.add_typer(docs.app, name="docs")
app.add_typer(evaluate.app, name="eval")
app.add_typer(episodes.app, name="episodes")
reports.register(app)
db_commands.register(app)
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)
app.command("doctor")(doctor.doctor)


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", metavar="DIR",
        help="Data directory (embedded PostgreSQL, knowledge base). Beats SUPPORT_MCP_DATA_DIR. Before or after "
        "the command."),
    database_url: str | None = typer.Option(
        None, "--database-url", metavar="URL",
        help="PostgreSQL URL (the request path's with --database-admin-url). Beats SUPPORT_MCP_DATABASE_URL / "
        "DATABASE_URL."),
    database_admin_url: str | None = typer.Option(
        None, "--database-admin-url", metavar="URL",
        help="The owner/admin's PostgreSQL URL. Beats SUPPORT_MCP_DATABASE_ADMIN_URL."),
) -> None:
    """Multi-tenant customer-support MCP server.

    --data-dir, --database-url and --database-admin-url go before or after the command and beat the
    environment (so an MCP client's `args` can carry them).
    """
    given = {"data_dir": data_dir, "database_url": database_url, "database_admin_url": database_admin_url}
    common.OVERRIDES.clear()
    common.OVERRIDES.update({k: v for k, v in given.items() if v is not None})


def main() -> None:
    app()
