"""POST /webhooks/stripe/{slug}: verification, storage, mapping to support work, retries."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import asynccontextmanager

import httpx
import pytest

from support_mcp.server import build_server
from support_mcp.stripe_sandbox import make_event, sign_webhook, signed_webhook


@pytest.fixture
def hooks(db, kb):
    """`async with hooks(**settings) as (post, server)`: the server's HTTP app in process."""

    @asynccontextmanager
    async def _hooks(**overrides: object):
        settings = db.settings.model_copy(update={"stripe_cache_seconds": 0, **overrides})
        server = build_server(settings, bearer=True, db=db, kb=kb)
        app = server.streamable_http_app()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
            async def post(slug: str, event=None, secret: str | None = None, *, body: bytes | None = None,
                           headers: dict | None = None, timestamp: int | None = None) -> httpx.Response:
                if body is None:
                    body, hdrs = signed_webhook(event, secret, timestamp)
                    headers = {**hdrs, **(headers or {})}
                return await http.post(f"/webhooks/stripe/{slug}", content=body, headers=headers or {})

            yield post, server

    return _hooks


async def _count(db, slug: str, sql: str) -> int:
    async with db.tenant_scope(slug) as s:
        return await s.conn.fetchval(sql)


async def test_dispute_opens_one_urgent_ticket_however_often_it_is_delivered(hooks, db, connect, stripe_tenant) -> None:
    t = await stripe_tenant()
    cus = t.acct.customer(email="dee@example.com", name="Dee")
    ch = t.acct.charge(amount=4999, customer=cus)
    dispute = t.acct.dispute(charge=ch, reason="fraudulent")
    event = make_event("charge.dispute.created", dispute, account=t.account_id)
    async with hooks() as (post, _):
        first = await post(t.slug, event, t.secret)
        replies = await asyncio.gather(*(post(t.slug, event, t.secret) for _ in range(99)))
    assert first.status_code == 200 and first.json()["outcome"].startswith("opened ticket #")
    assert {r.status_code for r in replies} == {200} and all(r.json()["duplicate"] for r in replies)
    assert await _count(db, t.slug, "SELECT count(*) FROM stripe_events") == 1
    assert await _count(db, t.slug, "SELECT deliveries FROM stripe_events") == 100
    assert await _count(db, t.slug, "SELECT count(*) FROM tickets") == 1
    async with connect([t.slug]) as c:
        tickets = (await c.ok("list_tickets", tenant=t.slug))["tickets"]
        customer = await c.ok("get_customer", tenant=t.slug, customer="dee@example.com")
        looked = await c.ok("lookup_charge", tenant=t.slug, id=ch["id"])
    assert tickets[0]["priority"] == "urgent" and "49.99 USD" in tickets[0]["subject"]
    assert set(tickets[0]["tags"]) == {"stripe", "dispute"}
    assert customer["stripe_customer_id"] == cus["id"] and customer["name"] == "Dee"
    assert looked["tickets"] == [tickets[0]["number"]]


async def test_charge_refunded_notes_every_ticket_that_references_the_charge(hooks, db, connect, stripe_tenant) -> None:
    t = await stripe_tenant()
    ch = t.acct.charge(amount=2000)
    async with connect([t.slug]) as c:
        one = await c.ok("create_ticket", tenant=t.slug, subject="refund?", description=f"charge {ch['id']}",
                         customer_email="a@example.com")
        two = await c.ok("create_ticket", tenant=t.slug, subject="other", description="hello",
                         customer_email="b@example.com")
        await c.ok("add_message", tenant=t.slug, ticket=str(two["number"]), content=f"it was {ch['id']}",
                   author_role="agent")
        unrelated = await c.ok("create_ticket", tenant=t.slug, subject="x", description="y",
                               customer_email="c@example.com")
    t.acct.refund(ch, amount=500)
    event = make_event("charge.refunded", t.acct.get(ch["id"]), account=t.account_id)
    async with hooks() as (post, _):
        r = await post(t.slug, event, t.secret)
    assert r.status_code == 200 and r.json()["outcome"] == f"noted on #{one['number']}, #{two['number']}"
    async with connect([t.slug]) as c:
        for number, expected in ((one["number"], 1), (two["number"], 1), (unrelated["number"], 0)):
            msgs = (await c.ok("get_ticket", tenant=t.slug, ticket=str(number)))["messages"]
            notes = [m for m in msgs if m["author_role"] == "system" and "5.00 USD of 20.00 USD" in m["content"]]
            assert len(notes) == expected, number


async def test_payment_failed_opens_a_ticket_for_the_customer(hooks, db, connect, stripe_tenant) -> None:
    t = await stripe_tenant()
    cus = t.acct.customer(email="eve@example.com", name="Eve")
    pi = t.acct.payment_intent(amount=1500, customer=cus, status="requires_payment_method",
                               last_payment_error={"code": "card_declined", "decline_code": "insufficient_funds",
                                                   "message": "Your card has insufficient funds."})
    async with connect([t.slug]) as c:
        existing = await c.ok("create_customer", tenant=t.slug, name="Eve E.", email="eve@example.com")
    async with hooks() as (post, _):
        r = await post(t.slug, make_event("payment_intent.payment_failed", pi, account=t.account_id), t.secret)
        ignored = await post(t.slug, make_event("customer.created", cus, account=t.account_id), t.secret)
    assert r.status_code == 200 and ignored.json()["outcome"].startswith("ignored")
    async with connect([t.slug]) as c:
        tickets = (await c.ok("list_tickets", tenant=t.slug))["tickets"]
        customer = await c.ok("get_customer", tenant=t.slug, customer="eve@example.com")
    assert len(tickets) == 1 and tickets[0]["customer_id"] == existing["id"]
    assert "insufficient_funds" in tickets[0]["subject"] and tickets[0]["priority"] == "high"
    assert customer["stripe_customer_id"] == cus["id"]  # linked by email


async def test_webhook_attacks_are_refused_and_store_nothing(hooks, db, stripe_tenant) -> None:
    a, b = await stripe_tenant("wa"), await stripe_tenant("wb")
    ch = a.acct.charge(amount=100)
    ev = make_event("charge.refunded", ch, account=a.account_id)
    async with hooks() as (post, _):
        body, headers = signed_webhook(ev, a.secret)
        tampered = await post(a.slug, body=body.replace(b'"amount": 100', b'"amount": 999'), headers=headers)
        unsigned = await post(a.slug, body=body, headers={"Content-Type": "application/json"})
        garbage_sig = await post(a.slug, body=body, headers={"Stripe-Signature": "t=1,v1=abc"})
        stale = await post(a.slug, ev, a.secret, timestamp=int(time.time()) - 301)
        future = await post(a.slug, ev, a.secret, timestamp=int(time.time()) + 3600)
        other_secret = await post(a.slug, ev, b.secret)  # valid signature, another tenant's secret
        unknown = await post("no_such_tenant", ev, a.secret)
        bad_slug = await post("Robert'); DROP", ev, a.secret)
        other_account = await post(a.slug, make_event("charge.refunded", ch, account=b.account_id), a.secret)
        platform = await post(a.slug, make_event("charge.refunded", ch), a.secret)
        not_json = await post(a.slug, body=b"{not json", headers={"Stripe-Signature": sign_webhook(b"{not json", a.secret)})
        binary = await post(a.slug, body=b"\xff\xfe", headers={"Stripe-Signature": sign_webhook(b"\xff\xfe", a.secret)})
        text = b"hello, not an event"
        not_event = await post(a.slug, body=text, headers={"Stripe-Signature": sign_webhook(text, a.secret)})
        shape = json.dumps({"object": "event", "id": "evt_1", "type": "x"}).encode()
        bad_shape = await post(a.slug, body=shape, headers={"Stripe-Signature": sign_webhook(shape, a.secret)})
        huge = json.dumps({**ev, "pad": "x" * 2_000_000}).encode()
        too_big = await post(a.slug, body=huge, headers={"Stripe-Signature": sign_webhook(huge, a.secret)})
        fine = await post(a.slug, ev, a.secret)
    for r in (tampered, unsigned, garbage_sig, stale, future, other_secret, unknown, bad_slug):
        assert (r.status_code, r.json()) == (400, {"error": "signature verification failed"})
    for r in (other_account, platform):
        assert r.status_code == 400 and "connected Stripe account" in r.json()["error"]
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["error"]
    assert not_event.status_code == 400 and bad_shape.status_code == 400 and binary.status_code == 400
    assert too_big.status_code == 413
    assert fine.status_code == 200
    assert await _count(db, a.slug, "SELECT count(*) FROM stripe_events") == 1
    assert await _count(db, b.slug, "SELECT count(*) FROM stripe_events") == 0


async def test_a_suspended_tenant_asks_stripe_to_deliver_later(hooks, db, stripe_tenant) -> None:
    from support_mcp import tenancy

    t = await stripe_tenant()
    ev = make_event("charge.refunded", t.acct.charge(amount=100), account=t.account_id)
    await tenancy.set_status(db, t.slug, "suspended")
    async with hooks() as (post, _):
        later = await post(t.slug, ev, t.secret)
        await tenancy.set_status(db, t.slug, "active")
        now = await post(t.slug, ev, t.secret)
    assert later.status_code == 503 and now.status_code == 200


async def test_processing_failure_keeps_the_event_and_a_redelivery_processes_it(
        hooks, db, stripe_tenant, stripe_double) -> None:
    t = await stripe_tenant()
    ch = t.acct.charge(amount=700, customer=t.acct.customer(email="f@example.com"))
    ev = make_event("charge.dispute.created", t.acct.dispute(charge=ch), account=t.account_id)
    stripe_double.fail_next(3, 500, path=f"/v1/charges/{ch['id']}")  # the dispute's charge lookup fails
    async with hooks() as (post, _):
        failed = await post(t.slug, ev, t.secret)
        async with db.tenant_scope(t.slug) as s:
            row = await s.conn.fetchrow("SELECT processed_at, attempts, last_error FROM stripe_events")
        again = await post(t.slug, ev, t.secret)
    assert failed.status_code == 500 and "retried" in failed.json()["error"]
    assert row["processed_at"] is None and row["attempts"] == 1 and "internal error" in row["last_error"]
    assert again.status_code == 200 and again.json()["outcome"].startswith("opened ticket")
    assert await _count(db, t.slug, "SELECT count(*) FROM tickets") == 1


async def test_a_later_delivery_sweeps_earlier_failures(hooks, db, stripe_tenant, stripe_double) -> None:
    t = await stripe_tenant()
    ch = t.acct.charge(amount=700, customer=t.acct.customer(email="g@example.com"))
    ev = make_event("charge.dispute.created", t.acct.dispute(charge=ch), account=t.account_id)
    stripe_double.fail_next(3, 500, path=f"/v1/charges/{ch['id']}")
    async with hooks() as (post, server):
        assert (await post(t.slug, ev, t.secret)).status_code == 500
        other = make_event("customer.created", t.acct.customer(), account=t.account_id)
        assert (await post(t.slug, other, t.secret)).status_code == 200  # sweeps in the background
    for _ in range(50):
        if await _count(db, t.slug, "SELECT count(*) FROM stripe_events WHERE processed_at IS NULL") == 0:
            break
        await asyncio.sleep(0.1)
    assert await _count(db, t.slug, "SELECT count(*) FROM stripe_events WHERE processed_at IS NULL") == 0
    assert await _count(db, t.slug, "SELECT count(*) FROM tickets") == 1


async def test_a_failure_in_the_one_transaction_path_keeps_the_event(hooks, db, connect, stripe_tenant,
                                                                     monkeypatch) -> None:
    from support_mcp.payments import events

    t = await stripe_tenant()
    ch = t.acct.charge(amount=600)
    async with connect([t.slug]) as c:
        ticket = await c.ok("create_ticket", tenant=t.slug, subject="s", description=f"re {ch['id']}",
                            customer_email="k@example.com")
    real, calls = events._charge_refunded, {"n": 0}

    async def flaky(conn, obj):  # noqa: ANN001
        calls["n"] += 1
        outcome = await real(conn, obj)  # its writes are rolled back with the savepoint
        if calls["n"] == 1:
            raise RuntimeError("boom after writing")
        return outcome

    monkeypatch.setattr(events, "_charge_refunded", flaky)
    t.acct.refund(ch)
    event = make_event("charge.refunded", t.acct.get(ch["id"]), account=t.account_id)
    async with hooks() as (post, _):
        failed = await post(t.slug, event, t.secret)
        async with db.tenant_scope(t.slug) as s:
            row = await s.conn.fetchrow("SELECT processed_at, attempts, last_error FROM stripe_events")
            notes = await s.conn.fetchval("SELECT count(*) FROM messages WHERE author_role = 'system'")
        again = await post(t.slug, event, t.secret)
    assert failed.status_code == 500 and "boom" not in failed.text
    assert row["processed_at"] is None and row["attempts"] == 1 and row["last_error"].startswith("RuntimeError")
    assert notes == 0
    assert again.status_code == 200 and again.json()["outcome"] == f"noted on #{ticket['number']}", again.json()
    assert await _count(db, t.slug, "SELECT count(*) FROM messages WHERE author_role = 'system'") == 1


@pytest.mark.parametrize("kind", ["charge.dispute.created", "charge.refunded"])
async def test_concurrent_first_deliveries_process_once(hooks, db, connect, stripe_tenant, kind) -> None:
    t = await stripe_tenant()
    ch = t.acct.charge(amount=300, customer=t.acct.customer(email="c@example.com"))
    async with connect([t.slug]) as c:
        await c.ok("create_ticket", tenant=t.slug, subject="s", description=f"re {ch['id']}",
                   customer_email="c@example.com")
    obj = t.acct.dispute(charge=ch) if kind == "charge.dispute.created" else t.acct.get(ch["id"])
    event = make_event(kind, obj, account=t.account_id)
    async with hooks() as (post, _):
        replies = await asyncio.gather(*(post(t.slug, event, t.secret) for _ in range(30)))
    assert [r.status_code for r in replies] == [200] * 30
    assert sum(not r.json()["duplicate"] for r in replies) == 1
    assert await _count(db, t.slug, "SELECT count(*) FROM stripe_events") == 1
    assert await _count(db, t.slug, "SELECT deliveries FROM stripe_events") == 30
    if kind == "charge.dispute.created":  # one urgent ticket, pointing at the earlier one about the charge
        assert await _count(db, t.slug, "SELECT count(*) FROM tickets") == 2
        assert await _count(db, t.slug, "SELECT count(*) FROM tickets WHERE priority = 'urgent' "
                                        "AND description LIKE '%Earlier tickets about this payment: #1001.%'") == 1
    else:
        assert await _count(db, t.slug, "SELECT count(*) FROM messages WHERE author_role = 'system'") == 1
