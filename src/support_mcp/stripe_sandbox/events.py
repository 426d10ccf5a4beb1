"""Offline Stripe webhook helpers: signed payloads that ``stripe.Webhook.construct_event`` accepts."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from typing import Any

from .ids import new_id

try:  # the API version the installed SDK speaks (and sends as Stripe-Version)
    from stripe._api_version import _ApiVersion

    API_VERSION = _ApiVersion.CURRENT
except Exception:  # pragma: no cover - only without the stripe package
    API_VERSION = "2026-10-28.endive"


def sign_webhook(payload: bytes | str, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header value for ``payload``: ``t=<ts>,v1=<hex>`` where
    ``v1 = HMAC_SHA256(key=secret, msg=f"{t}.{payload}")`` (the whole ``whsec_...`` string is
    the key). ``timestamp`` defaults to now; an old one trips the SDK's 300 s tolerance."""
    body = payload.encode("utf-8") if isinstance(payload, str) else payload
    t = int(time.time()) if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode("utf-8"), f"{t}.".encode() + body, hashlib.sha256)
    return f"t={t},v1={mac.hexdigest()}"


def make_event(type: str, obj: dict[str, Any], account: str | None = None,
               event_id: str | None = None, *, created: int | None = None,
               previous_attributes: dict[str, Any] | None = None,
               api_version: str | None = None) -> dict[str, Any]:
    """A v1 snapshot event shaped like Stripe's. ``account`` is the connected account the
    event happened on (Connect webhooks carry it; omitted for platform events)."""
    event: dict[str, Any] = {"id": event_id or new_id("evt"), "object": "event"}
    if account is not None:
        event["account"] = account
    data: dict[str, Any] = {"object": copy.deepcopy(obj)}
    if previous_attributes is not None:
        data["previous_attributes"] = copy.deepcopy(previous_attributes)
    event.update({
        "api_version": api_version or API_VERSION,
        "created": int(time.time()) if created is None else created,
        "data": data, "livemode": False, "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None}, "type": type,
    })
    return event


def signed_webhook(event: dict[str, Any], secret: str, timestamp: int | None = None
                   ) -> tuple[bytes, dict[str, str]]:
    """``(body, headers)`` for POSTing ``event`` to a webhook endpoint as Stripe would."""
    body = json.dumps(event, indent=2).encode("utf-8")
    return body, {"Content-Type": "application/json; charset=utf-8",
                  "Stripe-Signature": sign_webhook(body, secret, timestamp)}
