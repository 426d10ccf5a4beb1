"""Least privilege: the request path's role and exactly what it is granted.

sql/privileges/role.sql creates (or corrects) the app role; sql/privileges/grants.sql grants
it what the request path needs. The server runs both as the admin after the global
migrations on every start; `support-mcp db grants` prints them for a DBA.
"""

from __future__ import annotations

import getpass
import os
import re
from importlib.resources import files
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import asyncpg

from .errors import InvalidInput, MigrationFailed

if TYPE_CHECKING:
    from .settings import Settings

_ROLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


_HEADER = """\
-- support-mcp: the request path's role "{role}" and exactly what it may use.
-- Run as the owner/admin role (the user of SUPPORT_MCP_DATABASE_ADMIN_URL) in the support-mcp database.
-- That admin owns the database and creates one role per tenant, e.g. (as a superuser):
--   CREATE ROLE support_mcp_owner LOGIN CREATEROLE PASSWORD '...';
--   CREATE DATABASE support_mcp OWNER support_mcp_owner;
-- The role part can run at any time; the GRANTs need the tables (`support-mcp migrate`), and the
-- server re-applies them as the admin on every start. Then give the app role a password:
--   ALTER ROLE "{role}" PASSWORD '...';
-- and set SUPPORT_MCP_DATABASE_URL to its URL, SUPPORT_MCP_DATABASE_ADMIN_URL to the admin's.

"""


def script(app_role: str, *, shared: bool = False) -> str:
    """What `support-mcp db grants` prints: how to set the roles up, then `render(app_role)`."""
    return _HEADER.format(role=app_role) + render(app_role, shared=shared)


def render(app_role: str, *, role: bool = True, shared: bool = False) -> str:
    """The SQL for `app_role`: role.sql (unless role=False), grants.sql, and with shared=True (RLS
    mode) shared_grants.sql."""
    if not _ROLE_RE.match(app_role):
        raise InvalidInput(f"app role name {app_role[:70]!r} must be 1-63 characters from A-Z, a-z, 0-9 and _")
    folder = files("support_mcp.sql") / "privileges"
    parts = (["role.sql"] if role else []) + ["grants.sql"] + (["shared_grants.sql"] if shared else [])
    text = "\n".join((folder / p).read_text("utf-8") for p in parts)
    return text.replace("{app_name}", app_role).replace("{app}", f'"{app_role}"')


async def apply(conn: asyncpg.Connection, app_role: str, password: str | None = None, *,
                shared: bool = False) -> None:
    """Create/correct the app role and grant it (as the admin, in the caller's transaction)."""
    try:
        await conn.execute(render(app_role, shared=shared))
        if password is not None:
            stmt = await conn.fetchval("SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)",
                                       app_role, password)
            await conn.execute(stmt)
    except asyncpg.PostgresError as exc:
        raise MigrationFailed(f"creating or granting the app role '{app_role}' failed: "
                              f"{str(exc).splitlines()[0][:200]} (see `support-mcp db grants`)") from exc


def url_user(dsn: str) -> str:
    """The user a URL connects as (asyncpg's defaults: PGUSER, then the OS user)."""
    parts = urlsplit(dsn)
    if parts.username:
        return unquote(parts.username)
    return dict(parse_qsl(parts.query)).get("user") or os.environ.get("PGUSER") or getpass.getuser()


def as_user(dsn: str, user: str, password: str | None) -> str:
    """The same server and database as `dsn`, connecting as `user` (with `password`, if any)."""
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    cred = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k not in ("user", "password")])
    return urlunsplit(parts._replace(netloc=f"{cred}@{host}", query=query))


def mask_url(dsn: str) -> str:
    """`dsn` with its password (in the netloc or the query) replaced by ***, for messages and doctor."""
    try:
        parts = urlsplit(dsn)
        netloc = parts.netloc
        cred, at, host = netloc.rpartition("@")
        if at and ":" in cred:
            netloc = f"{cred.split(':', 1)[0]}:***@{host}"
        query = "&".join(f"{k}={'***' if k == 'password' else quote(v, safe='')}"
                         for k, v in parse_qsl(parts.query, keep_blank_values=True))
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:
        return "(an unparsable URL)"


def database_location(settings: Settings) -> str:
    """Where the settings point the server, for messages: the embedded server's data directory or the URL."""
    url = settings.database_admin_url or settings.database_url
    if url is None:
        return f"the embedded PostgreSQL of data directory {settings.data_dir}"
    return f"the database {mask_url(url.get_secret_value())}"
