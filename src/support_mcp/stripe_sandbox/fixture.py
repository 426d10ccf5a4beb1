"""The `stripe` section of an episode fixture: the objects of the episode's sandbox account.

Field names are Stripe's (and the payment tools'): ids as the tools accept them (`ch_...`,
`pi_...`, `cus_...`, `dp_...`, `re_...`), amounts in the currency's smallest unit, references by
id. `section_problems` checks what shapes cannot (references, amounts left to refund) over the raw
data, as `path: problem` strings, so they are reported next to shape errors; `populate` writes a
valid section into an :class:`Account` (README "Fixtures (for evaluation runs)").
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from .objects import Account

MAX_OBJECTS = 1000  # per kind: a fixture is seed data

_IDS = {"customers": r"cus", "payment_intents": r"pi", "charges": r"(?:ch|py)", "disputes": r"(?:dp|du)",
        "refunds": r"re"}
_SUFFIX = r"_[A-Za-z0-9]{1,64}"  # the payment tools' id check (payments/service.py)


def _id(kind: str) -> Any:
    return Annotated[str, StringConstraints(pattern=f"^{_IDS[kind]}{_SUFFIX}$")]


CustomerId, ChargeId, PaymentIntentId, DisputeId, RefundId = (
    _id("customers"), _id("charges"), _id("payment_intents"), _id("disputes"), _id("refunds"))
Amount = Annotated[StrictInt, Field(gt=0, le=99_999_999_999)]
Currency = Annotated[str, StringConstraints(pattern=r"^[a-z]{3}$")]
Created = Annotated[StrictInt, Field(ge=0, le=4_102_444_800)]  # unix seconds, before 2100
Metadata = Annotated[dict[str, Annotated[str, Field(max_length=500)]], Field(max_length=50)]
Text = Annotated[str, StringConstraints(max_length=1000)]

ChargeStatus = Literal["succeeded", "pending", "failed"]
PaymentIntentStatus = Literal["requires_payment_method", "requires_confirmation", "requires_action", "processing",
                              "requires_capture", "canceled", "succeeded"]
DisputeStatus = Literal["warning_needs_response", "warning_under_review", "warning_closed", "needs_response",
                        "under_review", "won", "lost", "prevented"]
DisputeReason = Literal["bank_cannot_process", "check_returned", "credit_not_processed", "customer_initiated",
                        "debit_not_authorized", "duplicate", "fraudulent", "general", "incorrect_account_details",
                        "insufficient_funds", "noncompliant", "product_not_received", "product_unacceptable",
                        "subscription_canceled", "unrecognized"]
RefundReason = Literal["duplicate", "fraudulent", "requested_by_customer"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class StripeCustomer(_Strict):
    id: CustomerId
    email: Annotated[str, Field(max_length=320)] | None = None
    name: Annotated[str, Field(max_length=200)] | None = None
    phone: Annotated[str, Field(max_length=40)] | None = None
    description: Text | None = None
    created: Created | None = None
    metadata: Metadata = Field(default_factory=dict)


class StripePaymentIntent(_Strict):
    id: PaymentIntentId
    amount: Amount
    currency: Currency = "usd"
    status: PaymentIntentStatus = "succeeded"
    customer: CustomerId | None = None
    description: Text | None = None
    created: Created | None = None
    metadata: Metadata = Field(default_factory=dict)


class StripeCharge(_Strict):
    id: ChargeId
    amount: Amount
    currency: Currency = "usd"
    status: ChargeStatus = "succeeded"
    customer: CustomerId | None = None
    payment_intent: PaymentIntentId | None = None
    description: Text | None = None
    failure_code: Annotated[str, Field(max_length=100)] | None = None
    failure_message: Text | None = None
    receipt_url: Annotated[str, StringConstraints(pattern=r"^https://\S{1,2000}$")] | None = None
    created: Created | None = None
    metadata: Metadata = Field(default_factory=dict)


class StripeDispute(_Strict):
    id: DisputeId
    charge: ChargeId
    amount: Amount | None = None  # default: the charge's amount
    status: DisputeStatus = "needs_response"
    reason: DisputeReason = "general"
    created: Created | None = None
    metadata: Metadata = Field(default_factory=dict)


class StripeRefund(_Strict):
    id: RefundId | None = None  # default: minted (seeded for deterministic episodes)
    charge: ChargeId
    amount: Amount | None = None  # default: everything still refundable
    reason: RefundReason | None = None
    metadata: Metadata = Field(default_factory=dict)


class StripeSection(_Strict):
    customers: list[StripeCustomer] = Field(default_factory=list, max_length=MAX_OBJECTS)
    payment_intents: list[StripePaymentIntent] = Field(default_factory=list, max_length=MAX_OBJECTS)
    charges: list[StripeCharge] = Field(default_factory=list, max_length=MAX_OBJECTS)
    disputes: list[StripeDispute] = Field(default_factory=list, max_length=MAX_OBJECTS)
    refunds: list[StripeRefund] = Field(default_factory=list, max_length=MAX_OBJECTS)


# --- cross-references over the raw data ----------------------------------------------------

def _items(section: dict[str, Any], kind: str) -> list[tuple[int, dict[str, Any]]]:
    items = section.get(kind)
    return [(i, o) for i, o in enumerate(items) if isinstance(o, dict)] if isinstance(items, list) else []


def _str(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def section_problems(section: Any, prefix: str = "stripe") -> list[str]:
    """Duplicate ids, references to objects the section does not have, refunds and disputes the
    charge cannot take. Shapes are the models' business: anything malformed here is skipped."""
    if not isinstance(section, dict):
        return []
    problems: list[str] = []
    where: dict[str, str] = {}  # id -> path of its first definition
    by_kind: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in _IDS}
    for kind in _IDS:
        for i, obj in _items(section, kind):
            oid = _str(obj.get("id"))
            if not oid or not re.fullmatch(f"{_IDS[kind]}{_SUFFIX}", oid):
                continue
            if oid in where:
                problems.append(f"{prefix}.{kind}[{i}].id: duplicate of {where[oid]}.id")
                continue
            where[oid] = f"{prefix}.{kind}[{i}]"
            by_kind[kind][oid] = obj

    def ref(path: str, value: Any, kind: str) -> dict[str, Any] | None:
        oid = _str(value)
        if oid is None:
            return None
        if oid not in by_kind[kind]:
            problems.append(f"{path}: no {kind[:-1].replace('_', ' ')} {oid!r} in {prefix}.{kind}")
            return None
        return by_kind[kind][oid]

    for i, pi in _items(section, "payment_intents"):
        ref(f"{prefix}.payment_intents[{i}].customer", pi.get("customer"), "customers")
    for i, ch in _items(section, "charges"):
        path = f"{prefix}.charges[{i}]"
        ref(f"{path}.customer", ch.get("customer"), "customers")
        pi = ref(f"{path}.payment_intent", ch.get("payment_intent"), "payment_intents")
        if pi is not None:
            for field, default in (("amount", None), ("currency", "usd"), ("customer", None)):
                mine, theirs = ch.get(field, default), pi.get(field, default)
                if mine is not None and theirs is not None and mine != theirs:
                    problems.append(f"{path}.{field}: {mine!r} differs from its payment intent's {theirs!r}")
    left: dict[str, int] = {}
    for i, rf in _items(section, "refunds"):
        path = f"{prefix}.refunds[{i}]"
        ch = ref(f"{path}.charge", rf.get("charge"), "charges")
        amount = _int(ch.get("amount")) if ch is not None else None
        if ch is None or amount is None:
            continue
        if ch.get("status", "succeeded") != "succeeded":
            problems.append(f"{path}.charge: charge {ch['id']} has status {ch.get('status')!r}; only succeeded "
                            "charges can be refunded")
            continue
        remaining = left.get(ch["id"], amount)
        wanted = _int(rf.get("amount"))
        if remaining <= 0:
            problems.append(f"{path}: charge {ch['id']} is already fully refunded by earlier refunds")
        elif wanted is not None and wanted > remaining:
            problems.append(f"{path}.amount: {wanted} is more than the {remaining} still refundable on charge "
                            f"{ch['id']} (amount {amount})")
        left[ch["id"]] = remaining - (wanted if wanted is not None else remaining)
    disputed: dict[str, str] = {}
    for i, dp in _items(section, "disputes"):
        path = f"{prefix}.disputes[{i}]"
        ch = ref(f"{path}.charge", dp.get("charge"), "charges")
        if ch is None:
            continue
        if ch["id"] in disputed:
            problems.append(f"{path}.charge: charge {ch['id']} already has a dispute ({disputed[ch['id']]})")
            continue
        disputed[ch["id"]] = path
        if ch.get("status", "succeeded") != "succeeded":
            problems.append(f"{path}.charge: charge {ch['id']} has status {ch.get('status')!r}; only succeeded "
                            "charges can be disputed")
        wanted, amount = _int(dp.get("amount")), _int(ch.get("amount"))
        if wanted is not None and amount is not None and wanted > amount:
            problems.append(f"{path}.amount: {wanted} is more than the charge's amount {amount}")
    return problems


def customer_ids(section: Any) -> set[str]:
    """The customer ids a raw section defines (for the desk customers' stripe_customer_id)."""
    if not isinstance(section, dict):
        return set()
    return {oid for _, c in _items(section, "customers") if (oid := _str(c.get("id")))}


# --- writing ---------------------------------------------------------------------------------

def populate(acct: Account, section: StripeSection) -> None:
    """Seed a valid section into an (empty) account: customers, payment intents, charges (linking
    their payment intents), refunds (updating their charges), then disputes."""
    def opt(**fields: Any) -> dict[str, Any]:
        return {k: v for k, v in fields.items() if v is not None}

    for c in section.customers:
        acct.customer(c.id, email=c.email, name=c.name, phone=c.phone, description=c.description, created=c.created,
                      metadata=c.metadata)
    for p in section.payment_intents:
        acct.payment_intent(p.id, amount=p.amount, currency=p.currency, status=p.status, customer=p.customer,
                            description=p.description, created=p.created, metadata=p.metadata, seed_charge=False)
    for ch in section.charges:
        acct.charge(ch.id, amount=ch.amount, currency=ch.currency, status=ch.status, customer=ch.customer,
                    payment_intent=ch.payment_intent, description=ch.description, created=ch.created,
                    metadata=ch.metadata, **opt(failure_code=ch.failure_code, failure_message=ch.failure_message,
                                                receipt_url=ch.receipt_url))
    for r in section.refunds:
        acct.refund(r.charge, amount=r.amount, reason=r.reason, metadata=r.metadata, **opt(id=r.id))
    for d in section.disputes:
        acct.dispute(d.id, charge=d.charge, amount=d.amount, status=d.status, reason=d.reason, created=d.created,
                     metadata=d.metadata)
