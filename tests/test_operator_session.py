"""The operator's day (issue 15), end to end: analytics that charge a tenant only its own
callers, a repeatable demo, logs that leave progress bars whole, one log line per refused call."""

from __future__ import annotations

from pathlib import Path

import pytest

from support_mcp import reports
from support_mcp.settings import Settings


async def test_analytics_does_not_charge_refused_calls_to_the_named_tenant(connect_key, db, make_tenant,
                                                                          make_key) -> None:
    victim, own = await make_tenant("victim"), await make_tenant("own")
    key = await make_key(tenants=[own])
    async with connect_key(key) as c:
        for _ in range(3):
            await c.err("list_tickets", tenant=victim)
        await c.err("list_tickets", tenant=victim, limit=0)  # refused arguments, naming the victim
        await c.err("list_tickets", tenant=own, limit=0)  # the key's own tenant: its error counts
        await c.ok("list_tickets", tenant=own)
    stats = {s.slug: s for s in await reports.analytics(db)}
    assert stats[victim].calls == 0 and stats[victim].error_rate is None
    assert stats[own].calls == 2 and stats[own].errors == 1


_VOLATILE = [
    (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>"),
    (r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?Z?", "<time>"),
    (r"untrusted-[0-9a-f]{12}", "untrusted-<nonce>"),
    (r'"(uptime_seconds|round_trip_ms)": [\d.]+', r'"\1": <n>'),
]


def _stable(text: str) -> str:
    import re

    for pattern, replacement in _VOLATILE:
        text = re.sub(pattern, replacement, text)
    return text


def test_demo_is_repeatable_and_searches_the_docs(settings: Settings, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "SUPPORT_MCP_DATA_DIR": str(settings.data_dir), "SUPPORT_MCP_LOG_LEVEL": "WARNING"}
    if settings.database_url is not None:
        env["SUPPORT_MCP_DATABASE_URL"] = settings.database_url.get_secret_value()
    else:
        env.pop("DATABASE_URL", None)
    runs = []
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-m", "support_mcp", "demo"], capture_output=True, text=True,
                              env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs.append(proc.stdout)
    first, second = runs
    search = first[first.index("→ search_docs"):]
    assert "Refunds and duplicate charges" in search[:2000]  # answered from acme's own articles
    assert '"number": 1002' in first  # a fresh acme: its seed ticket is 1001, the session's 1002
    assert _stable(first) == _stable(second)


def test_demo_resets_only_its_own_tenants() -> None:
    from dataclasses import replace
    from datetime import datetime, timezone
    from uuid import uuid4

    from support_mcp import demo
    from support_mcp.tenancy import TenantInfo

    now = datetime.now(timezone.utc)
    name, policies = demo.DEMO_TENANTS["acme"]
    info = TenantInfo(uuid4(), "acme", "Acme Corp", "active", None, "tenant_acme_docs", now, now,
                      branding=demo.DEMO_MARK, policies="edited by the operator")
    assert demo._is_demo(info)  # noqa: SLF001 - made by the demo (marked)
    assert demo._is_demo(replace(info, branding={}, policies=policies))  # noqa: SLF001 - an older demo's
    assert not demo._is_demo(replace(info, branding={}, name="Acme (ours)"))  # noqa: SLF001


def _run_on_a_terminal(args: list[str], env: dict[str, str], timeout: float = 300) -> str:
    """Run the CLI with stdin/stdout/stderr on a pseudo-terminal; everything it wrote, ANSI removed."""
    import os
    import pty
    import re
    import subprocess
    import sys

    main, side = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "support_mcp", *args], stdin=side, stdout=side, stderr=side,
                            env=env, close_fds=True)
    os.close(side)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=timeout)
    os.close(main)
    assert proc.returncode == 0, b"".join(chunks)[-2000:]
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode("utf-8", "replace"))


def test_logs_do_not_break_the_progress_bar(settings: Settings, unique_slug, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "SUPPORT_MCP_DATA_DIR": str(settings.data_dir), "SUPPORT_MCP_LOG_LEVEL": "INFO",
           "SUPPORT_MCP_LOG_FORMAT": "console", "COLUMNS": "80", "TERM": "xterm"}
    if settings.database_url is not None:
        env["SUPPORT_MCP_DATABASE_URL"] = settings.database_url.get_secret_value()
    slug = unique_slug("pb")
    subprocess.run([sys.executable, "-m", "support_mcp", "tenants", "create", slug, "--name", "PB"], env=env,
                   check=True, capture_output=True, timeout=120)
    for i in range(3):
        (tmp_path / f"guide_{i}.md").write_text(f"# Guide {i}\n\nHow to do thing {i}.\n", "utf-8")
    out = _run_on_a_terminal(["docs", "ingest", str(tmp_path), "--tenant", slug], env)
    lines = [line for line in out.replace("\r\n", "\n").split("\n")]
    logged = [line for line in lines if "document_ingested" in line]
    assert len(logged) == 3, out
    for line in logged:  # each log line whole (not wrapped at the terminal width) and not torn by a redraw
        text = line.split("\r")[-1]
        assert "document_ingested" in text and f"tenant={slug}" in text, repr(line)
    assert "ingested: 3 created" in out


async def test_a_refused_call_is_logged_once(connect_key, make_tenant, make_key, capfd) -> None:
    import mcp

    from support_mcp.logging import configure_logging

    mine, other = await make_tenant("lo"), await make_tenant("lx")
    key = await make_key(tenants=[mine])
    configure_logging("INFO", "console")
    try:
        async with connect_key(key) as c:
            capfd.readouterr()
            await c.err("list_tickets", tenant=other)  # refused by the tool's authorization
            refused = capfd.readouterr().err
            await c.err("list_tickets", tenant=mine, limit=0)  # refused by the guard (arguments)
            bad_arguments = capfd.readouterr().err
            with pytest.raises(mcp.MCPError):
                await c.client.read_resource(f"tenant://{other}/profile")  # a refused read
            refused_read = capfd.readouterr().err
            await c.ok("list_tickets", tenant=mine)
            ok = capfd.readouterr().err
    finally:
        configure_logging("WARNING", "console")

    def lines(text: str, *needles: str) -> list[str]:
        return [line for line in text.splitlines() if all(n in line for n in needles)]

    assert len(lines(refused, other)) == 1 and "outcome=not_permitted" in refused, refused
    assert len(lines(bad_arguments, "list_tickets")) == 1 and "outcome=invalid_input" in bad_arguments, bad_arguments
    assert len(lines(refused_read, other)) == 1 and "outcome=not_permitted" in refused_read, refused_read
    assert len(lines(ok, "tool_call")) == 1 and "outcome=ok" in ok, ok
