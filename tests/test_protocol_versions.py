"""Clients on every protocol version we serve, over a real Streamable HTTP server with bearer keys:
2025-06-18 and 2025-11-25 (initialize handshake, sessions) and 2026-07-28 (stateless discovery,
per-request envelope). Each: tools, resources, prompts, an elicitation dialog (all three versions
have one: `elicitation/create` on the handshake versions, an input-required round on 2026-07-28)
and the caller's own log messages.

The SDK client negotiates the newest handshake version; 2025-06-18 is pinned by making that the
version its `initialize` asks for (the server answers with the client's version when it supports it).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx2
import mcp
import mcp.client.session
import pytest
from mcp.client.streamable_http import streamable_http_client
from mcp.types import ElicitResult, LoggingMessageNotificationParams

from test_transports import TEST_TIMEOUT, http_server, server_env, text_of  # noqa: F401 - fixture re-export

ALL_SCOPES = ["read", "write", "admin"]
CASES = [("2025-06-18", ()), ("2025-11-25", ()), ("2026-07-28", ()),
         ("2025-11-25", ("--stateless",)), ("2026-07-28", ("--stateless",))]


@pytest.mark.parametrize(("version", "flags"), CASES,
                         ids=[f"{v}-{'stateless' if f else 'stateful'}" for v, f in CASES])
async def test_client_on_protocol_version(version: str, flags: tuple[str, ...], server_env, make_tenant,
                                          make_key, tmp_path: Path, monkeypatch) -> None:
    a, b = await make_tenant("pva"), await make_tenant("pvb")
    key = await make_key(tenants=[a], scopes=ALL_SCOPES, name=f"pv-{version}")
    modern = version == "2026-07-28"
    if not modern:
        monkeypatch.setattr(mcp.client.session, "LATEST_HANDSHAKE_VERSION", version)
    asked: list[str] = []
    logs: list[LoggingMessageNotificationParams] = []

    async def accept(_ctx: Any, params: Any) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action="accept", content={"confirm": True})

    async def log(params: LoggingMessageNotificationParams) -> None:
        logs.append(params)

    # stateless handshake-era HTTP has no channel for a server-to-client request: no dialog there
    dialogs = modern or not flags
    async with asyncio.timeout(TEST_TIMEOUT), http_server(
        server_env, tmp_path / "server.log", "--transport", "http", *flags
    ) as (port, _):
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
        transport = streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)
        mode: Any = "auto" if modern else "legacy"  # auto: server/discover, then the newest version
        async with mcp.Client(transport, mode=mode, elicitation_callback=accept if dialogs else None,
                              logging_callback=log, log_level="info" if modern else None) as client:
            assert client.protocol_version == version
            caps = client.server_capabilities
            assert caps.tools is not None and caps.resources is not None and caps.prompts is not None
            if not modern:
                assert caps.logging is not None
                await client.set_logging_level("info")

            # tools
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"status", "create_ticket", "get_ticket", "delete_ticket"} <= names
            r = await client.call_tool("create_ticket", {"tenant": a, "subject": f"v{version}",
                                                         "description": "d", "customer_email": "v@x.test"})
            assert not r.is_error, text_of(r)
            number = r.structured_content["number"]
            r = await client.call_tool("list_tickets", {"tenant": b})
            assert r.is_error and "not available" in text_of(r)

            # resources
            templates = {t.name for t in (await client.list_resource_templates()).resource_templates}
            assert {"ticket", "tenant_profile"} <= templates
            read = await client.read_resource(f"ticket://{a}/{number}")
            assert f"v{version}" in read.contents[0].text

            # prompts
            prompts = {p.name for p in (await client.list_prompts()).prompts}
            assert {"draft_reply", "summarize_ticket"} <= prompts
            prompt = await client.get_prompt("summarize_ticket", {"tenant": a, "ticket": f"#{number}"})
            assert f"v{version}" in str(prompt.messages[0].content)

            # elicitation: a destructive tool asks the user, the accepted dialog lets it act
            r = await client.call_tool("delete_ticket", {"tenant": a, "ticket": f"#{number}"})
            if dialogs:
                assert not r.is_error, text_of(r)
                assert len(asked) == 1 and "cannot be undone" in asked[0]
                r = await client.call_tool("get_ticket", {"tenant": a, "ticket": f"#{number}"})
                assert r.is_error
            else:
                assert r.is_error and "confirm" in text_of(r) and asked == []

    # the caller's own events reached it (stateless handshake: a level lasts one request only)
    finished = [m.data for m in logs if m.data.get("event") == "tool_finished"]
    if modern or not flags:
        assert {"create_ticket", "list_tickets"} <= {d["tool"] for d in finished}
        assert {d["tenant"] for d in finished} <= {a, b}
    else:
        assert finished == []
