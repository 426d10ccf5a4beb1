"""The MCP logging capability: notifications/message carry only the caller's own tool events.

In memory with the real SDK client (handshake era: `logging/setLevel`; 2026-07-28: the per-request
opt-in) and over a real Streamable HTTP server with two concurrent sessions."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx2
import mcp
import pytest
from mcp.client.streamable_http import streamable_http_client
from mcp.types import LoggingMessageNotificationParams

from support_mcp.access import Principal
from support_mcp.server import build_server
from test_transports import TEST_TIMEOUT, http_server, server_env  # noqa: F401 - fixture re-export


class Logs:
    """A logging_callback that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[LoggingMessageNotificationParams] = []

    async def __call__(self, params: LoggingMessageNotificationParams) -> None:
        self.messages.append(params)

    def events(self) -> list[tuple[str, str]]:
        return [(m.level, m.data["event"]) for m in self.messages]


def server_for(db, kb, tenants: list[str]):  # noqa: ANN001, ANN201
    return build_server(db.settings, Principal.operator(tenants, False), db=db, kb=kb)


async def test_capability_declared_and_nothing_sent_before_set_level(db, kb, make_tenant) -> None:
    a = await make_tenant("cla")
    logs = Logs()
    async with mcp.Client(server_for(db, kb, [a]), logging_callback=logs, mode="legacy") as client:
        assert client.server_capabilities.logging is not None
        r = await client.call_tool("list_tickets", {"tenant": a})
        assert not r.is_error
    assert logs.messages == []


async def test_set_level_filters_per_session(db, kb, make_tenant) -> None:
    a = await make_tenant("clb")
    server = server_for(db, kb, [a])
    debug, info, warning = Logs(), Logs(), Logs()
    async with (mcp.Client(server, logging_callback=debug, mode="legacy") as c_debug,
                mcp.Client(server, logging_callback=info, mode="legacy") as c_info,
                mcp.Client(server, logging_callback=warning, mode="legacy") as c_warning):
        for client, level in ((c_debug, "debug"), (c_info, "info"), (c_warning, "warning")):
            assert (await client.set_logging_level(level)).model_dump(exclude_none=True) == {}
        for client in (c_debug, c_info, c_warning):
            assert not (await client.call_tool("list_tickets", {"tenant": a})).is_error
            r = await client.call_tool("get_ticket", {"tenant": a, "ticket": "#999999"})
            assert r.is_error
    assert debug.events() == [("debug", "tool_started"), ("info", "tool_finished"),
                              ("debug", "tool_started"), ("warning", "tool_finished")]
    assert info.events() == [("info", "tool_finished"), ("warning", "tool_finished")]
    assert warning.events() == [("warning", "tool_finished")]
    ok, missing = info.messages[0], info.messages[1]
    assert ok.logger == "support_mcp"
    assert ok.data["tool"] == "list_tickets" and ok.data["tenant"] == a and ok.data["outcome"] == "ok"
    assert missing.data["tool"] == "get_ticket" and missing.data["outcome"] == "not_found"
    assert isinstance(ok.data["ms"], float) and len(ok.data["call"]) == 8


async def test_level_can_be_lowered_and_raised(db, kb, make_tenant) -> None:
    a = await make_tenant("clc")
    logs = Logs()
    async with mcp.Client(server_for(db, kb, [a]), logging_callback=logs, mode="legacy") as client:
        await client.set_logging_level("emergency")
        await client.call_tool("list_tickets", {"tenant": a})
        assert logs.messages == []
        await client.set_logging_level("info")
        await client.call_tool("list_tickets", {"tenant": a})
        assert logs.events() == [("info", "tool_finished")]


async def test_messages_are_masked_like_the_server_log(db, kb, make_tenant) -> None:
    from support_mcp import clientlog

    a = await make_tenant("cld")
    server = server_for(db, kb, [a])

    @server.tool()
    async def note(text: str) -> str:  # a test-only tool that reports customer text in an event
        await clientlog.emit("info", "note", text=text, api_key="smk_live_secret", nested={"to": text})
        return "noted"

    logs = Logs()
    secret_text = "pat@example.com paid with 4242 4242 4242 4242, call +44 20 7946 0958, Bearer abc.def"
    async with mcp.Client(server, logging_callback=logs, mode="legacy") as client:
        await client.set_logging_level("debug")
        r = await client.call_tool("note", {"text": secret_text})
        assert not r.is_error
    (message,) = [m for m in logs.messages if m.data["event"] == "note"]
    text = message.data["text"]
    for leaked in ("pat@example.com", "4242 4242", "7946", "abc.def", "smk_live_secret"):
        assert leaked not in str(message.data)
    assert "[email]" in text and "[card]" in text and "[phone]" in text and "[token]" in text
    assert message.data["api_key"] == "[secret]" and message.data["nested"]["to"] == text


async def test_modern_protocol_uses_the_per_request_opt_in(db, kb, make_tenant) -> None:
    """2026-07-28 has no logging/setLevel: the request's own _meta level decides (SDK filters)."""
    a = await make_tenant("cle")
    server = server_for(db, kb, [a])
    quiet, info = Logs(), Logs()
    async with mcp.Client(server, logging_callback=quiet, mode="2026-07-28") as client:
        assert client.protocol_version == "2026-07-28"
        assert not (await client.call_tool("list_tickets", {"tenant": a})).is_error
    async with mcp.Client(server, logging_callback=info, mode="2026-07-28", log_level="info") as client:
        assert not (await client.call_tool("list_tickets", {"tenant": a})).is_error
    assert quiet.messages == []
    assert info.events() == [("info", "tool_finished")]


@pytest.mark.parametrize("flags", [(), ("--stateless",)], ids=["stateful", "stateless"])
async def test_http_sessions_never_see_each_others_events(server_env, make_tenant, make_key, tmp_path: Path,
                                                          flags: tuple[str, ...]) -> None:
    """Two keys on two tenants call concurrently over one HTTP server: each session gets its own
    events only (stateful: per-session setLevel; stateless: the 2026-07-28 per-request opt-in)."""
    a, b = await make_tenant("clha"), await make_tenant("clhb")
    key_a, key_b = await make_key(tenants=[a], name="log-a"), await make_key(tenants=[b], name="log-b")
    logs_a, logs_b, logs_quiet = Logs(), Logs(), Logs()
    modern = bool(flags)
    opts: dict[str, Any] = {"mode": "2026-07-28", "log_level": "debug"} if modern else {"mode": "legacy"}

    def client(port: int, key: str, logs: Logs, **extra: Any) -> mcp.Client:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
        return mcp.Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http),
                          logging_callback=logs, **{**opts, **extra})

    async def work(c: mcp.Client, tenant: str) -> None:
        for _ in range(5):
            assert not (await c.call_tool("list_tickets", {"tenant": tenant})).is_error
            await asyncio.sleep(0)

    async with asyncio.timeout(TEST_TIMEOUT), http_server(
        server_env, tmp_path / "server.log", "--transport", "http", *flags
    ) as (port, _):
        async with (client(port, key_a, logs_a) as ca, client(port, key_b, logs_b) as cb,
                    client(port, key_a, logs_quiet, **({"log_level": None} if modern else {})) as quiet):
            if not modern:
                await ca.set_logging_level("debug")
                await cb.set_logging_level("debug")
            await asyncio.gather(work(ca, a), work(cb, b), work(quiet, a))
    assert logs_quiet.messages == []
    for logs, tenant in ((logs_a, a), (logs_b, b)):
        assert logs.events() == [("debug", "tool_started"), ("info", "tool_finished")] * 5
        assert {m.data["tenant"] for m in logs.messages} == {tenant}
    assert not {m.data["call"] for m in logs_a.messages} & {m.data["call"] for m in logs_b.messages}


async def test_progress_milestones_reach_the_caller(db, kb, make_tenant) -> None:
    a = await make_tenant("clp")
    logs = Logs()
    async with mcp.Client(server_for(db, kb, [a]), logging_callback=logs, mode="legacy") as client:
        await client.set_logging_level("info")
        r = await client.call_tool("ingest_document", {"tenant": a, "title": "Printer",
                                                       "text": "# Printer\n\nPaper jam: open tray 2."})
        assert not r.is_error
    progress = [m.data for m in logs.messages if m.data["event"] == "progress"]
    assert progress and all(p["total"] >= p["done"] >= 0 for p in progress)
    assert logs.events()[-1] == ("info", "tool_finished")
