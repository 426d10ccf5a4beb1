"""The sandbox across processes: an episode made here is served by a `serve --stripe-sandbox`
subprocess (stdio, the episode's key), and what its tools change shows in this process's export."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from support_mcp.episodes import service

EXAMPLE = Path(service.__file__).parent / "examples" / "acme_payments.json"


async def test_an_episode_made_here_is_served_by_another_process(db, kb, settings, tmp_path: Path) -> None:
    ep = await service.create(db, kb, EXAMPLE)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("SUPPORT_MCP_")}
    env |= {"SUPPORT_MCP_DATA_DIR": str(settings.data_dir), "SUPPORT_MCP_LOG_FORMAT": "json",
            "SUPPORT_MCP_API_KEY": ep["api_key"], "SUPPORT_MCP_CONFIRM_FALLBACK": "on",
            "SUPPORT_MCP_ISOLATION": settings.isolation}
    if settings.database_url is not None:
        env["SUPPORT_MCP_DATABASE_URL"] = settings.database_url.get_secret_value()
    # the server's stderr (its logs) into a file: sh runs it with 2>> and execs it
    params = StdioServerParameters(command="/bin/sh", env=env, args=[
        "-c", 'exec "$0" -m support_mcp serve --stripe-sandbox 2>>"$1"', sys.executable, str(tmp_path / "err.log")])
    async with asyncio.timeout(90), Client(params) as client:
        looked = await client.call_tool("lookup_charge", {"tenant": ep["tenant"], "id": "ch_skates2"})
        refund = await client.call_tool("create_refund", {"tenant": ep["tenant"], "charge": "ch_skates2",
                                                          "reason": "duplicate", "confirm": "ch_skates2"})
    err = (tmp_path / "err.log").read_text()
    assert not looked.is_error and looked.structured_content["amount"] == 4900, err[-2000:]
    assert not refund.is_error, refund.content
    assert '"stripe_sandbox_listening"' in err and '"url": "http://127.0.0.1:' in err
    state = (await service.state(db, ep["episode"]))["state"]
    charge = next(c for c in state["stripe"]["charges"] if c["id"] == "ch_skates2")
    assert charge["refunded"] and refund.structured_content["refund_id"] in {r["id"] for r in state["stripe"]["refunds"]}
    await service.destroy(db, ep["episode"], kb)
