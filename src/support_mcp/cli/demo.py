"""`support-mcp demo`: fresh demo tenants (support_mcp.demo), then a scripted agent session against
the real server over stdio (a subprocess, through the real MCP client), then a Claude Desktop snippet."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from .. import demo as demo_data
from .. import privileges
from ..db import Database
from ..kb.service import KnowledgeBase
from ..settings import Settings
from .common import run_with_db, settings

out = Console(soft_wrap=True, highlight=False)


async def _reset(db: Database) -> list[str]:
    kb = KnowledgeBase(db.settings, db)
    try:
        return await demo_data.reset_demo_tenants(db, kb)
    finally:
        await kb.close()


def _show(title: str, args: dict[str, Any], result: Any) -> None:
    out.print(f"\n[bold cyan]→ {title}[/] {json.dumps(args, ensure_ascii=False) if args else ''}")
    out.print(result if isinstance(result, str) else json.dumps(result, indent=2, ensure_ascii=False, default=str))


async def _session(s: Settings) -> None:
    import mcp
    from mcp.client.stdio import StdioServerParameters

    env = {**os.environ, "SUPPORT_MCP_DATA_DIR": str(s.data_dir), "SUPPORT_MCP_LOG_LEVEL": "WARNING"}
    if s.database_url is not None:
        env["SUPPORT_MCP_DATABASE_URL"] = s.database_url.get_secret_value()
    if s.database_admin_url is not None:
        env["SUPPORT_MCP_DATABASE_ADMIN_URL"] = s.database_admin_url.get_secret_value()
    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "support_mcp", "serve", "--tenant", "acme", "--tenant", "globex"],
                                   env=env)
    out.print("[bold]Starting `support-mcp serve --tenant acme --tenant globex` over stdio…[/]")
    async with mcp.Client(params) as c:
        async def call(name: str, **args: Any) -> dict[str, Any] | None:
            r = await c.call_tool(name, args)
            _show(f"{name}{' (error)' if r.is_error else ''}", args,
                  r.content[0].text if r.is_error else r.structured_content)
            return None if r.is_error else r.structured_content

        tools = await c.list_tools()
        _show("tools/list", {}, ", ".join(t.name for t in tools.tools))
        await call("status")
        t = await call("create_ticket", tenant="acme", subject="Charged twice for order 1182",
                       description="My card was charged twice for the same order yesterday.",
                       customer_email="jane@example.com", customer_name="Jane Roe", priority="high",
                       tags=["billing"])
        assert t is not None
        await call("add_message", tenant="acme", ticket=f"#{t['number']}", author_role="customer",
                   content="Any update? Please refund the duplicate.")
        await call("add_message", tenant="acme", ticket=f"#{t['number']}", author_role="agent", internal=True,
                   content="Verified duplicate charge in the payment log.")
        await call("update_ticket", tenant="acme", ticket=f"#{t['number']}", status="pending", assignee="sam")
        await call("list_tickets", tenant="acme", limit=5)
        await call("search_docs", tenant="acme", query="charged twice for the same order", limit=2)
        res = await c.read_resource(f"ticket://acme/{t['number']}")
        _show(f"resources/read ticket://acme/{t['number']}", {}, res.contents[0].text)
        out.print("\n[bold]Isolation: globex asks for acme's ticket by its id →[/]")
        await call("get_ticket", tenant="globex", ticket=t["id"])
        await call("calculator", expression="49.90 * 2 - 49.90")


def demo() -> None:
    """Reset the demo tenants (acme, globex), run a scripted agent session over stdio, print config.

    Repeatable: each run deletes the tenants an earlier demo made and provisions them afresh (with
    acme's help-center articles), so it shows the same session again."""
    s = settings()
    run_with_db(_reset, s)
    asyncio.run(_session(s))
    script = Path(sys.executable).with_name("support-mcp")
    command, args = (str(script), []) if script.exists() else (sys.executable, ["-m", "support_mcp"])
    # the data directory in `args`: launchers pass the server only a few environment variables
    where = ["--data-dir", str(s.data_dir)] if s.database_url is None else []
    server: dict[str, Any] = {"command": command, "args": [*args, "serve", "--tenant", "acme", *where]}
    if s.database_url is not None:  # a URL may hold a password: env, not args (visible in `ps`)
        server["env"] = {"SUPPORT_MCP_DATABASE_URL": privileges.mask_url(s.database_url.get_secret_value())}
    snippet = {"mcpServers": {"support-mcp": server}}
    out.print("\n[bold green]Done.[/] Claude Desktop: add this to claude_desktop_config.json:")
    typer.echo(json.dumps(snippet, indent=2))
