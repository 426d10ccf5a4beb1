"""Fixtures: a real PostgreSQL for the whole session.

Default: a fresh embedded PostgreSQL 16 (pgserver) in a temp data dir. With DATABASE_URL set:
a scratch database created on that server (and dropped, with its tenant roles, at the end).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from support_mcp import tenancy
from support_mcp.db import Database
from support_mcp.logging import configure_logging
from support_mcp.settings import Settings

configure_logging("WARNING", "console")


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
async def settings(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Settings]:
    data_dir = tmp_path_factory.mktemp("data")
    server_url = os.environ.get("DATABASE_URL")
    if not server_url:
        yield Settings(data_dir=data_dir, _env_file=None, database_url=None)
        return
    name = f"sm_test_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield Settings(data_dir=data_dir, _env_file=None, database_url=_with_database(server_url, name))
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


@pytest.fixture(scope="session")
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = await Database(settings).start()
    yield database
    await database.close()


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
