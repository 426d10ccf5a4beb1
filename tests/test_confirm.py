"""Confirmation the model cannot forge (issue 10 finding 5).

Every destructive tool confirms through one helper (support_mcp.confirm): a dialog the user
answers (elicitation). The `confirm` argument, which the model can fill in by itself, works only
when the operator allows it (setting or per key). `dry_run` never needs confirmation."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from mcp.server.mcpserver import Context
from mcp.types import ElicitResult

from support_mcp.confirm import FALLBACK_HINT
from support_mcp.server import build_server
from support_mcp.registry import TOOLS

DESTRUCTIVE = ("delete_ticket", "delete_document", "create_refund")


@dataclass
class Target:
    """One destructive action on a fresh target: `args` (with the id the model would repeat as
    `confirm`), `done()` tells whether it happened."""

    tenant: str
    args: dict
    target: str
    done: Callable[[], Awaitable[bool]]


async def _target(tool: str, c, tenant: SimpleNamespace) -> Target:  # noqa: ANN001 - Caller
    if tool == "delete_ticket":
        t = await c.ok("create_ticket", tenant=tenant.slug, subject="s", description="d", customer_email="d@x.test")

        async def gone() -> bool:
            return "not found" in (await c.call("get_ticket", {"tenant": tenant.slug, "ticket": t["id"]})).content[0].text
        return Target(tenant.slug, {"ticket": f"#{t['number']}"}, f"#{t['number']}", gone)
    if tool == "delete_document":
        doc = await c.ok("ingest_document", tenant=tenant.slug, title="Printer", text="# Printer\n\nPaper jam: tray 2.")

        async def removed() -> bool:
            docs = (await c.ok("list_documents", tenant=tenant.slug))["documents"]
            return doc["document_id"] not in [d["id"] for d in docs]
        return Target(tenant.slug, {"document_id": doc["document_id"]}, doc["document_id"], removed)
    ch = tenant.acct.charge(amount=2500)

    async def refunded() -> bool:
        return tenant.acct.get(ch["id"])["amount_refunded"] > 0
    return Target(tenant.slug, {"charge": ch["id"], "reason": "requested_by_customer",
                                "request_id": secrets.token_hex(4)}, ch["id"], refunded)


ALL_SCOPES = ["read", "write", "admin", "refund"]


@pytest.mark.parametrize("tool", DESTRUCTIVE)
async def test_without_dialogs_and_without_the_fallback_the_model_cannot_confirm(
        tool: str, connect_key, make_key, stripe_tenant) -> None:
    tenant = await stripe_tenant("cf")
    async with connect_key(await make_key([tenant.slug], scopes=ALL_SCOPES)) as c:
        t = await _target(tool, c, tenant)
        forged = await c.err(tool, tenant=t.tenant, **t.args, confirm=t.target)  # the model repeats the id itself
        bare = await c.err(tool, tenant=t.tenant, **t.args)
        assert not await t.done()
        preview = await c.ok(tool, tenant=t.tenant, **t.args, dry_run=True)  # dry_run needs no confirmation
        assert not await t.done()
    for msg in (forged, bare):
        assert "cannot show confirmation dialogs" in msg and FALLBACK_HINT in msg and "\n" not in msg
    assert preview


@pytest.mark.parametrize("how", ["setting", "key"])
@pytest.mark.parametrize("tool", DESTRUCTIVE)
async def test_the_operator_can_allow_the_confirm_argument(tool: str, how: str, connect_key, make_key,
                                                          stripe_tenant) -> None:
    tenant = await stripe_tenant("cn")
    key = await make_key([tenant.slug], scopes=ALL_SCOPES, allow_confirm_argument=how == "key")
    async with connect_key(key, **({"confirm_fallback": True} if how == "setting" else {})) as c:
        t = await _target(tool, c, tenant)
        asked = await c.err(tool, tenant=t.tenant, **t.args)
        wrong = await c.err(tool, tenant=t.tenant, **t.args, confirm="something-else")
        assert not await t.done()
        await c.ok(tool, tenant=t.tenant, **t.args, confirm=t.target)
        assert await t.done()
    assert f"confirm='{t.target}'" in asked and "cannot be undone" in asked
    assert f"confirm must repeat '{t.target}'" in wrong


def _dialog(action: str, content: dict | None = None):  # noqa: ANN202
    asked: list[str] = []

    async def answer(_ctx, params):  # noqa: ANN001
        asked.append(params.message)
        return ElicitResult(action=action, content=content)

    return asked, answer


@pytest.mark.parametrize("answer", ["accept", "unchecked", "decline", "cancel"])
@pytest.mark.parametrize("tool", DESTRUCTIVE)
async def test_a_dialog_confirms_and_only_an_accepted_tick_acts(tool: str, answer: str, connect_key, make_key,
                                                                 stripe_tenant) -> None:
    tenant = await stripe_tenant("ce")
    action = "accept" if answer in ("accept", "unchecked") else answer
    asked, callback = _dialog(action, {"confirm": answer == "accept"} if action == "accept" else None)
    async with connect_key(await make_key([tenant.slug], scopes=ALL_SCOPES), elicitation_callback=callback) as c:
        t = await _target(tool, c, tenant)
        preview = await c.ok(tool, tenant=t.tenant, **t.args, dry_run=True)
        assert preview and asked == []  # a dry run asks nothing
        r = await c.call(tool, {"tenant": t.tenant, **t.args})
        assert len(asked) == 1 and t.tenant in asked[0] and "cannot be undone" in asked[0]
        if answer == "accept":
            assert not r.is_error, r.content[0].text
            assert await t.done()
        else:
            assert r.is_error and "was not done" in r.content[0].text and "\n" not in r.content[0].text
            assert not await t.done()


async def test_with_dialogs_a_confirm_argument_does_not_skip_the_question(connect_key, make_key, make_tenant) -> None:
    a = await make_tenant("cq")
    asked, callback = _dialog("decline")
    async with connect_key(await make_key([a], scopes=ALL_SCOPES), elicitation_callback=callback) as c:
        t = await c.ok("create_ticket", tenant=a, subject="s", description="d", customer_email="q@x.test")
        msg = await c.err("delete_ticket", tenant=a, ticket=t["id"], confirm=t["id"])
        await c.ok("get_ticket", tenant=a, ticket=t["id"])
    assert len(asked) == 1 and "declined" in msg


async def test_authorization_comes_before_any_dialog(connect_key, make_key, make_tenant, stripe_tenant) -> None:
    a, b = await stripe_tenant("ca"), await stripe_tenant("cb")
    missing = f"zz_{secrets.token_hex(4)}"
    ch_b = b.acct.charge(amount=900)
    asked, callback = _dialog("accept", {"confirm": True})
    async with connect_key(await make_key([b.slug], scopes=ALL_SCOPES)) as owner:
        t_b = await owner.ok("create_ticket", tenant=b.slug, subject="s", description="d", customer_email="b@x.test")
    async with connect_key(await make_key([a.slug], scopes=ALL_SCOPES), elicitation_callback=callback) as c:
        for tool, args in (("delete_ticket", {"ticket": "1"}), ("delete_document",
                           {"document_id": "00000000-0000-0000-0000-000000000000"}),
                           ("create_refund", {"charge": ch_b["id"], "reason": "fraudulent"})):
            there = await c.err(tool, tenant=b.slug, **args)
            nowhere = await c.err(tool, tenant=missing, **args)
            assert "not available to this client" in there
            assert there.replace(b.slug, "X") == nowhere.replace(missing, "X")
        # B's objects named under A's tenant answer like missing ones, before any question
        theirs = await c.err("create_refund", tenant=a.slug, charge=ch_b["id"], reason="fraudulent")
        nothing = await c.err("create_refund", tenant=a.slug, charge="ch_missing12345", reason="fraudulent")
        assert theirs.replace(ch_b["id"], "X") == nothing.replace("ch_missing12345", "X") and "not found" in theirs
        assert "not found" in await c.err("delete_ticket", tenant=a.slug, ticket=t_b["id"])
    async with connect_key(await make_key([a.slug], scopes=["read", "write"]), elicitation_callback=callback) as c:
        assert "needs the 'admin' scope" in await c.err("delete_ticket", tenant=a.slug, ticket="1")
    assert asked == []
    assert b.acct.get(ch_b["id"])["amount_refunded"] == 0


async def test_every_destructive_tool_confirms_through_the_helper(db) -> None:
    from support_mcp.access import Principal

    server = build_server(db.settings, Principal.operator(None, True), db=db)
    destructive = sorted(n for n, t in TOOLS.items() if t.kind == "destructive")
    assert destructive == sorted(DESTRUCTIVE), "add the new destructive tool to DESTRUCTIVE (and its _target)"
    for name in destructive:
        tool = server._tool_manager.get_tool(name)  # noqa: SLF001
        props = tool.parameters["properties"]
        assert "dry_run" in props and "confirm" in props and "approval" not in props, name
        resolvers = [marker.fn for marker, _ in tool.resolved_params.values()]
        assert len(resolvers) == 1, name
        source = resolvers[0].__code__.co_names
        assert "ask" in source, f"{name}'s resolver must go through support_mcp.confirm.ask"
        assert Context  # the resolver receives the Context (checked by the SDK at registration)


async def test_a_dialog_round_is_audited_as_input_required(connect_key, make_key, make_tenant, db) -> None:
    from support_mcp import reports

    a = await make_tenant("cr")
    name = f"dialog-{secrets.token_hex(3)}"
    _, callback = _dialog("accept", {"confirm": True})
    key = await make_key([a], scopes=ALL_SCOPES, name=name)
    async with connect_key(key, elicitation_callback=callback) as c:
        t = await c.ok("create_ticket", tenant=a, subject="s", description="d", customer_email="r@x.test")
        await c.ok("delete_ticket", tenant=a, ticket=t["id"])
    rows = await reports.audit_rows(db, tenant=None, since=None, limit=100_000)
    mine = sorted((r["tool"], r["outcome"]) for r in rows if r["principal"] == f"key:{name}")
    # the protocol's input_required round (the question) and the call that carries the answer
    assert mine == [("create_ticket", "ok"), ("delete_ticket", "input_required"), ("delete_ticket", "ok")]
