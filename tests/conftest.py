"""Fixtures: a real PostgreSQL for the whole session.

Default: a fresh embedded PostgreSQL 16 (pgserver) in a temp data dir. With DATABASE_URL set:
a scratch database created on that server (and dropped, with its tenant roles, at the end).
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from support_mcp import migrations, tenancy
from support_mcp.db import Database
from support_mcp.logging import configure_logging
from support_mcp.settings import Settings

configure_logging("WARNING", "console")

# pgserver keeps its inter-process lock file under XDG_RUNTIME_DIR, and its exit handlers (which run
# after the session's teardown) take that lock again, re-creating the file. One runtime dir for the
# whole test process (inherited by the CLI subprocesses), removed by an exit handler registered
# before pgserver's, so it runs after them: nothing is left behind in the temp dir.
if not os.environ.get("XDG_RUNTIME_DIR"):
    _RUNTIME_DIR = tempfile.mkdtemp(prefix="support-mcp-test-run-")
    os.environ["XDG_RUNTIME_DIR"] = _RUNTIME_DIR
    atexit.register(shutil.rmtree, _RUNTIME_DIR, ignore_errors=True)

#: `SUPPORT_MCP_ISOLATION=rls pytest` runs the suite in RLS mode (shared tables, forced row-level
#: security); tests of schema-per-tenant mechanics carry @pytest.mark.schema_only and are skipped
#: there (tests/test_rls.py covers RLS mode's own mechanics in both passes).
ISOLATION = os.environ.get("SUPPORT_MCP_ISOLATION", "schema")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "schema_only: tests schema-per-tenant mechanics (skipped in RLS mode)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ISOLATION != "rls":
        return
    skip = pytest.mark.skip(reason="schema mode only (SUPPORT_MCP_ISOLATION=rls)")
    for item in items:
        if item.get_closest_marker("schema_only"):
            item.add_marker(skip)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


STRIPE_TEST_KEY = "sk_test_support_mcp_platform"
STRIPE_SETTINGS = dict(stripe_api_key=STRIPE_TEST_KEY, stripe_timeout_seconds=3.0, stripe_max_network_retries=2)


@pytest.fixture(scope="session")
def stripe_double():
    """The local Stripe API double (the only fake in the suite), shared by the session."""
    from support_mcp.stripe_sandbox import StripeDouble

    with StripeDouble() as sd:
        yield sd


@pytest.fixture(scope="session")
async def settings(stripe_double) -> AsyncIterator[Settings]:
    # Not under pytest's basetemp: pytest resets pytest-of-<user> to mode 0700, which would lock
    # the embedded server's OS user (pgserver runs postgres as 'pgserver' when we are root) out.
    data_dir = Path(tempfile.mkdtemp(prefix="support-mcp-test-"))
    server_url = os.environ.get("DATABASE_URL")
    if not server_url:
        yield Settings(data_dir=data_dir, _env_file=None, database_url=None, stripe_api_base=stripe_double.base_url,
                       **STRIPE_SETTINGS)
        if (data_dir / "pg").exists():  # release this process's handle on the embedded server (it stops)
            import pgserver

            pgserver.get_server(data_dir / "pg").cleanup()
        shutil.rmtree(data_dir, ignore_errors=True)
        return
    name = f"sm_test_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield Settings(data_dir=data_dir, _env_file=None, database_url=_with_database(server_url, name),
                   stripe_api_base=stripe_double.base_url, **STRIPE_SETTINGS)
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        tag = await admin.fetchval("SELECT left(md5($1), 8)", name)
        for (role,) in await admin.fetch(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE $1", f"tn\\_{tag}\\_%"
        ):
            await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
    finally:
        await admin.close()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = await migrations.database(settings).start()
    yield database
    await database.close()


@pytest.fixture(scope="session")
async def kb(db: Database):
    """One knowledge base (embedder + embedded engine worker) for the whole session."""
    from support_mcp.kb.service import KnowledgeBase

    knowledge = KnowledgeBase(db.settings, db)
    yield knowledge
    index = knowledge._index  # noqa: SLF001
    if index is not None and hasattr(index, "stop_worker"):
        await index.stop_worker()  # the embedded engine's worker must not outlive the test data dir
    await knowledge.close()


@pytest.fixture
def unique_slug() -> Callable[[str], str]:
    return lambda prefix="t": f"{prefix}_{secrets.token_hex(4)}"


@pytest.fixture
def make_tenant(db: Database, unique_slug: Callable[[str], str]) -> Callable[..., Awaitable[str]]:
    """Create a tenant with a unique slug; returns the slug."""

    async def make(prefix: str = "t", **kwargs: object) -> str:
        slug = unique_slug(prefix)
        await tenancy.create_tenant(db, slug, kwargs.pop("name", slug.title()), **kwargs)  # type: ignore[arg-type]
        return slug

    return make


@pytest.fixture
def stripe_tenant(make_tenant, stripe_double):
    """`slug, acct, secret = await stripe_tenant()`: a tenant connected to a fresh account of the double."""
    from types import SimpleNamespace

    async def make(prefix: str = "pay", **kwargs: object) -> SimpleNamespace:
        acct = stripe_double.add_account()
        secret = "whsec_" + secrets.token_hex(16)
        slug = await make_tenant(prefix, stripe_account_id=acct.id, stripe_webhook_secret=secret, **kwargs)
        return SimpleNamespace(slug=slug, acct=acct, account_id=acct.id, secret=secret)

    return make


# --- MCP-level fixtures: the real SDK client, in memory, against build_server ---------------

class Caller:
    """Thin helpers over mcp.Client for tests: `ok` expects success, `err` expects is_error.

    With `auth_user`, each call carries that bearer identity in the SDK's auth contextvar, the
    way the HTTP middleware sets it per request (in memory, requests run in the caller's task)."""

    def __init__(self, client, auth_user=None) -> None:  # noqa: ANN001 - mcp.Client, AuthenticatedUser
        self.client, self.auth_user = client, auth_user

    async def call(self, tool: str, args: dict):  # noqa: ANN201 - CallToolResult
        if self.auth_user is None:
            return await self.client.call_tool(tool, args)
        from mcp.server.auth.middleware.auth_context import auth_context_var

        token = auth_context_var.set(self.auth_user)
        try:
            return await self.client.call_tool(tool, args)
        finally:
            auth_context_var.reset(token)

    async def ok(self, tool: str, /, **args: object) -> dict:
        r = await self.call(tool, args)
        assert not r.is_error, f"{tool} failed: {r.content[0].text if r.content else r}"
        return r.structured_content

    async def err(self, tool: str, /, **args: object) -> str:
        r = await self.call(tool, args)
        assert r.is_error, f"{tool} unexpectedly succeeded: {r.structured_content}"
        return r.content[0].text


@pytest.fixture
def connect(db: Database, kb):
    """`async with connect(tenants=[...], **settings_overrides) as c:` (or all_tenants=True) -> Caller
    over mcp.Client."""
    from contextlib import asynccontextmanager

    import mcp

    from support_mcp.access import Principal
    from support_mcp.server import build_server

    @asynccontextmanager
    async def _connect(tenants: list[str] | None = None, all_tenants: bool = False, principal=None,  # noqa: ANN001
                       **overrides: object):
        s = db.settings.model_copy(update=overrides) if overrides else db.settings
        server = build_server(s, principal or Principal.operator(tenants, all_tenants), db=db, kb=kb)
        async with mcp.Client(server) as client:
            yield Caller(client)

    return _connect


@pytest.fixture
def make_key(db: Database):
    """Create an API key: `await make_key(tenants=[...] | all_tenants=True, scopes=[...], expires_in=...,
    allow_confirm_argument=...)`."""
    from support_mcp import keys

    async def make(tenants: list[str] | None = None, all_tenants: bool = False,
                   scopes: list[str] = ("read", "write"), expires_in=None, name: str = "test",  # noqa: ANN001
                   allow_confirm_argument: bool = False) -> str:
        created = await keys.create_key(db, name, tenants=tenants or [], all_tenants=all_tenants,
                                        scopes=list(scopes), expires_in=expires_in,
                                        allow_confirm_argument=allow_confirm_argument)
        return created.key

    return make


@pytest.fixture
def connect_key(db: Database, kb):
    """`async with connect_key(key, **settings_overrides) as c:` -> a bearer-authenticated in-memory client.

    The SDK's HTTP middleware would put the verified token in its auth contextvar; here we set
    that contextvar ourselves (the server verifies the key again on every request)."""
    from contextlib import asynccontextmanager

    import mcp
    from mcp.server.auth.middleware.auth_context import auth_context_var
    from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
    from mcp.server.auth.provider import AccessToken

    from support_mcp.server import build_server

    @asynccontextmanager
    async def _connect(key: str, *, read_only: bool = False, elicitation_callback=None, **overrides: object):  # noqa: ANN001
        s = db.settings.model_copy(update=overrides) if overrides else db.settings
        server = build_server(s, db=db, bearer=True, read_only=read_only, kb=kb)
        user = AuthenticatedUser(AccessToken(token=key, client_id="test", scopes=[]))
        token = auth_context_var.set(user)
        try:
            async with mcp.Client(server, elicitation_callback=elicitation_callback) as client:
                caller = Caller(client, auth_user=user)
                caller.server = server
                yield caller
        finally:
            auth_context_var.reset(token)

    return _connect


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The CLI pointed at the session's database (in-process runs and subprocesses alike)."""
    env = {"SUPPORT_MCP_DATA_DIR": str(settings.data_dir), "SUPPORT_MCP_LOG_LEVEL": "WARNING"}
    if settings.database_url is not None:
        env["SUPPORT_MCP_DATABASE_URL"] = settings.database_url.get_secret_value()
    else:
        monkeypatch.delenv("DATABASE_URL", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env
