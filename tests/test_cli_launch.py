"""Launchers and operators (issue 11): global --data-dir/--database-url flags, `serve --tenant` refusing a
tenant the database lacks, and `support-mcp doctor`. Real subprocesses where launchers matter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from support_mcp import doctor, tenancy
from support_mcp.cli import app, hoist_global_options
from support_mcp.privileges import mask_url
from support_mcp.settings import Settings

BAD_URL = "postgresql://nobody:s3cret-pw@127.0.0.1:1/nowhere"


def _flags(settings: Settings) -> list[str]:
    """The session's database as command-line flags only."""
    flags = ["--data-dir", str(settings.data_dir)]
    if settings.database_url is not None:
        flags += ["--database-url", settings.database_url.get_secret_value()]
    return flags


def _bare_env(**extra: str) -> dict[str, str]:
    """The environment a launcher gives: nothing of ours (no SUPPORT_MCP_*, no DATABASE_URL)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORT_MCP_") and k != "DATABASE_URL"}
    return {**env, "SUPPORT_MCP_LOG_LEVEL": "WARNING",  # and the suite's isolation mode (tests/conftest.py)
            "SUPPORT_MCP_ISOLATION": os.environ.get("SUPPORT_MCP_ISOLATION", "schema"), **extra}


def _cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "support_mcp", *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, cwd=cwd, timeout=timeout)


def test_hoist_moves_global_options_in_front_of_the_command() -> None:
    assert hoist_global_options(["serve", "--tenant", "a", "--data-dir", "/d"]) == ["--data-dir", "/d", "serve",
                                                                                   "--tenant", "a"]
    assert hoist_global_options(["tenants", "list", "--database-url=postgresql://x"]) == [
        "--database-url=postgresql://x", "tenants", "list"]
    assert hoist_global_options(["x", "--", "--data-dir", "/d"]) == ["x", "--", "--data-dir", "/d"]
    assert hoist_global_options(["serve", "--data-dir"]) == ["serve", "--data-dir"]  # no value: left for the error


def test_mask_url_hides_passwords() -> None:
    assert mask_url(BAD_URL) == "postgresql://nobody:***@127.0.0.1:1/nowhere"
    assert mask_url("postgresql://h/db?user=u&password=p") == "postgresql://h/db?user=u&password=***"
    assert mask_url("postgresql://u@h/db") == "postgresql://u@h/db"


def test_flags_work_without_any_environment(settings: Settings, unique_slug, tmp_path: Path) -> None:
    slug = unique_slug("flag")
    env = _bare_env()
    proc = _cli(["tenants", "create", slug, "--name", "Flags", *_flags(settings)], env, tmp_path)  # after
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = _cli([*_flags(settings), "tenants", "list", "--json"], env, tmp_path)  # before the command
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert slug in {t["slug"] for t in json.loads(proc.stdout)}


def test_flags_beat_the_environment(settings: Settings, unique_slug, tmp_path: Path) -> None:
    slug = unique_slug("beat")
    wrong = {"SUPPORT_MCP_DATA_DIR": str(tmp_path / "wrong-data-dir")}
    if settings.database_url is not None:
        wrong |= {"SUPPORT_MCP_DATABASE_URL": BAD_URL, "DATABASE_URL": BAD_URL}
    env = _bare_env(**wrong)
    proc = _cli(["tenants", "create", slug, "--name", "Beat", *_flags(settings)], env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (tmp_path / "wrong-data-dir").exists()  # the environment's directory was never used


def test_a_malformed_url_flag_is_a_problem_line(settings: Settings, tmp_path: Path) -> None:
    proc = _cli(["--database-admin-url", "x", "--data-dir", str(settings.data_dir), "doctor"], _bare_env(), tmp_path)
    assert proc.returncode == 1 and "problem" in proc.stdout and "Traceback" not in proc.stderr + proc.stdout


def test_an_invalid_setting_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    proc = _cli(["doctor"], _bare_env(SUPPORT_MCP_DB_POOL_MAX_SIZE="0", SUPPORT_MCP_DATA_DIR=str(tmp_path)), tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == ["error: invalid setting db_pool_max_size: Input should be greater "
                                                "than or equal to 1"]


def test_serve_refuses_a_tenant_the_database_lacks(settings: Settings, tmp_path: Path) -> None:
    """Regression: `serve --tenant X` started (and served nothing) when X was not in the data directory used."""
    proc = _cli(["serve", "--tenant", "no_such_tenant", *_flags(settings)], _bare_env(), tmp_path, timeout=60)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    err = proc.stderr.strip()
    assert "tenant 'no_such_tenant' does not exist" in err and "Traceback" not in err
    where = str(settings.data_dir) if settings.database_url is None else \
        mask_url(settings.database_url.get_secret_value())
    assert where in err
    if settings.database_url is not None and settings.database_url.get_secret_value() != where:
        assert settings.database_url.get_secret_value() not in err  # the password stays masked
    assert proc.stdout == ""  # nothing on the stdio transport


async def test_serve_refuses_a_suspended_tenant(db, make_tenant, settings: Settings, tmp_path: Path) -> None:
    import asyncio

    slug = await make_tenant("susp")
    await tenancy.set_status(db, slug, "suspended")
    proc = await asyncio.to_thread(_cli, ["serve", "--tenant", slug, *_flags(settings)], _bare_env(), tmp_path, 60)
    assert proc.returncode == 1 and f"tenant '{slug}' is suspended" in proc.stderr and "tenants resume" in proc.stderr


def test_doctor_on_the_test_database(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    for k in [k for k in os.environ if k.startswith("SUPPORT_MCP_") or k == "DATABASE_URL"]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("SUPPORT_MCP_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("SUPPORT_MCP_ISOLATION", settings.isolation)
    result = CliRunner().invoke(app, ["doctor", "--json", *_flags(settings)])
    report = json.loads(result.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    for name in ("data directory", "database", "request-path role", "global migrations", "knowledge base",
                 "embedding model", "stripe"):
        assert checks[name]["status"] == "ok", checks[name]
    assert "NOINHERIT" in checks["request-path role"]["detail"]
    assert checks["tenant migrations"]["status"] in ("ok", "problem")  # other tests leave tenants behind on purpose
    assert result.exit_code == (0 if report["ok"] else 1)
    if settings.database_url is not None and "@" in settings.database_url.get_secret_value():
        password = settings.database_url.get_secret_value().partition("://")[2].partition("@")[0].partition(":")[2]
        assert not password or password not in result.stdout
    text = CliRunner().invoke(app, ["doctor", *_flags(settings)]).stdout
    assert "data_dir = " in text and "ok       database: PostgreSQL" in text


def test_doctor_reports_an_unreachable_database(settings: Settings, tmp_path: Path) -> None:
    # the session's data directory (its knowledge-base worker is running already), a database nobody serves
    proc = _cli(["doctor", "--data-dir", str(settings.data_dir), "--database-url", BAD_URL], _bare_env(), tmp_path)
    assert proc.returncode == 1
    line = next(ln for ln in proc.stdout.splitlines() if "database:" in ln)
    assert line.split()[0] == "problem" and "127.0.0.1:1" in line and "fix:" in proc.stdout
    assert "s3cret-pw" not in proc.stdout + proc.stderr and "Traceback" not in proc.stdout + proc.stderr
    proc = _cli(["doctor", "--json", "--data-dir", str(settings.data_dir), "--database-url", BAD_URL],
                _bare_env(), tmp_path)
    report = json.loads(proc.stdout)
    assert proc.returncode == 1 and report["ok"] is False
    assert report["config"]["database_url"] == mask_url(BAD_URL)


class _Metadata(BaseHTTPRequestHandler):
    issuer = ""

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/.well-known/oauth-authorization-server":
            body = json.dumps({"issuer": self.issuer, "jwks_uri": f"{self.issuer}/jwks"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_response(404)
            self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


async def test_doctor_checks_the_oauth_issuer_when_set() -> None:
    server = HTTPServer(("127.0.0.1", 0), _Metadata)
    _Metadata.issuer = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ok = await doctor.check_oauth(SimpleNamespace(oauth_issuer=_Metadata.issuer))
        assert ok is not None and ok.status == "ok"
        wrong = await doctor.check_oauth(SimpleNamespace(oauth_issuer=_Metadata.issuer + "/other"))
        assert wrong is not None and wrong.status == "problem" and wrong.fix
    finally:
        server.shutdown()
    down = await doctor.check_oauth(SimpleNamespace(oauth_issuer="http://127.0.0.1:1"))
    assert down is not None and down.status == "problem" and "unreachable" in down.detail
    assert await doctor.check_oauth(SimpleNamespace()) is None


async def test_doctor_verifies_the_stdio_api_key(db, make_tenant, make_key) -> None:
    slug = await make_tenant("dockey")
    key = await make_key(tenants=[slug], scopes=["read"])
    ok = await doctor._api_key(db, key)
    assert ok.status == "ok" and slug in ok.detail and "read" in ok.detail and key not in ok.detail
    bad = await doctor._api_key(db, key[:-4] + "xxxx")
    assert bad.status == "problem" and "revoked" in bad.detail and bad.fix
