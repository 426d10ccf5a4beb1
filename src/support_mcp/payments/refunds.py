"""Refunds: validated against the charge, confirmed by a person, idempotent, noted on the ticket.

Idempotency: the key is derived from (tenant, charge, amount, reason, request_id). It is sent
to Stripe (which replays the first answer for 24 h) and recorded in the tenant's
`stripe_refunds`, which keeps the promise after Stripe forgets the key.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from ..db import Database, queries
from ..desk.refs import ticket_ref
from ..errors import InvalidInput, NotFound
from .gateway import TenantStripe
from .models import RefundResult, money
from .service import _id, refundable, resolve_charge

if TYPE_CHECKING:
    from ..confirm import Confirmation


def idempotency_key(tenant_id: Any, charge: str, amount: int | None, reason: str, request_id: str | None) -> str:
    raw = "\x1f".join([str(tenant_id), charge, "full" if amount is None else str(amount), reason, request_id or ""])
    return "support-mcp-refund-" + hashlib.sha256(raw.encode()).hexdigest()[:40]


async def _precheck(db: Database, slug: str, ref: str | None, key: str) -> tuple[Any, Any]:
    """One transaction: the ticket to note the refund on (if named) and an earlier identical request."""
    async with db.tenant_scope(slug) as s:
        row = None
        if ref is not None:
            uid, number = ticket_ref(ref)
            row = await queries.lock_ticket(s.conn, id=uid, number=number)
            if row is None:
                raise NotFound(f"ticket {ref.strip()[:50]} not found")
        return row, await queries.get_refund_request(s.conn, idempotency_key=key)


async def create_refund(stripe: TenantStripe, db: Database, *, charge: str, amount: int | None, reason: str,
                        ticket: str | None, request_id: str | None, approval: Confirmation, dry_run: bool,
                        requested_by: str) -> RefundResult:
    slug = stripe.slug
    if ticket is not None:
        ticket_ref(ticket)  # a malformed ticket reference is refused before Stripe is asked
    ch = await resolve_charge(stripe, charge)
    key = idempotency_key(stripe.account.tenant_id, ch["id"], amount, reason, request_id)
    ticket_row, done = await _precheck(db, slug, ticket, key)
    ticket_number = ticket_row["number"] if ticket_row else None
    if done is not None:  # this exact request was made before: answer it again, refund nothing
        refund = await stripe.retrieve_refund(done["refund_id"])
        return _result(refund, ch, reason, ticket_number, replayed=True,
                       note=f"already refunded by an identical earlier request ({done['created_at']:%Y-%m-%d %H:%M} UTC); "
                            "nothing new was refunded. Pass a new request_id to refund again on purpose.")
    left = refundable(ch)
    if left <= 0:
        why = ("it is disputed (answer the dispute instead)" if ch.get("disputed") else
               "it is already fully refunded" if ch.get("refunded") else f"its status is {ch.get('status')}")
        raise InvalidInput(f"charge {ch['id']} cannot be refunded: {why}")
    if amount is not None and amount > left:
        raise InvalidInput(f"amount {amount} ({money(amount, ch['currency'])}) is more than the "
                           f"{money(left, ch['currency'])} still refundable on charge {ch['id']}")
    value = left if amount is None else amount
    shown = money(value, ch["currency"])
    if dry_run:
        return RefundResult(refund_id=None, status="preview", charge=ch["id"], amount=value, currency=ch["currency"],
                            amount_formatted=shown, reason=reason, charge_amount_refunded=ch.get("amount_refunded"),
                            ticket_number=ticket_number, replayed=False,
                            note=f"dry run: would refund {shown} of charge {ch['id']} ({reason})")
    approval.require(action=f"refunding {shown} of charge {ch['id']}", accepts=(ch["id"], charge), example=ch["id"])
    metadata = {"support_mcp_tenant": slug, "requested_by": requested_by[:200]}
    if ticket_number is not None:
        metadata["support_mcp_ticket"] = str(ticket_number)
    refund, replayed = await stripe.create_refund(idempotency_key=key, charge=ch["id"], amount=amount,
                                                  reason=reason, metadata=metadata)
    await _record(db, slug, key, refund, ch, reason, ticket_row, requested_by)
    ch = {**ch, "amount_refunded": (ch.get("amount_refunded") or 0) + (0 if replayed else refund["amount"])}
    return _result(refund, ch, reason, ticket_number, replayed=replayed,
                   note=(f"refunded {money(refund['amount'], refund['currency'])} of charge {ch['id']}"
                         + (f"; noted on ticket #{ticket_number}" if ticket_number else "")
                         + (" (Stripe replayed an identical earlier request)" if replayed else "")))


async def _record(db: Database, slug: str, key: str, refund: dict[str, Any], ch: dict[str, Any], reason: str,
                  ticket_row: Any, requested_by: str) -> None:
    async with db.tenant_scope(slug) as s:
        ticket_id = None
        if ticket_row is not None:
            locked = await queries.lock_ticket(s.conn, id=ticket_row["id"], number=None)
            ticket_id = locked["id"] if locked else None  # deleted meanwhile: the refund still counts
        first = await queries.record_refund(
            s.conn, idempotency_key=key, refund_id=refund["id"], charge_id=ch["id"], amount=refund["amount"],
            currency=refund["currency"], reason=reason, ticket_id=ticket_id, requested_by=requested_by[:200])
        if first and ticket_id is not None:
            text = (f"Refund {refund['id']} of {money(refund['amount'], refund['currency'])} on charge {ch['id']} "
                    f"(reason: {reason}) issued by {requested_by}; Stripe status: {refund.get('status')}.")
            await queries.insert_message(s.conn, ticket_id=ticket_id, author_role="system", internal=True,
                                         content=text)
            await queries.touch_ticket(s.conn, id=ticket_id)
            refs = [r for r in (ch["id"], _id(ch.get("payment_intent")), refund["id"]) if r]
            await queries.link_refs(s.conn, ticket_id=ticket_id, refs=refs)


def _result(refund: dict[str, Any], ch: dict[str, Any], reason: str, ticket_number: int | None, *, replayed: bool,
            note: str) -> RefundResult:
    return RefundResult(refund_id=refund["id"], status=refund.get("status") or "unknown", charge=ch["id"],
                        amount=refund["amount"], currency=refund["currency"],
                        amount_formatted=money(refund["amount"], refund["currency"]), reason=reason,
                        charge_amount_refunded=ch.get("amount_refunded"), ticket_number=ticket_number,
                        replayed=replayed, note=note)
