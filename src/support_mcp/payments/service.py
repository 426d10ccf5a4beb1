"""Payment lookups for one tenant: Stripe (through its TenantStripe) joined with the tenant's
own tables (linked customers, tickets that reference a payment)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from ..db import Database, queries
from ..desk import customers
from ..desk.models import Customer
from ..errors import InvalidInput, NotFound
from .gateway import TenantStripe
from .models import ChargeInfo, ChargeList, ChargeSummary, DisputeList, DisputeSummary, money, ts

CHARGE_RE = re.compile(r"^(ch|py)_[A-Za-z0-9]{1,64}$")
PI_RE = re.compile(r"^pi_[A-Za-z0-9]{1,64}$")
CUSTOMER_RE = re.compile(r"^cus_[A-Za-z0-9]{1,64}$")
DISPUTE_RE = re.compile(r"^(dp|du)_[A-Za-z0-9]{1,64}$")
DISPUTES_SCAN_PAGES = 5


def charge_summary(ch: dict[str, Any]) -> dict[str, Any]:
    return dict(
        id=ch["id"], amount=ch["amount"], currency=ch["currency"], amount_formatted=money(ch["amount"], ch["currency"]),
        status=ch["status"], amount_refunded=ch.get("amount_refunded") or 0, refunded=bool(ch.get("refunded")),
        disputed=bool(ch.get("disputed")), payment_intent=_id(ch.get("payment_intent")),
        description=ch.get("description"), created=ts(ch.get("created")))


def refundable(ch: dict[str, Any]) -> int:
    if ch.get("status") != "succeeded" or ch.get("disputed") or ch.get("refunded"):
        return 0
    return max(0, ch["amount"] - (ch.get("amount_refunded") or 0))


def dispute_summary(d: dict[str, Any], tickets: list[int] | None = None) -> DisputeSummary:
    details = d.get("evidence_details") or {}
    return DisputeSummary(
        id=d["id"], charge=_id(d.get("charge")), payment_intent=_id(d.get("payment_intent")), status=d["status"],
        reason=d.get("reason") or "general", amount=d["amount"], currency=d["currency"],
        amount_formatted=money(d["amount"], d["currency"]), evidence_due_by=ts(details.get("due_by")),
        created=ts(d.get("created")), tickets=tickets or [])


def _id(value: Any) -> str | None:
    """An expandable field: an id string or an expanded object."""
    if isinstance(value, dict):
        return value.get("id")
    return value


def _dispute_refs(d: dict[str, Any]) -> list[str]:
    """The ids a ticket may reference a dispute by: the dispute, its charge, its payment intent."""
    return [r for r in (d["id"], _id(d.get("charge")), _id(d.get("payment_intent"))) if r]


def charge_id_of(ref: str) -> str:
    ref = ref.strip()
    if not CHARGE_RE.match(ref):
        raise InvalidInput(f"{ref[:40]!r} is not a charge id: use ch_... (or py_...), or a PaymentIntent pi_...")
    return ref


async def resolve_charge(stripe: TenantStripe, ref: str) -> dict[str, Any]:
    """A charge by ch_/py_ id, or a PaymentIntent's latest charge by pi_ id."""
    ref = ref.strip()
    if PI_RE.match(ref):
        pi = await stripe.retrieve_payment_intent(ref)
        latest = _id(pi.get("latest_charge"))
        if not latest:
            raise NotFound(f"payment intent {ref} has no charge yet (its status is {pi.get('status')})")
        return await stripe.retrieve_charge(latest)
    return await stripe.retrieve_charge(charge_id_of(ref))


async def _local_context(db: Database, slug: str, stripe_customer: str | None,
                         refs: list[str]) -> tuple[Customer | None, list[int]]:
    async with db.tenant_scope(slug) as s:
        row = await queries.charge_context(s.conn, stripe_customer_id=stripe_customer, refs=refs)
    return (Customer(**row["customer"]) if row["customer"] else None), list(row["tickets"])


async def lookup_charge(stripe: TenantStripe, db: Database, ref: str) -> ChargeInfo:
    if not (PI_RE.match(ref.strip()) or CHARGE_RE.match(ref.strip())):
        raise InvalidInput(f"{ref.strip()[:40]!r} is not a charge (ch_...) or PaymentIntent (pi_...) id")
    ch = await resolve_charge(stripe, ref)
    pi = _id(ch.get("payment_intent"))
    cus = _id(ch.get("customer"))
    local = _local_context(db, stripe.slug, cus, [r for r in (ch["id"], pi) if r])
    if ch.get("disputed"):
        (customer, tickets), disputes = await asyncio.gather(local, stripe.list_disputes(charge=ch["id"], limit=1))
        dispute = dispute_summary(disputes["data"][0]) if disputes.get("data") else None
    else:
        (customer, tickets), dispute = await local, None
    return ChargeInfo(
        **charge_summary(ch), refundable_amount=refundable(ch),
        amount_refunded_formatted=money(ch.get("amount_refunded") or 0, ch["currency"]),
        paid=bool(ch.get("paid")), failure_message=ch.get("failure_message"), receipt_url=ch.get("receipt_url"),
        stripe_customer_id=cus, customer=customer, dispute=dispute, tickets=tickets)


async def list_charges(stripe: TenantStripe, db: Database, customer: str, *, limit: int,
                       cursor: str | None) -> ChargeList:
    customer = customer.strip()
    if cursor is not None:
        cursor = charge_id_of(cursor)
    if CUSTOMER_RE.match(customer):
        stripe_id = customer
        (local, _), page = await asyncio.gather(
            _local_context(db, stripe.slug, stripe_id, []),
            stripe.list_charges(customer=stripe_id, limit=limit, starting_after=cursor))
    else:
        async with db.tenant_scope(stripe.slug) as s:
            try:
                local = await customers.get(s.conn, customer)
            except InvalidInput:
                raise InvalidInput("customer must be a customer id (uuid), an email address or a Stripe customer "
                                   "id (cus_...)") from None
        if not local.stripe_customer_id:
            raise InvalidInput(f"customer {customer[:80]} has no Stripe customer linked, so their charges cannot "
                               "be listed; look a charge up by its id instead")
        stripe_id = local.stripe_customer_id
        page = await stripe.list_charges(customer=stripe_id, limit=limit, starting_after=cursor)
    charges = [ChargeSummary(**charge_summary(c)) for c in page.get("data", [])]
    return ChargeList(stripe_customer_id=stripe_id, customer=local, charges=charges,
                      next_cursor=charges[-1].id if page.get("has_more") and charges else None)


async def list_disputes(stripe: TenantStripe, db: Database, *, status: str | None, limit: int,
                        cursor: str | None) -> DisputeList:
    """Stripe cannot filter disputes by status, so pages are read (up to 5 x 100) and filtered here."""
    if cursor is not None and not DISPUTE_RE.match(cursor.strip()):
        raise InvalidInput("cursor must be a dispute id (dp_...) from a previous page")
    found: list[dict[str, Any]] = []
    scanned, after, more = 0, cursor.strip() if cursor else None, False
    for _ in range(DISPUTES_SCAN_PAGES if status else 1):
        page = await stripe.list_disputes(limit=100 if status else limit, starting_after=after)
        data = page.get("data", [])
        more = bool(page.get("has_more"))
        for i, d in enumerate(data):
            scanned, after = scanned + 1, d["id"]
            if status is None or d["status"] == status:
                found.append(d)
                if len(found) == limit:
                    more = more or i < len(data) - 1
                    break
        if len(found) == limit or not page.get("has_more"):
            break
    refs = sorted({r for d in found for r in _dispute_refs(d)})
    by_ref: dict[str, list[int]] = {}
    if refs:
        async with db.tenant_scope(stripe.slug) as s:
            async for r in queries.tickets_referencing_each(s.conn, refs=refs):
                by_ref.setdefault(r["ref"], []).append(r["number"])
    out = []
    for d in found:
        nums = sorted({n for r in _dispute_refs(d) for n in by_ref.get(r, [])})
        out.append(dispute_summary(d, nums))
    return DisputeList(disputes=out, scanned=scanned, next_cursor=after if more else None)
