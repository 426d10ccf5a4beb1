"""Settings: every field is documented in the README; env vars and .env are read."""

from __future__ import annotations

from pathlib import Path

from support_mcp.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [f"SUPPORT_MCP_{name.upper()}" for name in Settings.model_fields
               if f"`SUPPORT_MCP_{name.upper()}`" not in README]
    assert not missing, f"document these in README.md: {missing}"


def test_env_and_dotenv(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    (tmp_path / ".env").write_text("SUPPORT_MCP_DB_POOL_MAX_SIZE=7\nSUPPORT_MCP_API_KEY=smk_x\n")
    monkeypatch.setenv("SUPPORT_MCP_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@h/db")
    s = Settings()
    assert s.db_pool_max_size == 7 and s.log_level == "DEBUG"
    assert s.api_key is not None and "smk_x" not in repr(s)  # secrets stay out of reprs and logs
    assert s.database_url is not None and s.database_url.get_secret_value() == "postgresql://u:p@h/db"
