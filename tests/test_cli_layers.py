"""The CLI parses, calls one domain function and prints: no SQL, named query, connection or
scope is opened in cli/ (the domain functions live in tenancy, keys, payments.accounts,
offboarding, serving, migrations, demo, reports, ...)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

CLI = Path(__file__).resolve().parents[1] / "src" / "support_mcp" / "cli"
SQL = re.compile(r"\b(SELECT\s|INSERT\s+INTO|UPDATE\s+\S+\s+SET|DELETE\s+FROM|(CREATE|DROP|ALTER)\s+(TABLE|SCHEMA|"
                 r"ROLE|DATABASE|INDEX)|GRANT\s+\S+\s+(ON|TO)\s)")  # upper case, as this code base writes SQL
# the database, below the domain layer: none of these belongs in a CLI module
FORBIDDEN_NAMES = {"queries", "asyncpg", "conn"}
FORBIDDEN_CALLS = {"tenant_scope", "admin_scope", "global_scope", "connection", "enter_in_transaction",
                   "fetch", "fetchrow", "fetchval", "execute", "executemany", "copy_records_to_table"}


def violations(source: str) -> list[str]:
    found = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
            found.append(f"line {node.lineno}: SQL text {node.value[:60]!r}")
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            found.append(f"line {node.lineno}: uses {node.id}")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[-1] in FORBIDDEN_NAMES for n in names):
                found.append(f"line {node.lineno}: imports {', '.join(names)}")
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_CALLS:
            found.append(f"line {node.lineno}: calls .{node.attr}")
    return found


def test_no_cli_module_touches_the_database_directly() -> None:
    files = sorted(CLI.glob("*.py"))
    assert len(files) > 5
    bad = {f.name: v for f in files if (v := violations(f.read_text("utf-8")))}
    assert not bad, f"move these into a domain module: {bad}"


def test_the_check_catches_sql_queries_and_scopes() -> None:
    assert violations('x = "SELECT 1 FROM t"')
    assert violations("from ..db import queries")
    assert violations("async def go(db):\n    async with db.admin_scope() as c:\n        await c.fetch('x')")
    assert violations("await conn.execute(q)")
    assert not violations('typer.echo("select a tenant with --tenant")\nrun_with_db(lambda db: tenancy.list_tenants(db))')
