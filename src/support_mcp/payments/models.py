"""Result models of the payment tools. Amounts are integers in the currency's smallest unit
(as Stripe sends them) with a formatted companion, e.g. 2500 and "25.00 USD"."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from ..desk.models import Customer
from ..untrusted import untrusted_field

# Stripe's zero- and three-decimal currencies; every other one has two decimals.
_ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())
_THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())

DisputeStatus = Literal["warning_needs_response", "warning_under_review", "warning_closed", "needs_response",
                        "under_review", "won", "lost", "prevented"]
RefundReason = Literal["requested_by_customer", "duplicate", "fraudulent"]


def money(amount: int | None, currency: str | None) -> str | None:
    if amount is None or not currency:
        return None
    cur = currency.lower()
    places = 0 if cur in _ZERO_DECIMAL else 3 if cur in _THREE_DECIMAL else 2
    value = Decimal(amount).scaleb(-places)
    return f"{value:,.{places}f} {cur.upper()}"


def ts(value: int | None) -> datetime | None:
    """A Stripe timestamp; None when absent or out of range (a webhook may carry anything)."""
    try:
        return None if value is None else datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError, TypeError):
        return None


class DisputeSummary(BaseModel):
    id: str
    charge: str | None
    payment_intent: str | None = None
    status: str
    reason: str = untrusted_field("From Stripe's dispute.")
    amount: int
    currency: str
    amount_formatted: str | None
    evidence_due_by: datetime | None
    created: datetime | None
    tickets: list[int] = Field(default_factory=list, description="Numbers of tickets that reference this dispute "
                               "or its charge.")


class ChargeSummary(BaseModel):
    id: str
    amount: int = Field(description="In the currency's smallest unit (2500 = 25.00 USD).")
    currency: str
    amount_formatted: str | None
    status: str
    amount_refunded: int
    refunded: bool = Field(description="Fully refunded.")
    disputed: bool
    payment_intent: str | None
    description: str | None = untrusted_field("Set by the merchant or customer.")
    created: datetime | None


class ChargeInfo(ChargeSummary):
    refundable_amount: int = Field(description="What a refund may still return (0 when disputed or not succeeded).")
    amount_refunded_formatted: str | None
    paid: bool
    failure_message: str | None = untrusted_field("From Stripe or the card issuer.")
    receipt_url: str | None
    stripe_customer_id: str | None
    customer: Customer | None = Field(description="The tenant's customer linked to this Stripe customer, if any.")
    dispute: DisputeSummary | None
    tickets: list[int] = Field(description="Numbers of tickets that reference this charge or its payment intent.")


class ChargeList(BaseModel):
    stripe_customer_id: str
    customer: Customer | None
    charges: list[ChargeSummary]
    next_cursor: str | None = Field(description="Pass as cursor for the next (older) page; null when done.")


class DisputeList(BaseModel):
    disputes: list[DisputeSummary]
    scanned: int = Field(description="Disputes read from Stripe to fill this page (status is filtered here).")
    next_cursor: str | None


class RefundResult(BaseModel):
    refund_id: str | None = Field(description="Null on a dry run.")
    status: str = Field(description="Stripe's refund status, or 'preview' on a dry run.")
    charge: str
    amount: int
    currency: str
    amount_formatted: str | None
    reason: RefundReason
    charge_amount_refunded: int | None = Field(description="The charge's total refunded after this refund.")
    ticket_number: int | None
    replayed: bool = Field(description="True when this exact request was made before: no second refund was made.")
    note: str
