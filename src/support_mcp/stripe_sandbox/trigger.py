"""`episodes trigger`: make something happen on an episode's sandbox account, as it would on Stripe,
and deliver the signed event through the project's real webhook path (payments/webhooks.py).

The change and the event are made in one sandbox transaction (the event id is minted like the
account's other ids: seeded accounts give the same id), then the event is signed with the
tenant's webhook secret and handed to the `WebhookReceiver`, which checks the signature, stores
the event and processes it exactly as it would a delivery from Stripe (looking objects up through
the gateway, so the sandbox must be running in this process).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from ..db import queries
from ..errors import InvalidInput, NotConnected, NotFound
from . import store
from .events import make_event, signed_webhook
from .objects import DISPUTE_REASONS, Account

if TYPE_CHECKING:
    from ..db import Database
    from ..payments.webhooks import WebhookReceiver


@dataclass(frozen=True)
class EventKind:
    object_kind: str  # what --object must name
    help: str


EVENTS: dict[str, EventKind] = {
    "charge.dispute.created": EventKind("charge", "a charge (ch_...) gets a new dispute (--reason, default general)"),
    "charge.refunded": EventKind("charge", "a charge (ch_...) is refunded outside support-mcp (--amount, default "
                                           "everything left), as from the Stripe Dashboard"),
    "payment_intent.payment_failed": EventKind("payment_intent", "a payment intent (pi_...) that has not "
                                                                 "succeeded fails (a declined card)"),
}
_DECLINE = {"code": "card_declined", "decline_code": "generic_decline", "type": "card_error",
            "message": "Your card was declined."}


def supported() -> str:
    return ", ".join(EVENTS)


def _happen(acct: Account, event_type: str, object_id: str, *, amount: int | None,
            reason: str | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Change the account as the event says; returns (the event's object, previous_attributes)."""
    kind = EVENTS[event_type]
    obj = acct.get(object_id)
    if obj is None:
        raise NotFound(f"no object {object_id} in the episode's Stripe sandbox")
    if obj["object"] != kind.object_kind:
        raise InvalidInput(f"{event_type} needs --object to be a {kind.object_kind.replace('_', ' ')}, and "
                           f"{object_id} is a {obj['object'].replace('_', ' ')}")
    if event_type == "charge.dispute.created":
        if reason is not None and reason not in DISPUTE_REASONS:
            raise InvalidInput(f"--reason must be one of {', '.join(sorted(DISPUTE_REASONS))}")
        if obj["status"] != "succeeded" or obj.get("disputed"):
            why = "it is already disputed" if obj.get("disputed") else f"its status is {obj['status']}"
            raise InvalidInput(f"charge {object_id} cannot be disputed: {why}")
        return acct.dispute(charge=obj, reason=reason or "general"), None
    if event_type == "charge.refunded":
        left = obj["amount"] - obj["amount_refunded"]
        if obj["status"] != "succeeded" or left <= 0:
            raise InvalidInput(f"charge {object_id} cannot be refunded: "
                               + ("nothing is left to refund" if left <= 0 else f"its status is {obj['status']}"))
        if amount is not None and not 0 < amount <= left:
            raise InvalidInput(f"--amount must be between 1 and {left} (what is left to refund on {object_id})")
        before = {"amount_refunded": obj["amount_refunded"], "refunded": obj["refunded"]}
        acct.refund(obj, amount=amount, reason="requested_by_customer")
        return obj, before
    if obj["status"] in ("succeeded", "canceled"):
        raise InvalidInput(f"payment intent {object_id} cannot fail: its status is {obj['status']}")
    before = {"status": obj["status"], "last_payment_error": obj.get("last_payment_error")}
    obj["status"], obj["last_payment_error"] = "requires_payment_method", dict(_DECLINE)
    return obj, before


async def trigger(db: Database, receiver: WebhookReceiver, slug: str, event_type: str, object_id: str | None, *,
                  amount: int | None = None, reason: str | None = None) -> dict[str, Any]:
    """Make `event_type` happen to `object_id` on the tenant's sandbox account and deliver the event.
    Returns {"event", "type", "object", "status" (the webhook's HTTP status), "response"}."""
    if event_type not in EVENTS:
        raise InvalidInput(f"unsupported event type {event_type[:80]!r}: use one of {supported()}")
    if not object_id:
        raise InvalidInput(f"{event_type} needs --object: {EVENTS[event_type].help}")
    if not receiver.gateway.sandbox_on:
        raise NotConnected("the Stripe sandbox is not running in this process (SUPPORT_MCP_STRIPE_SANDBOX=on)")
    async with db.admin_scope() as conn:
        account_id = await _account_id(conn, slug)
        loaded = await store.load(conn, account_id, write=True)
        assert loaded is not None
        obj, previous = _happen(loaded.acct, event_type, object_id.strip(), amount=amount, reason=reason)
        event = make_event(event_type, obj, account=loaded.acct.id, event_id=loaded.acct.new_id("evt"),
                           created=loaded.acct.now(), previous_attributes=previous)
        await store.save(conn, loaded)
    acct = await receiver.gateway.registry(slug)
    if acct is None or not acct.webhook_secret:
        raise NotFound(f"tenant {slug} has no webhook secret")
    body, headers = signed_webhook(event, acct.webhook_secret)
    response = await receiver(_request(slug, body, headers))
    if response.background is not None:
        await response.background()
    return {"event": event["id"], "type": event_type, "object": obj["id"], "status": response.status_code,
            "response": json.loads(bytes(response.body))}


async def _account_id(conn: Any, slug: str) -> str:
    row = await queries.sandbox_account_of(conn, slug=slug)
    if row is None:
        raise NotFound("this episode has no Stripe sandbox account (its fixture has no `stripe` section)")
    return row["id"]


def _request(slug: str, body: bytes, headers: dict[str, str]) -> Request:
    """The delivery as the webhook endpoint receives it over HTTP (POST /webhooks/stripe/{slug})."""
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    scope = {"type": "http", "http_version": "1.1", "method": "POST", "scheme": "http", "root_path": "",
             "path": f"/webhooks/stripe/{slug}", "raw_path": f"/webhooks/stripe/{slug}".encode(),
             "query_string": b"", "headers": raw, "client": ("127.0.0.1", 0), "server": ("127.0.0.1", 0),
             "path_params": {"slug": slug}}
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)
