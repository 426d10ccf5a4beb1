"""Hostile Stripe data (a cardholder's billing name, a decline message and code, a dispute reason)
through the real signed-webhook path, then the markdown an agent reads about the ticket it opened."""

from __future__ import annotations

from contextlib import asynccontextmanager

import httpx
import pytest

from support_mcp.server import build_server
from support_mcp.testing.markdown_check import HOSTILE, MARKER, OUR_HEADINGS, check_untrusted
from support_mcp.stripe_sandbox import make_event, signed_webhook
from support_mcp.untrusted import reveal

CASES = list(HOSTILE.items())


@pytest.fixture
def post_event(db, kb):
    """`async with post_event() as post`: POST a signed event to the server's own HTTP app."""

    @asynccontextmanager
    async def _hooks():
        server = build_server(db.settings.model_copy(update={"stripe_cache_seconds": 0}), bearer=True, db=db, kb=kb)
        transport = httpx.ASGITransport(app=server.streamable_http_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            async def post(slug: str, event: dict, secret: str) -> httpx.Response:
                body, headers = signed_webhook(event, secret)
                return await http.post(f"/webhooks/stripe/{slug}", content=body, headers=headers)

            yield post

    return _hooks


async def _rendered(connect, slug: str) -> tuple[dict, list[str]]:
    async with connect([slug]) as c:
        (ticket,) = (await c.ok("list_tickets", tenant=slug))["tickets"]
        detail = await c.ok("get_ticket", tenant=slug, ticket=ticket["id"])
        md = (await c.client.read_resource(f"ticket://{slug}/{ticket['number']}")).contents[0].text
        draft = (await c.client.get_prompt("draft_reply", {"tenant": slug, "ticket": ticket["id"]}))
        summary = (await c.client.get_prompt("summarize_ticket", {"tenant": slug, "ticket": ticket["id"]}))
    texts = [md, draft.messages[0].content.text, summary.messages[0].content.text]
    return detail, texts


def _values(detail: dict) -> list[str]:
    c = detail["customer"]
    return [detail["subject"], detail["description"], *detail["tags"], c["name"], c["email"],
            *(m["content"] for m in detail["messages"])]


@pytest.mark.parametrize(("name", "value"), CASES, ids=[n for n, _ in CASES])
async def test_payment_failed_with_a_hostile_billing_name(post_event, connect, stripe_tenant, name: str,
                                                          value: str) -> None:
    t = await stripe_tenant()
    error = {"code": "card_declined", "decline_code": value[:80], "message": value,
             "payment_method": {"billing_details": {"name": value, "email": "mallory@example.com"}}}
    pi = t.acct.payment_intent(amount=1500, status="requires_payment_method", last_payment_error=error)
    async with post_event() as post:
        r = await post(t.slug, make_event("payment_intent.payment_failed", pi, account=t.account_id), t.secret)
    assert r.status_code == 200 and r.json()["outcome"].startswith("opened ticket #")
    detail, texts = await _rendered(connect, t.slug)
    assert detail["customer"]["name"] == value[:200]  # stored as Stripe sent it, escaped when shown
    for md in texts:
        checked = check_untrusted(md, _values(detail), MARKER, OUR_HEADINGS)
        assert reveal(detail["description"]) in checked.texts() and reveal(detail["subject"]) in checked.texts()


@pytest.mark.parametrize(("name", "value"), CASES, ids=[n for n, _ in CASES])
async def test_dispute_with_a_hostile_reason_and_cardholder(post_event, connect, stripe_tenant, name: str,
                                                            value: str) -> None:
    t = await stripe_tenant()
    ch = t.acct.charge(amount=4999, billing_details={"name": value, "email": "card@example.com", "address": None,
                                                     "phone": None})
    event = make_event("charge.dispute.created", t.acct.dispute(charge=ch, reason="fraudulent"), account=t.account_id)
    event["data"]["object"]["reason"] = value[:500]  # the payload is what Stripe signed, whatever it says
    async with post_event() as post:
        r = await post(t.slug, event, t.secret)
    assert r.status_code == 200 and r.json()["outcome"].startswith("opened ticket #")
    detail, texts = await _rendered(connect, t.slug)
    assert detail["customer"]["name"] == value[:200] and MARKER in detail["subject"]
    for md in texts:
        check_untrusted(md, _values(detail), MARKER, OUR_HEADINGS)


@pytest.mark.parametrize(("billing_name", "email"), [("   ", None), ("\u200b", None), ("x" * 300 + "   ", None),
                                                    ("Eve", "not an email"), ("Eve", "e\n@x.test"),
                                                    ("Eve", "e" * 400 + "@x.test"), ("  ", "  ")])
async def test_odd_billing_details_still_open_the_ticket(post_event, connect, stripe_tenant, billing_name: str,
                                                         email: str | None) -> None:
    """Stripe-controlled values that break the customer table's checks must not fail the event forever."""
    t = await stripe_tenant()
    error = {"code": "card_declined", "message": "declined",
             "payment_method": {"billing_details": {"name": billing_name, "email": email}}}
    pi = t.acct.payment_intent(amount=1500, status="requires_payment_method", last_payment_error=error)
    async with post_event() as post:
        r = await post(t.slug, make_event("payment_intent.payment_failed", pi, account=t.account_id), t.secret)
    assert r.status_code == 200 and r.json()["outcome"].startswith("opened ticket #"), r.text
    detail, _ = await _rendered(connect, t.slug)
    assert detail["customer"]["name"].strip()
