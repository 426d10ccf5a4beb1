"""Registry-wide invariants: every data tool takes `tenant` and goes through authorization."""

from __future__ import annotations

import pytest
from mcp.server.mcpserver import Context

from support_mcp.access import Principal
from support_mcp.server import build_server
from support_mcp.registry import TOOLS
from support_mcp.toolkit import TenantArg, tool

# Minimal valid arguments per data tool (besides `tenant`), so a refusal can only come
# from authorization, never from argument validation.
ARGS = {
    "create_customer": {"name": "X"},
    "get_customer": {"customer": "x@x.test"},
    "find_customers": {"email": "x@x.test"},
    "create_ticket": {"subject": "s", "description": "d", "customer_email": "x@x.test"},
    "list_tickets": {},
    "get_ticket": {"ticket": "1001"},
    "update_ticket": {"ticket": "1001", "status": "pending"},
    "add_message": {"ticket": "1001", "content": "hi", "author_role": "agent"},
    "record_feedback": {"ticket": "1001", "rating": 5},
    "delete_ticket": {"ticket": "1001", "dry_run": True},
    "search_docs": {"query": "refund"},
    "ingest_document": {"title": "T", "text": "text"},
    "list_documents": {},
    "delete_document": {"document_id": "00000000-0000-0000-0000-000000000000", "dry_run": True},
    "lookup_charge": {"id": "ch_12345678"},
    "list_charges": {"customer": "cus_12345678"},
    "list_disputes": {},
    "create_refund": {"charge": "ch_12345678", "reason": "duplicate", "dry_run": True},
}
FORBIDDEN_NAMES = {"schema", "schema_name", "search_path", "role", "role_name", "db_role", "stripe_account",
                   "stripe_account_id", "account", "account_id", "database", "dsn", "sql", "query_sql"}


async def _tools(db):
    server = build_server(db.settings, Principal.operator(None, True), db=db)
    return {t.name: t for t in await server.list_tools()}


async def test_every_data_tool_requires_tenant_first(db) -> None:
    tools = await _tools(db)
    data = [n for n, t in TOOLS.items() if t.kind != "global" and n in tools]
    assert set(data) == set(ARGS), "update ARGS when adding a data tool"
    for name in data:
        schema = tools[name].input_schema
        assert list(schema["properties"])[0] == "tenant", name
        assert "tenant" in schema["required"], name
        assert schema["properties"]["tenant"]["type"] == "string"


async def test_no_tool_schema_exposes_internals(db) -> None:
    for name, t in (await _tools(db)).items():
        for prop in t.input_schema.get("properties", {}):
            assert prop.lower() not in FORBIDDEN_NAMES, (name, prop)


async def test_annotations_match_kinds(db) -> None:
    for name, t in (await _tools(db)).items():
        kind = TOOLS[name].kind
        assert t.annotations is not None, name
        assert t.annotations.read_only_hint is (kind in ("global", "read")), name
        assert t.annotations.destructive_hint is (kind == "destructive"), name


@pytest.mark.parametrize("name", sorted(ARGS))
async def test_every_data_tool_authorizes_before_lookup(connect, make_tenant, name: str) -> None:
    mine, theirs = await make_tenant("mine"), await make_tenant("theirs")
    async with connect([mine]) as c:
        other = await c.err(name, tenant=theirs, **ARGS[name])
        missing = await c.err(name, tenant="does_not_exist", **ARGS[name])
        bad = await c.err(name, tenant="a;drop schema public", **ARGS[name])
    assert other == missing.replace("does_not_exist", theirs)  # same answer, exists or not
    assert "not available to this client" in other
    assert "invalid tenant slug" in bad


async def test_a_data_tool_that_skips_authorization_fails_closed(db, make_tenant) -> None:
    import mcp

    a = await make_tenant("rogue")
    server = build_server(db.settings, Principal.operator([a], False), db=db)

    @tool(server, "read")
    async def rogue_tool(tenant: TenantArg, ctx: Context) -> dict[str, str]:
        return {"leak": "data fetched without authorization"}

    try:
        async with mcp.Client(server) as client:
            r = await client.call_tool("rogue_tool", {"tenant": a})
        assert r.is_error and "internal error" in r.content[0].text
        assert "leak" not in r.content[0].text
    finally:
        TOOLS.pop("rogue_tool", None)
