"""The CLI end to end against the session's database (in-process and one real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support_mcp.cli import app




def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_tenant_lifecycle_via_cli(cli_env, unique_slug, tmp_path: Path) -> None:
    slug = unique_slug("cli")
    code, out, _ = _run("tenants", "create", slug, "--name", "CLI Co", "--stripe-account", "acct_9",
                        "--webhook-secret", "whsec_abc")
    assert code == 0 and f"created tenant '{slug}'" in out
    code, out, err = _run("tenants", "create", slug, "--name", "Again")
    assert code == 1 and "already exists" in err
    code, out, _ = _run("tenants", "list", "--json")
    assert code == 0 and slug in {t["slug"] for t in json.loads(out)}
    code, out, _ = _run("tenants", "show", slug)
    shown = json.loads(out)
    assert shown["name"] == "CLI Co" and shown["has_webhook_secret"] is True
    assert "whsec_abc" not in out
    assert _run("tenants", "suspend", slug)[0] == 0
    assert json.loads(_run("tenants", "show", slug)[1])["status"] == "suspended"
    assert _run("tenants", "resume", slug)[0] == 0
    code, _, err = _run("tenants", "delete", slug)
    assert code == 2 and "--yes" in err
    assert _run("tenants", "backup", slug, "-o", str(tmp_path / "b.tar"))[0] == 0
    assert _run("tenants", "delete", slug, "--yes")[0] == 0
    code, out, _ = _run("tenants", "restore", str(tmp_path / "b.tar"), "--as", f"{slug}_r")
    assert code == 0 and f"restored '{slug}_r'" in out
    code, out, _ = _run("migrate")
    assert code == 0 and "0 failed" in out


@pytest.mark.parametrize("slug", ["Alpha", "a-b", "a;drop schema public", "../x", "pg_catalog", "x" * 41])
def test_cli_refuses_bad_slugs(cli_env, slug: str) -> None:
    code, out, err = _run("tenants", "create", slug, "--name", "Bad")
    assert code == 1 and "error:" in err and "Traceback" not in err + out


def test_cli_subprocess_keeps_stdout_clean(cli_env, unique_slug) -> None:
    slug = unique_slug("sub")
    env = {**os.environ, **cli_env, "SUPPORT_MCP_LOG_LEVEL": "INFO"}
    proc = subprocess.run([sys.executable, "-m", "support_mcp", "tenants", "create", slug, "--name", "Sub"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == proc.stdout.strip().splitlines()[0]  # one line, no log noise
    assert "tenant_created" in proc.stderr  # logs went to stderr


def test_demo_runs_a_real_stdio_session(cli_env) -> None:
    env = {**os.environ, **cli_env}
    proc = subprocess.run([sys.executable, "-m", "support_mcp", "demo"], capture_output=True, text=True,
                          env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for step in ("tools/list", "→ create_ticket", "→ add_message", "→ list_tickets", "resources/read ticket://acme/",
                 "→ calculator"):
        assert step in out, step
    # globex cannot see acme's ticket: answered like a missing one
    isolation = out[out.index("Isolation"):]
    assert "get_ticket (error)" in isolation and "not found" in isolation
    snippet = json.loads(out[out.index('{\n  "mcpServers"'):])
    args = snippet["mcpServers"]["support-mcp"]["args"]
    assert args[args.index("serve"):][:3] == ["serve", "--tenant", "acme"]
    if "SUPPORT_MCP_DATABASE_URL" not in cli_env:  # the data directory in args, not env (launchers drop env)
        assert args[-2:] == ["--data-dir", cli_env["SUPPORT_MCP_DATA_DIR"]]
    assert "Traceback" not in proc.stderr


async def test_db_grants_prints_and_applies_the_app_role_sql(cli_env, db) -> None:
    import asyncio
    import secrets

    code, out, _ = _run("db", "grants")
    assert code == 0 and 'CREATE ROLE "support_mcp_app" LOGIN NOINHERIT' in out
    assert "GRANT EXECUTE ON FUNCTION" in out and "stripe_webhook_secret" not in out.split("GRANT SELECT")[1][:400]
    role = f"sm_probe_{secrets.token_hex(4)}"
    code, _, err = await asyncio.to_thread(_run, "db", "grants", "--apply", "--role", role)
    try:
        assert code == 0, err
        async with db.admin_scope() as conn:
            row = await conn.fetchrow("SELECT rolsuper, rolinherit, rolcanlogin FROM pg_roles WHERE rolname = $1", role)
            assert tuple(row) == (False, False, True)
            assert await conn.fetchval("SELECT has_function_privilege($1, 'public.support_mcp_key_by_prefix(text)',"
                                       " 'EXECUTE')", role)
            assert not await conn.fetchval("SELECT has_table_privilege($1, 'global.api_keys', 'SELECT')", role)
    finally:
        async with db.admin_scope() as conn:
            await conn.execute(f'DROP OWNED BY "{role}"')
            await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
def test_keys_create_can_allow_the_confirm_argument(cli_env, unique_slug) -> None:
    slug = unique_slug("clk")
    assert _run("tenants", "create", slug, "--name", "Keys Co")[0] == 0
    names = {flag: unique_slug("key") for flag in (True, False)}
    for flag, name in names.items():
        args = ["keys", "create", "--name", name, "--tenant", slug, "--scope", "admin"]
        code, out, _ = _run(*args, *(["--allow-confirm-argument"] if flag else []))
        assert code == 0 and out.strip().splitlines()[-1].startswith("smk_")
    listed = {k["name"]: k for k in json.loads(_run("keys", "list", "--json")[1])}
    assert listed[names[True]]["allow_confirm_argument"] is True
    assert listed[names[False]]["allow_confirm_argument"] is False
    assert _run("keys", "list")[0] == 0
