"""The per-episode Stripe sandbox: off by default, an account per episode holding the fixture's
objects, the payment tools through the real `stripe` SDK, refunds that change it, the state export,
isolation between episodes, reset, and removal with the episode."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from support_mcp.episodes import service
from support_mcp.episodes.fixtures import parse_fixture
from support_mcp.stripe_sandbox import store

EXAMPLE = Path(service.__file__).parent / "examples" / "acme_payments.json"
ON = dict(stripe_sandbox=True, confirm_fallback=True)


def fixture_data() -> dict:
    return json.loads(EXAMPLE.read_text("utf-8"))


def _our_listening_sockets() -> set[int]:
    """Inodes of the TCP sockets this process has in LISTEN state (/proc/net/tcp* x /proc/self/fd)."""
    ours = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            ours.add(int(target[8:-1]))
    listening = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(name).read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] == "0A" and int(parts[9]) in ours:  # LISTEN
                listening.add(int(parts[9]))
    return listening


async def test_off_by_default_nothing_listens_and_tools_say_so(db, kb, connect_key) -> None:
    assert db.settings.stripe_sandbox is False
    ep = await service.create(db, kb, EXAMPLE)
    before = _our_listening_sockets()
    async with connect_key(ep["api_key"], confirm_fallback=True) as c:
        msg = await c.err("lookup_charge", tenant=ep["tenant"], id="ch_skates1")
        during = _our_listening_sockets()
    async with connect_key(ep["api_key"], **ON) as c:
        await c.ok("lookup_charge", tenant=ep["tenant"], id="ch_skates1")
        on = _our_listening_sockets()
    assert during == before and len(on - before) == 1  # off: no listener; on: exactly one
    assert "sandbox" in msg and "SUPPORT_MCP_STRIPE_SANDBOX=on" in msg and "\n" not in msg.strip()
    await service.destroy(db, ep["episode"], kb)


async def test_on_lookup_and_refund_change_the_sandbox_and_the_state(db, kb, connect_key) -> None:
    ep = await service.create(db, kb, EXAMPLE)
    before = await service.state(db, ep["episode"])
    charges = {c["id"]: c for c in before["state"]["stripe"]["charges"]}
    assert charges["ch_magnet"]["amount_refunded"] == 2500 and charges["ch_seed"]["disputed"]
    assert [r["id"] for r in before["state"]["stripe"]["refunds"]] == ["re_magnet"]
    skates = next(t["number"] for t in before["state"]["tickets"] if "skates" in t["subject"])
    async with connect_key(ep["api_key"], **ON) as c:
        looked = await c.ok("lookup_charge", tenant=ep["tenant"], id="ch_skates2")
        by_pi = await c.ok("lookup_charge", tenant=ep["tenant"], id="pi_anvil")
        disputed = await c.ok("lookup_charge", tenant=ep["tenant"], id="ch_seed")
        listed = await c.ok("list_charges", tenant=ep["tenant"], customer="wile@example.com")
        refund = await c.ok("create_refund", tenant=ep["tenant"], charge="ch_skates2", reason="duplicate",
                            ticket=f"#{skates}", confirm="ch_skates2")
        partial = await c.ok("create_refund", tenant=ep["tenant"], charge="pi_anvil", amount=2000,
                             reason="requested_by_customer", confirm="pi_anvil")
        too_much = await c.err("create_refund", tenant=ep["tenant"], charge="ch_anvil", amount=10001,
                               reason="requested_by_customer", confirm="ch_anvil")
        after = await c.ok("lookup_charge", tenant=ep["tenant"], id="ch_skates2")
    assert looked["amount"] == 4900 and looked["refundable_amount"] == 4900
    assert looked["customer"]["email"] == "wile@example.com"  # the desk customer linked by stripe_customer_id
    assert by_pi["id"] == "ch_anvil" and disputed["dispute"]["id"] == "dp_seed"
    assert {ch["id"] for ch in listed["charges"]} == {"ch_skates1", "ch_skates2", "ch_anvil", "ch_magnet"}
    assert refund["status"] == "succeeded" and refund["refund_id"].startswith("re_") and refund["amount"] == 4900
    assert partial["amount"] == 2000 and "10000" not in too_much and "\n" not in too_much.strip()
    assert after["refunded"] and after["refundable_amount"] == 0
    state = (await service.state(db, ep["episode"]))["state"]
    charges = {c["id"]: c for c in state["stripe"]["charges"]}
    assert charges["ch_skates2"]["amount_refunded"] == 4900 and charges["ch_skates2"]["refunded"]
    assert charges["ch_anvil"]["amount_refunded"] == 2000
    sandbox_refunds = {(r["charge"], r["amount"], r["reason"]) for r in state["stripe"]["refunds"]}
    assert sandbox_refunds == {("ch_magnet", 2500, "requested_by_customer"), ("ch_skates2", 4900, "duplicate"),
                               ("ch_anvil", 2000, "requested_by_customer")}
    assert {r["refund_id"] for r in state["refunds"]} == {refund["refund_id"], partial["refund_id"]}
    assert state["version"] == 2
    await service.destroy(db, ep["episode"], kb)


async def test_seeded_accounts_mint_the_same_ids_so_states_match(db, kb, connect_key) -> None:
    fixture = parse_fixture(fixture_data())
    eps = []
    for _ in range(2):
        ep = await service.create(db, kb, fixture)
        await store.put_account(db, ep["tenant"], fixture.stripe, seed=42, clock=1_768_478_400)
        eps.append(ep)
    for ep in eps:
        async with connect_key(ep["api_key"], **ON) as c:
            await c.ok("create_refund", tenant=ep["tenant"], charge="ch_skates2", reason="duplicate", confirm="ch_skates2")
    a, b = [await service.state(db, ep["episode"]) for ep in eps]
    assert a["state"]["stripe"] == b["state"]["stripe"]
    assert a["state"]["refunds"] == b["state"]["refunds"]  # the sandbox's refund id, the same in both
    unseeded = await service.create(db, kb, fixture)
    async with connect_key(unseeded["api_key"], **ON) as c:
        await c.ok("create_refund", tenant=unseeded["tenant"], charge="ch_skates2", reason="duplicate", confirm="ch_skates2")
    other = await service.state(db, unseeded["episode"])
    assert other["state"]["refunds"][0]["refund_id"] != a["state"]["refunds"][0]["refund_id"]
    for ep in (*eps, unseeded):
        await service.destroy(db, ep["episode"], kb)


async def test_episodes_cannot_see_each_others_objects(db, kb, connect_key) -> None:
    data = fixture_data()
    other_data = copy.deepcopy(data)
    other_data["stripe"]["charges"].append({"id": "ch_onlyb", "amount": 999, "customer": "cus_beep"})
    a = await service.create(db, kb, parse_fixture(data))
    b = await service.create(db, kb, parse_fixture(other_data))
    async with connect_key(a["api_key"], **ON) as c:
        missing = await c.err("lookup_charge", tenant=a["tenant"], id="ch_onlyb")
        unknown = await c.err("lookup_charge", tenant=a["tenant"], id="ch_nosuchcharge")
        refused = await c.err("create_refund", tenant=a["tenant"], charge="ch_onlyb", reason="duplicate",
                              confirm="ch_onlyb")
        theirs = await c.err("lookup_charge", tenant=b["tenant"], id="ch_onlyb")
        await c.ok("create_refund", tenant=a["tenant"], charge="ch_skates1", reason="duplicate", confirm="ch_skates1")
    assert missing == unknown.replace("ch_nosuchcharge", "ch_onlyb")  # answers exactly like a missing one
    assert "not found" in refused and "\n" not in theirs.strip()
    state_b = (await service.state(db, b["episode"]))["state"]["stripe"]
    assert {c["id"]: c["amount_refunded"] for c in state_b["charges"]}["ch_skates1"] == 0
    for ep in (a, b):
        await service.destroy(db, ep["episode"], kb)


async def test_reset_puts_the_fixture_back_and_destroy_removes_the_account(db, kb, connect_key) -> None:
    ep = await service.create(db, kb, EXAMPLE)
    fresh = await service.state(db, ep["episode"])
    async with connect_key(ep["api_key"], **ON) as c:
        await c.ok("create_refund", tenant=ep["tenant"], charge="ch_skates1", reason="duplicate", confirm="ch_skates1")
    assert (await service.state(db, ep["episode"]))["state"]["stripe"] != fresh["state"]["stripe"]
    account = await store.reset_account(db, ep["tenant"])
    assert account is not None
    assert (await service.state(db, ep["episode"]))["state"]["stripe"] == fresh["state"]["stripe"]
    await service.destroy(db, ep["episode"], kb)
    async with db.admin_scope() as conn:
        left = await conn.fetchval('SELECT count(*) FROM "global".sandbox_objects WHERE account_id = $1', account)
        accounts = await conn.fetchval('SELECT count(*) FROM "global".sandbox_accounts WHERE id = $1', account)
    assert (left, accounts) == (0, 0)


async def test_real_tenants_never_reach_the_sandbox(db, stripe_tenant, connect, stripe_double) -> None:
    t = await stripe_tenant()
    ch = t.acct.charge(amount=1234)
    stripe_double.clear_requests()
    async with connect([t.slug], **ON) as c:
        looked = await c.ok("lookup_charge", tenant=t.slug, id=ch["id"])
    assert looked["amount"] == 1234 and any(r.path == f"/v1/charges/{ch['id']}" for r in stripe_double.requests)


async def test_the_app_role_cannot_read_the_sandbox_tables(db) -> None:
    async with db.connection() as conn:
        for table in ("sandbox_accounts", "sandbox_objects", "sandbox_idempotency"):
            with pytest.raises(Exception, match="permission denied"):
                await conn.fetchval(f'SELECT count(*) FROM "global".{table}')


async def test_the_listener_is_loopback_tcp_so_answers_skip_nagle(db) -> None:
    """Regression: a socket made with proto 0 gets no TCP_NODELAY on accepted connections from
    asyncio, and every answer waited for a delayed ACK (~40 ms per Stripe call)."""
    import socket

    from support_mcp.stripe_sandbox.listener import SandboxListener

    listener = await SandboxListener(db).start()
    try:
        assert listener._sock.proto == socket.IPPROTO_TCP  # noqa: SLF001
        assert listener.base_url.startswith("http://127.0.0.1:")
    finally:
        await listener.stop()
