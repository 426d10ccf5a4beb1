"""A PostgreSQL outage under load, end to end (issue 10, finding 6).

The test starts its own throwaway cluster (the embedded pgserver binaries, initdb + pg_ctl in a
temporary data directory, as the OS user `pgserver` when we are root), a real `support-mcp serve`
HTTP process on it, and a bounded load of create_ticket calls. PostgreSQL is stopped (fast:
sessions are terminated mid-flight) and started again while the load runs. Asserted: no HTTP 500;
no "internal error"; during the outage a one-line tool error for a cached key and 503 +
Retry-After where no tool error is possible (a key that must be verified against the database,
/healthz); every acknowledged write is present afterwards. Bounded by counts, never by timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import httpx
import pytest

from support_mcp import keys, migrations, tenancy
from support_mcp.settings import Settings
from test_transports import free_port, http_server, tail

WORKERS = 4
MAX_CALLS = 2000  # per worker: the load is bounded whatever happens
PHASE_TARGET = 12  # answers of the phase's kind seen before moving on
POLL = 0.05
POLL_LIMIT = 2400  # polls per phase (the safety net of a bounded loop, not a timing assertion)
UNAVAILABLE = "the database is unavailable; retry in a few seconds"
TOOL_PREFIX = "Error executing tool create_ticket: "  # how the SDK words every tool error
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
               "mcp-protocol-version": "2025-06-18"}


class Cluster:
    """A throwaway PostgreSQL cluster on 127.0.0.1:port (TCP only)."""

    def __init__(self, root: Path) -> None:
        from pgserver._commands import POSTGRES_BIN_PATH  # no public name for it

        self.bin, self.root, self.port = POSTGRES_BIN_PATH, root, free_port()
        self.data, self.log = root / "data", root / "postgres.log"
        self.user: str | None = None
        if os.geteuid() == 0:  # postgres refuses to run as root: the same OS user pgserver uses
            from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

            self.user = "pgserver"
            ensure_user_exists(self.user)
            ensure_prefix_permissions(self.bin)
            ensure_folder_permissions(self.bin, 0o555)
            ensure_folder_permissions(self.bin.parent / "lib", 0o444)
            root.chmod(0o755)
            self.data.mkdir()
            shutil.chown(self.data, self.user, self.user)
            self.log.touch()
            shutil.chown(self.log, self.user, self.user)
        self._run("initdb", "-D", str(self.data), "--auth=trust", "--encoding=utf8", "-U", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, exe: str, *args: str) -> None:
        with tempfile.TemporaryFile() as err:  # pipes would be inherited by the postmaster and hang
            proc = subprocess.run([str(self.bin / exe), *args], stdout=subprocess.DEVNULL, stderr=err,
                                  user=self.user, timeout=120, check=False)
            if proc.returncode:
                err.seek(0)
                raise RuntimeError(f"{exe} failed: {err.read().decode(errors='replace')}\n{tail(self.log)}")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "120",
                  "-o", f"-h 127.0.0.1 -p {self.port} -k ''", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "120", "stop")


@pytest.fixture
def cluster():
    root = Path(tempfile.mkdtemp(prefix="support-mcp-outage-"))  # not pytest's 0700 basetemp (see conftest)
    try:
        c = Cluster(root)
        c.start()
        try:
            yield c
        finally:
            with contextlib.suppress(RuntimeError):  # already stopped if the test failed mid-outage
                c.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


class Load:
    """Workers that each call create_ticket up to MAX_CALLS times and record every answer."""

    def __init__(self, http: httpx.AsyncClient, key: str, tenant: str) -> None:
        self.http, self.key, self.tenant = http, key, tenant
        self.answers: list[tuple[str, str, str]] = []  # (kind, subject, detail)
        self.acknowledged: set[str] = set()
        self.running = True
        self._ids = itertools.count(1)

    def count(self, kind: str) -> int:
        return sum(1 for k, _, _ in self.answers if k == kind)

    async def worker(self, w: int) -> None:
        for i in range(MAX_CALLS):
            if not self.running:
                return
            subject = f"outage w{w} #{i}"
            self.answers.append(await self._create(subject, f"load{w}@example.com"))
            if self.answers[-1][0] == "ok":
                self.acknowledged.add(subject)
                await asyncio.sleep(0)
            else:
                await asyncio.sleep(0.02)  # a polite client backs off (bounds the calls, asserts nothing)

    async def _create(self, subject: str, email: str) -> tuple[str, str, str]:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": "tools/call",
                "params": {"name": "create_ticket", "arguments": {
                    "tenant": self.tenant, "subject": subject, "description": "load",
                    "customer_email": email}}}
        r = await self.http.post("/mcp", json=body, headers={**MCP_HEADERS, "Authorization": f"Bearer {self.key}"})
        if r.status_code != 200:
            return f"http {r.status_code}", subject, r.text[:300] + f" retry-after={r.headers.get('retry-after')}"
        result = r.json().get("result")
        if result is None:
            return "jsonrpc error", subject, r.text[:300]
        text = " ".join(c.get("text", "") for c in result.get("content", []))
        if not result.get("isError"):
            return "ok", subject, ""
        message = text.removeprefix(TOOL_PREFIX)
        if message == UNAVAILABLE:
            return "unavailable", subject, text
        if message.startswith("the database connection was lost while committing") and "\n" not in message:
            return "outcome unknown", subject, text
        return "other error", subject, text[:300]


async def _until(predicate, what: str, load: Load, workers: list[asyncio.Task]) -> None:  # noqa: ANN001
    for _ in range(POLL_LIMIT):
        if predicate():
            return
        if all(w.done() for w in workers):
            break
        await asyncio.sleep(POLL)
    kinds = Counter(k for k, _, _ in load.answers)
    pytest.fail(f"gave up waiting for {what}: {dict(kinds)}; last answers {load.answers[-3:]}")


async def test_outage_under_load_answers_cleanly_and_loses_no_acknowledged_write(cluster, tmp_path: Path) -> None:
    settings = Settings(_env_file=None, database_url=cluster.url, data_dir=tmp_path / "data")
    async with migrations.database(settings) as db:
        tenant = "outage"
        await tenancy.create_tenant(db, tenant, "Outage Inc")
        cached = (await keys.create_key(db, "cached", tenants=[tenant], all_tenants=False,
                                        scopes=["read", "write"])).key
        fresh = (await keys.create_key(db, "fresh", tenants=[tenant], all_tenants=False, scopes=["read"])).key
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("SUPPORT_MCP_")}
    env |= {"SUPPORT_MCP_DATABASE_URL": cluster.url, "SUPPORT_MCP_DATA_DIR": str(tmp_path / "data"),
            "SUPPORT_MCP_LOG_LEVEL": "INFO", "SUPPORT_MCP_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1",
            "SUPPORT_MCP_CACHE_SECONDS": "3600",  # the cached key reaches the tools during the outage
            "SUPPORT_MCP_RATE_LIMIT_PER_MINUTE": "0", "SUPPORT_MCP_DB_CONNECT_TIMEOUT": "5",
            "SUPPORT_MCP_ISOLATION": os.environ.get("SUPPORT_MCP_ISOLATION", "schema")}
    log = tmp_path / "server.log"
    async with asyncio.timeout(600), http_server(env, log, "--transport", "http", "--stateless",
                                                  "--json-response") as (port, _):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            load = Load(http, cached, tenant)
            workers = [asyncio.create_task(load.worker(w)) for w in range(WORKERS)]
            try:
                await _until(lambda: load.count("ok") >= PHASE_TARGET, "successes before the outage", load, workers)
                await asyncio.to_thread(cluster.stop)
                await _until(lambda: load.count("unavailable") >= PHASE_TARGET, "outage answers", load, workers)
                probes = [await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                          headers={**MCP_HEADERS, "Authorization": f"Bearer {fresh}"}),
                          await http.get("/healthz", headers={"Authorization": f"Bearer {fresh}"}),
                          await http.get("/healthz")]
                ok_before = load.count("ok")
                await asyncio.to_thread(cluster.start)
                await _until(lambda: load.count("ok") >= ok_before + PHASE_TARGET, "successes after the restart", load, workers)
            finally:
                load.running = False
                await asyncio.gather(*workers)
            after = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                    headers={**MCP_HEADERS, "Authorization": f"Bearer {fresh}"})
    kinds = Counter(k for k, _, _ in load.answers)
    unexpected = [a for a in load.answers if a[0] not in ("ok", "unavailable", "outcome unknown")]
    assert not unexpected, (kinds, unexpected[:5])
    for r in probes:  # where no tool error is possible: 503 + Retry-After, one line of JSON
        assert r.status_code == 503, (r.status_code, r.text)
        assert int(r.headers["retry-after"]) > 0
        assert "\n" not in r.text and "Traceback" not in r.text
    assert probes[0].json() == {"error": "temporarily_unavailable", "error_description": UNAVAILABLE}
    assert after.status_code == 200  # the fresh key verifies again once the database is back
    async with migrations.database(settings) as db, db.tenant_scope(tenant) as s:
        stored = {r["subject"] for r in await s.conn.fetch("SELECT subject FROM tickets")}
    assert load.acknowledged and load.acknowledged <= stored, sorted(load.acknowledged - stored)[:5]
    server_log = log.read_text(errors="replace")
    assert "Exception in ASGI application" not in server_log and "tool_crashed" not in server_log, tail(log)


async def test_outage_in_memory_every_request_kind_answers_one_line(cluster, tmp_path: Path) -> None:
    """stdio-style API key (verified against the database on every request here): tools, resources
    and prompts each answer one clean line while PostgreSQL is stopped, and work again after."""
    import mcp
    from mcp.shared.exceptions import MCPError
    from pydantic import SecretStr

    from support_mcp.server import build_server

    settings = Settings(_env_file=None, database_url=cluster.url, data_dir=tmp_path / "data", cache_seconds=0)
    async with migrations.database(settings) as db:
        await tenancy.create_tenant(db, "down", "Down Inc")
        key = (await keys.create_key(db, "k", tenants=["down"], all_tenants=False, scopes=["read", "write"])).key
        server = build_server(settings.model_copy(update={"api_key": SecretStr(key)}), db=db)
        async with mcp.Client(server) as client:
            created = await client.call_tool("create_ticket", {"tenant": "down", "subject": "s", "description": "d",
                                                               "customer_email": "d@example.com"})
            assert not created.is_error
            await asyncio.to_thread(cluster.stop)
            try:
                texts = []
                for tool, args in (("list_tickets", {"tenant": "down"}), ("status", {})):
                    r = await client.call_tool(tool, args)
                    assert r.is_error, tool
                    texts.append(r.content[0].text)
                for call in (lambda: client.read_resource("ticket://down/1001"),
                             lambda: client.get_prompt("summarize_ticket", {"tenant": "down", "ticket": "1001"})):
                    with pytest.raises(MCPError) as err:
                        await call()
                    texts.append(str(err.value))
            finally:
                await asyncio.to_thread(cluster.start)
            for text in texts:
                assert text.endswith(UNAVAILABLE) and "\n" not in text, text
            again = await client.call_tool("list_tickets", {"tenant": "down"})
            assert not again.is_error and len(again.structured_content["tickets"]) == 1
