"""Real transports end to end: `support-mcp serve` subprocesses on the session's database.

stdio (SDK client and a raw pipe), Streamable HTTP (stateful; stateless + JSON) and SSE. Every
test is bounded by TEST_TIMEOUT and stops its subprocess (terminate, then kill) even on failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters

from support_mcp.settings import Settings

TEST_TIMEOUT = 90.0  # whole test, server start included
START_TIMEOUT = 30.0  # until /healthz answers 200
LINE_TIMEOUT = 20.0  # one JSON-RPC answer on the raw pipe
SERVE = (sys.executable, "-m", "support_mcp", "serve")


# --- helpers -------------------------------------------------------------------------------------

@pytest.fixture
def server_env(settings: Settings) -> dict[str, str]:
    """The environment of a server subprocess: the session's database, INFO logs as JSON."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("SUPPORT_MCP_")}
    env |= {"SUPPORT_MCP_DATA_DIR": str(settings.data_dir), "SUPPORT_MCP_LOG_LEVEL": "INFO",
            "SUPPORT_MCP_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1", "SUPPORT_MCP_ISOLATION": settings.isolation}
    if settings.database_url is not None:
        env["SUPPORT_MCP_DATABASE_URL"] = settings.database_url.get_secret_value()
    return env


@pytest.fixture
async def tenants(make_tenant) -> tuple[str, str]:
    """Tenant a (granted to the server) and tenant b (exists, not granted)."""
    return await make_tenant("tra"), await make_tenant("trb")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def stop(proc: asyncio.subprocess.Process, grace: float = 5.0) -> None:
    """Terminate, wait up to `grace` s, then kill. Polls returncode (pipe EOF is not awaited)."""
    for send_signal in (proc.terminate, proc.kill):
        if proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            send_signal()
        for _ in range(int(grace / 0.05)):
            if proc.returncode is not None:
                return
            await asyncio.sleep(0.05)


def tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else ""


@contextlib.asynccontextmanager
async def http_server(env: dict[str, str], log: Path, *args: str) -> AsyncIterator[tuple[int, dict[str, Any]]]:
    """Run `serve --host 127.0.0.1 --port P *args`; yield (P, first /healthz body) once it answers 200.

    Afterwards the server must have exited 0 on SIGTERM (graceful shutdown, database closed)."""
    port = free_port()
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(*SERVE, "--host", "127.0.0.1", "--port", str(port), *args,
                                                    env=env, stdin=asyncio.subprocess.DEVNULL, stdout=out,
                                                    stderr=asyncio.subprocess.STDOUT)
    try:
        health = await wait_healthy(proc, port, log)
        yield port, health
    finally:
        await stop(proc)
    assert proc.returncode == 0, f"no graceful shutdown on SIGTERM (exit {proc.returncode}):\n{tail(log)}"


async def wait_healthy(proc: asyncio.subprocess.Process, port: int, log: Path) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    async with httpx.AsyncClient(timeout=2.0) as http:
        while loop.time() < deadline:
            if proc.returncode is not None:
                pytest.fail(f"server exited with {proc.returncode} before answering:\n{tail(log)}")
            with contextlib.suppress(httpx.TransportError):
                r = await http.get(f"http://127.0.0.1:{port}/healthz")
                if r.status_code == 200:
                    return r.json()
            await asyncio.sleep(0.1)
    pytest.fail(f"/healthz did not answer 200 within {START_TIMEOUT} s:\n{tail(log)}")


def check_health(body: dict[str, Any], settings: Settings) -> None:
    assert body["status"] == "ok" and body["version"]
    assert body["database"]["reachable"] is True
    assert body["database"]["kind"] == ("server" if settings.database_url else "embedded")
    assert "error" not in body["database"]


def text_of(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


async def ticket_round_trip(client: Client, a: str, b: str) -> None:
    """Create a ticket in tenant a, find it by number in list and get; tenant b is refused."""
    r = await client.call_tool("create_ticket", {"tenant": a, "subject": "Printer on fire",
                                                 "description": "It smells of toner.",
                                                 "customer_email": "pat@example.com"})
    assert not r.is_error, text_of(r)
    number = r.structured_content["number"]
    assert isinstance(number, int) and r.structured_content["subject"] == "Printer on fire"

    r = await client.call_tool("list_tickets", {"tenant": a})
    assert not r.is_error, text_of(r)
    assert number in {t["number"] for t in r.structured_content["tickets"]}

    r = await client.call_tool("get_ticket", {"tenant": a, "ticket": f"#{number}"})
    assert not r.is_error, text_of(r)
    assert r.structured_content["number"] == number
    assert r.structured_content["customer"]["email"] == "pat@example.com"

    r = await client.call_tool("list_tickets", {"tenant": b})
    assert r.is_error and "not available" in text_of(r)


class RawStdio:
    """A `serve` subprocess on raw pipes: newline-delimited JSON-RPC, every stdout line kept."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    async def send(self, message: dict[str, Any] | str) -> None:
        line = message if isinstance(message, str) else json.dumps(message)
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()

    async def answer(self, request_id: int) -> dict[str, Any]:
        """Read stdout lines until the response to `request_id` (earlier lines are kept too)."""
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), LINE_TIMEOUT)
            assert line, f"server closed stdout before answering request {request_id}"
            self.lines.append(line.decode())
            try:
                message = json.loads(line)
            except ValueError:
                pytest.fail(f"non-protocol bytes on stdout: {line!r}")
            if message.get("id") == request_id:
                return message

    async def handshake(self) -> dict[str, Any]:
        await self.send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                         "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                                    "clientInfo": {"name": "raw-test", "version": "0"}}})
        init = await self.answer(1)
        await self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return init

    async def close(self, timeout: float = 10.0) -> int | None:
        """Close stdin (how a stdio client says goodbye), keep the rest of stdout, wait for exit."""
        self.proc.stdin.close()
        with contextlib.suppress(asyncio.TimeoutError):
            rest = await asyncio.wait_for(self.proc.stdout.read(), timeout)
            self.lines += rest.decode().splitlines(keepends=True)
            await asyncio.wait_for(self.proc.wait(), timeout)
        return self.proc.returncode


@contextlib.asynccontextmanager
async def raw_stdio(env: dict[str, str], tenant: str, stderr: Path) -> AsyncIterator[RawStdio]:
    with stderr.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(*SERVE, "--tenant", tenant, env=env, stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE, stderr=err)
    try:
        yield RawStdio(proc)
    finally:
        await stop(proc)


# --- stdio ---------------------------------------------------------------------------------------

async def test_stdio_sdk_client(server_env, tenants) -> None:
    a, b = tenants
    params = StdioServerParameters(command=sys.executable, args=["-m", "support_mcp", "serve", "--tenant", a],
                                   env=server_env)
    async with asyncio.timeout(TEST_TIMEOUT), Client(params) as client:  # the SDK stops the process on exit
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"status", "calculator", "create_ticket", "list_tickets", "get_ticket"} <= names
        await ticket_round_trip(client, a, b)
        r = await client.call_tool("get_ticket", {"tenant": b, "ticket": "#1"})
        assert r.is_error and "not available" in text_of(r)


async def test_stdio_stdout_carries_only_protocol(server_env, tenants, tmp_path: Path) -> None:
    a, _ = tenants
    async with asyncio.timeout(TEST_TIMEOUT), raw_stdio(server_env, a, tmp_path / "err.log") as srv:
        init = await srv.handshake()
        assert init["result"]["serverInfo"]["name"] == "support-mcp", init
        await srv.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        tools = await srv.answer(2)
        assert "create_ticket" in {t["name"] for t in tools["result"]["tools"]}
        await srv.send({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                        "params": {"name": "status", "arguments": {}}})
        assert (await srv.answer(3))["result"]["structuredContent"]["accessible_tenants"] == [a]
        code = await srv.close()
    assert code == 0, f"exit code {code} after stdin closed:\n{tail(tmp_path / 'err.log')}"
    assert srv.lines
    for line in srv.lines:
        assert line.endswith("\n") and json.loads(line)["jsonrpc"] == "2.0", f"non-protocol stdout: {line!r}"
    stderr = (tmp_path / "err.log").read_text()
    assert '"serving"' in stderr and '"tool_call"' in stderr  # the logs went to stderr


async def test_stdio_survives_garbage(server_env, tenants, tmp_path: Path) -> None:
    a, _ = tenants
    async with asyncio.timeout(TEST_TIMEOUT), raw_stdio(server_env, a, tmp_path / "err.log") as srv:
        await srv.handshake()
        for garbage in ("{this is not json", '{"jsonrpc": "2.0", "id": 9, "method":', "[]", '{"hello": 1}', ""):
            await srv.send(garbage)
        await srv.send({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                        "params": {"name": "calculator", "arguments": {"expression": "0.1 + 0.2"}}})
        answer = await srv.answer(2)
        assert answer["result"]["structuredContent"]["result"] == "0.3", answer
        assert srv.proc.returncode is None
        code = await srv.close()
    assert code == 0, tail(tmp_path / "err.log")
    for line in srv.lines:  # error replies to the garbage (if any) are still JSON-RPC
        assert json.loads(line)["jsonrpc"] == "2.0", line


# --- Streamable HTTP -----------------------------------------------------------------------------

@pytest.mark.parametrize("flags", [(), ("--stateless", "--json-response")], ids=["stateful", "stateless-json"])
async def test_streamable_http(server_env, tenants, settings, tmp_path: Path, flags: tuple[str, ...]) -> None:
    a, b = tenants
    async with asyncio.timeout(TEST_TIMEOUT), http_server(
        server_env, tmp_path / "server.log", "--transport", "http", "--tenant", a, *flags
    ) as (port, health):
        check_health(health, settings)
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            await ticket_round_trip(client, a, b)
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:  # a second session sees the same data
            r = await client.call_tool("list_tickets", {"tenant": a, "query": "Printer"})
            assert not r.is_error and len(r.structured_content["tickets"]) == 1


# --- SSE -----------------------------------------------------------------------------------------

async def test_sse(server_env, tenants, settings, tmp_path: Path) -> None:
    a, b = tenants
    async with asyncio.timeout(TEST_TIMEOUT), http_server(
        server_env, tmp_path / "server.log", "--transport", "sse", "--tenant", a
    ) as (port, health):
        check_health(health, settings)
        async with Client(sse_client(f"http://127.0.0.1:{port}/sse")) as client:
            r = await client.call_tool("status", {})
            assert not r.is_error, text_of(r)
            assert r.structured_content["accessible_tenants"] == [a]
            assert r.structured_content["database"]["reachable"] is True
            r = await client.call_tool("list_tickets", {"tenant": a})
            assert not r.is_error and r.structured_content["tickets"] == []
            await ticket_round_trip(client, a, b)
        async with httpx.AsyncClient(timeout=5.0) as http:  # still healthy after the session closed
            r = await http.get(f"http://127.0.0.1:{port}/healthz")
            assert r.status_code == 200 and r.json()["status"] == "ok"


# --- Stripe over a real server process: webhooks on the HTTP app, tools reach the double ----------

async def test_stripe_webhook_and_tools_over_http(server_env, stripe_tenant, stripe_double, settings,
                                                  tmp_path: Path) -> None:
    from support_mcp.stripe_sandbox import make_event, signed_webhook

    t = await stripe_tenant("trs")
    ch = t.acct.charge(amount=1234, customer=t.acct.customer(email="http@example.com"))
    event = make_event("charge.dispute.created", t.acct.dispute(charge=ch), account=t.account_id)
    body, headers = signed_webhook(event, t.secret)
    env = server_env | {"SUPPORT_MCP_STRIPE_API_KEY": settings.stripe_api_key.get_secret_value(),
                        "SUPPORT_MCP_STRIPE_API_BASE": settings.stripe_api_base}
    async with asyncio.timeout(TEST_TIMEOUT), http_server(
        env, tmp_path / "server.log", "--transport", "http", "--tenant", t.slug
    ) as (port, _):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            first = await http.post(f"/webhooks/stripe/{t.slug}", content=body, headers=headers)
            replay = await http.post(f"/webhooks/stripe/{t.slug}", content=body, headers=headers)
            forged = await http.post(f"/webhooks/stripe/{t.slug}", content=body,
                                     headers={**headers, "Stripe-Signature": "t=1,v1=00"})
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            r = await client.call_tool("lookup_charge", {"tenant": t.slug, "id": ch["id"]})
    assert first.status_code == 200 and first.json()["outcome"].startswith("opened ticket #")
    assert replay.status_code == 200 and replay.json()["duplicate"] is True
    assert forged.status_code == 400
    assert not r.is_error, text_of(r)
    assert r.structured_content["disputed"] and len(r.structured_content["tickets"]) == 1
