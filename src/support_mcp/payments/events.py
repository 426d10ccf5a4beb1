"""What a Stripe event means for the support desk, applied in the tenant's schema.

`prepare` gathers what the event needs from Stripe (outside any transaction); `apply` runs
inside the tenant scope, in the same transaction that marks the event processed, so an event
either has all its effects and is marked, or none and stays unprocessed (and is retried).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from ..db import queries
from ..desk.models import Customer
from ..desk.refs import is_email
from .gateway import TenantStripe
from .models import money, ts
from .service import _id

DISPUTE_CREATED = "charge.dispute.created"
CHARGE_REFUNDED = "charge.refunded"
PAYMENT_FAILED = "payment_intent.payment_failed"
HANDLED = (DISPUTE_CREATED, CHARGE_REFUNDED, PAYMENT_FAILED)
NEEDS_STRIPE = (DISPUTE_CREATED, PAYMENT_FAILED)  # prepare() asks Stripe who the customer is


@dataclass
class Payer:
    """Who paid, as Stripe knows them (to find or create the tenant's customer)."""

    stripe_customer_id: str | None
    email: str | None
    name: str | None
    fallback_name: str


async def prepare(stripe: TenantStripe, event: dict[str, Any]) -> Payer | None:
    obj = event["data"]["object"]
    if event["type"] == DISPUTE_CREATED:
        charge = await stripe.retrieve_charge(_id(obj.get("charge")) or "", expand=["customer"])
        cus = charge.get("customer") if isinstance(charge.get("customer"), dict) else {}
        billing = charge.get("billing_details") or {}
        return Payer(_id(charge.get("customer")), cus.get("email") or billing.get("email"),
                     cus.get("name") or billing.get("name"), f"Cardholder of {charge['id']}")
    if event["type"] == PAYMENT_FAILED:
        cus_id = _id(obj.get("customer"))
        cus = await stripe.retrieve_customer(cus_id) if cus_id else {}
        billing = ((obj.get("last_payment_error") or {}).get("payment_method") or {}).get("billing_details") or {}
        return Payer(cus_id, cus.get("email") or billing.get("email") or obj.get("receipt_email"),
                     cus.get("name") or billing.get("name"), f"Payer of {obj['id']}")
    return None


async def apply(conn: asyncpg.Connection, event: dict[str, Any], payer: Payer | None) -> str:
    kind, obj = event["type"], event["data"]["object"]
    if kind == DISPUTE_CREATED:
        return await _dispute_created(conn, obj, payer)
    if kind == CHARGE_REFUNDED:
        return await _charge_refunded(conn, obj)
    if kind == PAYMENT_FAILED:
        return await _payment_failed(conn, obj, payer)
    return f"ignored: no support action for {kind[:100]}"


def _usable_email(value: str | None) -> str | None:
    """Stripe's email for the payer if the customer table can store it (a billing email is whatever
    was typed); otherwise none, and the customer is found or created without it."""
    email = (value or "").strip()
    return email if email and len(email) <= 320 and is_email(email) else None


async def _customer(conn: asyncpg.Connection, payer: Payer) -> Customer:
    """The tenant's customer for a Stripe payer: by Stripe id, else by email (linking the id),
    else a new customer."""
    if payer.stripe_customer_id:
        row = await queries.customer_by_stripe_id(conn, stripe_customer_id=payer.stripe_customer_id)
        if row is not None:
            return Customer(**dict(row))
    email = _usable_email(payer.email)
    if email:
        row = await queries.get_customer_by_email(conn, email=email)
        if row is not None:
            if payer.stripe_customer_id and row["stripe_customer_id"] is None:
                row = await queries.link_customer_stripe_id(
                    conn, id=row["id"], stripe_customer_id=payer.stripe_customer_id) or row
            return Customer(**dict(row))
    # a cardholder may type anything, even only spaces (which the name check refuses): trimmed like
    # create_customer's names, and a blank one falls back to the email or the payment
    name = (payer.name or "").strip()[:200].strip() or email or payer.fallback_name
    row = await queries.insert_customer(conn, name=name[:200], email=email, phone=None,
                                        stripe_customer_id=payer.stripe_customer_id)
    return Customer(**dict(row))


async def _open_ticket(conn: asyncpg.Connection, payer: Payer | None, refs: list[str], *, subject: str,
                       description: str, priority: str, tags: list[str]) -> str:
    existing = [r["number"] async for r in queries.tickets_referencing(conn, refs=refs[:1])]
    if existing:  # the same dispute/payment already has a ticket (e.g. an event re-sent under a new id)
        return f"already tracked on ticket #{existing[0]}"
    assert payer is not None
    customer = await _customer(conn, payer)
    row = await queries.insert_ticket(conn, customer_id=customer.id, subject=subject[:300], description=description,
                                      priority=priority, tags=tags)
    await queries.link_refs(conn, ticket_id=row["id"], refs=[r for r in refs if r])
    return f"opened ticket #{row['number']}"


async def _dispute_created(conn: asyncpg.Connection, d: dict[str, Any], payer: Payer | None) -> str:
    amount = money(d["amount"], d["currency"])
    due = ts((d.get("evidence_details") or {}).get("due_by"))
    charge = _id(d.get("charge"))
    lines = [f"Stripe opened dispute {d['id']} on charge {charge}: {amount}, reason {d.get('reason')}, "
             f"status {d.get('status')}."]
    if due:
        lines.append(f"Evidence is due by {due:%Y-%m-%d %H:%M} UTC: answer in the Stripe Dashboard before then.")
    payment_refs = [r for r in (charge, _id(d.get("payment_intent"))) if r]
    related = [r["number"] async for r in queries.tickets_referencing(conn, refs=payment_refs)] if payment_refs else []
    if related:
        lines.append("Earlier tickets about this payment: " + ", ".join(f"#{n}" for n in related) + ".")
    return await _open_ticket(conn, payer, [d["id"], charge, _id(d.get("payment_intent"))],
                              subject=f"Dispute: {amount} on {charge} ({d.get('reason')})",
                              description="\n".join(lines), priority="urgent", tags=["stripe", "dispute"])


async def _payment_failed(conn: asyncpg.Connection, pi: dict[str, Any], payer: Payer | None) -> str:
    error = pi.get("last_payment_error") or {}
    amount = money(pi["amount"], pi["currency"])
    code = error.get("decline_code") or error.get("code") or "unknown"
    text = f"Stripe could not collect {amount} for payment intent {pi['id']}: {error.get('message') or 'no reason given'}"
    return await _open_ticket(conn, payer, [pi["id"], _id(error.get("charge")), _id(pi.get("latest_charge"))],
                              subject=f"Payment failed: {amount} ({code})", description=f"{text} (code {code}).",
                              priority="high", tags=["stripe", "payment-failed"])


async def _charge_refunded(conn: asyncpg.Connection, ch: dict[str, Any]) -> str:
    refs = [r for r in (ch["id"], _id(ch.get("payment_intent"))) if r]
    tickets = [r async for r in queries.tickets_referencing(conn, refs=refs)]
    if not tickets:
        return "no ticket references this charge"
    total = money(ch.get("amount_refunded") or 0, ch["currency"])
    state = "fully refunded" if ch.get("refunded") else f"{total} of {money(ch['amount'], ch['currency'])} refunded"
    text = f"Stripe reports charge {ch['id']} refunded: {state} in total."
    for t in tickets:
        await queries.insert_message(conn, ticket_id=t["id"], author_role="system", internal=True, content=text)
        await queries.touch_ticket(conn, id=t["id"])
    return "noted on " + ", ".join(f"#{t['number']}" for t in tickets)
