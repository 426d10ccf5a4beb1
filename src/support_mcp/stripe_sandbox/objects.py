"""Stripe-shaped objects and the per-account store behind :class:`StripeDouble`.

An :class:`Account` holds one Stripe account's customers, charges, payment intents, disputes
and refunds. The seeding helpers return the *live* stored dicts: mutating one (say
``charge["status"] = "failed"``) changes what the server answers from then on.

Every id an account mints and every ``created`` it stamps go through :meth:`Account.new_id` and
:meth:`Account.now`: random ids and the wall clock by default; :class:`SeededIds` and a frozen
clock make an account deterministic (the same calls mint the same ids).
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

from .ids import Minter, new_id

KIND_PREFIXES: dict[str, tuple[str, ...]] = {
    "customer": ("cus_",),
    "charge": ("ch_", "py_"),
    "payment_intent": ("pi_",),
    "dispute": ("dp_", "du_"),
    "refund": ("re_", "pyr_"),
}
CHARGE_STATUSES = {"succeeded", "pending", "failed"}
PI_STATUSES = {"requires_payment_method", "requires_confirmation", "requires_action",
               "processing", "requires_capture", "canceled", "succeeded"}
DISPUTE_STATUSES = {"warning_needs_response", "warning_under_review", "warning_closed",
                    "needs_response", "under_review", "won", "lost", "prevented"}
DISPUTE_REASONS = {"bank_cannot_process", "check_returned", "credit_not_processed",
                   "customer_initiated", "debit_not_authorized", "duplicate", "fraudulent",
                   "general", "incorrect_account_details", "insufficient_funds", "noncompliant",
                   "product_not_received", "product_unacceptable", "subscription_canceled",
                   "unrecognized"}
REFUND_REASONS = {"duplicate", "fraudulent", "requested_by_customer"}
_EVIDENCE_FIELDS = ("access_activity_log", "billing_address", "cancellation_policy",
                    "cancellation_policy_disclosure", "cancellation_rebuttal",
                    "customer_communication", "customer_email_address", "customer_name",
                    "customer_purchase_ip", "customer_signature", "duplicate_charge_documentation",
                    "duplicate_charge_explanation", "duplicate_charge_id", "product_description",
                    "receipt", "refund_policy", "refund_policy_disclosure",
                    "refund_refusal_explanation", "service_date", "service_documentation",
                    "shipping_address", "shipping_carrier", "shipping_date",
                    "shipping_documentation", "shipping_tracking_number", "uncategorized_file",
                    "uncategorized_text")

_RECEIPTS = "https://pay.stripe.com/receipts/payment/"
_OUTCOME_OK = {"network_status": "approved_by_network", "reason": None, "risk_level": "normal",
               "seller_message": "Payment complete.", "type": "authorized"}
_OUTCOME_DECLINED = {"network_status": "declined_by_network", "reason": "generic_decline",
                     "risk_level": "normal", "type": "issuer_declined",
                     "seller_message": "The bank did not return any further details with "
                                       "this decline."}


def _ref(value: Any) -> str | None:
    return value["id"] if isinstance(value, dict) else value


class Account:
    """One Stripe account's data. ``id`` is None for the platform (requests without
    ``Stripe-Account``). Create through :meth:`StripeDouble.add_account`."""

    def __init__(self, account_id: str | None, lock: threading.RLock, *, mint: Minter | None = None,
                 clock: Callable[[], int] | None = None) -> None:
        self.id = account_id
        self._lock = lock
        self._mint = mint
        self._clock = clock
        self._objects: dict[str, dict[str, Any]] = {}
        self._seq: dict[str, int] = {}
        self._counter = itertools.count()

    def new_id(self, prefix: str, length: int = 24) -> str:
        """An id for a new object (or a field such as a balance transaction): seeded or random."""
        return self._mint(prefix, length) if self._mint is not None else new_id(prefix, length)

    def now(self) -> int:
        """The ``created`` of new objects: the account's clock (frozen for deterministic runs)."""
        return int(self._clock()) if self._clock is not None else int(time.time())

    def restore(self, obj: dict[str, Any], seq: int) -> None:
        """Put back a stored object with its list-order sequence number (store.py)."""
        self._objects[obj["id"]] = obj
        self._seq[obj["id"]] = seq
        self._counter = itertools.count(max(self._seq.values()) + 1)

    def all_objects(self) -> list[tuple[int, dict[str, Any]]]:
        """Every object with its sequence number, in creation order."""
        with self._lock:
            return sorted(((self._seq[i], o) for i, o in self._objects.items()), key=lambda x: x[0])

    def __repr__(self) -> str:
        return f"<Account {self.id or '(platform)'}: {len(self._objects)} objects>"

    # ----------------------------------------------------------------- lookup
    def get(self, obj_id: str, kind: str | None = None) -> dict[str, Any] | None:
        """The live stored object (or None); with ``kind`` only an object of that type."""
        with self._lock:
            obj = self._objects.get(obj_id)
            if obj is not None and kind is not None and obj.get("object") != kind:
                return None
            return obj

    def objects(self, kind: str) -> list[dict[str, Any]]:
        """Live objects of one type, newest first (Stripe's list order)."""
        with self._lock:
            found = [o for o in self._objects.values() if o.get("object") == kind]
            return sorted(found, key=self.sort_key, reverse=True)

    def sort_key(self, obj: dict[str, Any]) -> tuple[int, int]:
        return (int(obj.get("created") or 0), self._seq.get(obj["id"], -1))

    def _add(self, obj: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
        obj.update(extra)
        kind = obj["object"]
        if not obj["id"].startswith(KIND_PREFIXES[kind]):
            raise ValueError(f"a {kind} id must start with {KIND_PREFIXES[kind]}: {obj['id']!r}")
        if obj["id"] in self._objects:
            raise ValueError(f"{obj['id']} already exists in account {self.id}")
        self._objects[obj["id"]] = obj
        self._seq[obj["id"]] = next(self._counter)
        return obj

    def _need(self, ref: Any, kind: str) -> dict[str, Any]:
        obj = self.get(_ref(ref), kind)
        if obj is None:
            raise ValueError(f"no {kind} {_ref(ref)!r} seeded in account {self.id}")
        return obj

    # ----------------------------------------------------------------- seeding
    def customer(self, id: str | None = None, *, email: str | None = None,
                 name: str | None = None, phone: str | None = None,
                 description: str | None = None, created: int | None = None,
                 metadata: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
        with self._lock:
            cid = id or self.new_id("cus", 14)
            obj = {
                "id": cid, "object": "customer", "address": None, "balance": 0,
                "created": created or self.now(), "currency": None,
                "default_source": None, "delinquent": False, "description": description,
                "discount": None, "email": email, "invoice_prefix": cid[4:12].upper(),
                "invoice_settings": {"custom_fields": None, "default_payment_method": None,
                                     "footer": None, "rendering_options": None},
                "livemode": False, "metadata": dict(metadata or {}), "name": name,
                "next_invoice_sequence": 1, "phone": phone, "preferred_locales": [],
                "shipping": None, "tax_exempt": "none", "test_clock": None,
            }
            return self._add(obj, extra)

    def charge(self, id: str | None = None, *, amount: int = 1000, currency: str = "usd",
               status: str = "succeeded", customer: Any = None, payment_intent: Any = None,
               receipt_url: str | None = None, refunded: bool | None = None,
               amount_refunded: int = 0, disputed: bool = False, created: int | None = None,
               description: str | None = None, metadata: dict[str, str] | None = None,
               failure_code: str | None = None, failure_message: str | None = None,
               **extra: Any) -> dict[str, Any]:
        if status not in CHARGE_STATUSES:
            raise ValueError(f"charge status must be one of {sorted(CHARGE_STATUSES)}")
        with self._lock:
            cus = self._need(customer, "customer") if customer else None
            pi = self._need(payment_intent, "payment_intent") if payment_intent else None
            if refunded and not amount_refunded:
                amount_refunded = amount
            ok = status == "succeeded"
            if status == "failed":
                failure_code = failure_code or "card_declined"
                failure_message = failure_message or "Your card was declined."
            chid = id or self.new_id("ch")
            obj = {
                "id": chid, "object": "charge", "amount": amount,
                "amount_captured": amount if ok else 0, "amount_refunded": amount_refunded,
                "application": None, "application_fee": None, "application_fee_amount": None,
                "balance_transaction": self.new_id("txn") if ok else None,
                "billing_details": {"address": None, "email": cus["email"] if cus else None,
                                    "name": cus["name"] if cus else None, "phone": None},
                "calculated_statement_descriptor": "SUPPORT MCP", "captured": ok,
                "created": created or self.now(), "currency": currency,
                "customer": cus["id"] if cus else None, "description": description,
                "disputed": disputed, "failure_balance_transaction": None,
                "failure_code": failure_code, "failure_message": failure_message,
                "fraud_details": {}, "livemode": False, "metadata": dict(metadata or {}),
                "on_behalf_of": None,
                "outcome": dict(_OUTCOME_OK if ok else _OUTCOME_DECLINED),
                "paid": ok, "payment_intent": pi["id"] if pi else None,
                "payment_method": self.new_id("pm"),
                "payment_method_details": {"type": "card", "card": {
                    "brand": "visa", "country": "US", "exp_month": 12, "exp_year": 2030,
                    "funding": "credit", "last4": "4242", "network": "visa"}},
                "receipt_email": cus["email"] if cus else None, "receipt_number": None,
                "receipt_url": receipt_url or _RECEIPTS + self.new_id("CAcQARoX", 40),
                "refunded": (bool(refunded) if refunded is not None
                             else amount_refunded >= amount > 0),
                "review": None, "shipping": None, "source_transfer": None,
                "statement_descriptor": None, "statement_descriptor_suffix": None,
                "status": status, "transfer_data": None, "transfer_group": None,
            }
            self._add(obj, extra)
            if pi is not None:
                pi["latest_charge"] = chid
            return obj

    def payment_intent(self, id: str | None = None, *, amount: int = 1000,
                       currency: str = "usd", status: str = "succeeded", customer: Any = None,
                       latest_charge: Any = None, description: str | None = None,
                       created: int | None = None, metadata: dict[str, str] | None = None,
                       seed_charge: bool = True, **extra: Any) -> dict[str, Any]:
        """A PaymentIntent. ``status="succeeded"`` without ``latest_charge`` also seeds its
        succeeded charge (unless ``seed_charge`` is False: a charge naming it later links
        itself); an existing charge passed as ``latest_charge`` gets linked."""
        if status not in PI_STATUSES:
            raise ValueError(f"payment intent status must be one of {sorted(PI_STATUSES)}")
        with self._lock:
            cus = self._need(customer, "customer") if customer else None
            ch = self._need(latest_charge, "charge") if latest_charge else None
            piid = id or self.new_id("pi")
            obj = {
                "id": piid, "object": "payment_intent", "amount": amount,
                "amount_capturable": 0, "amount_details": {"tip": {}},
                "amount_received": amount if status == "succeeded" else 0,
                "application": None, "application_fee_amount": None,
                "automatic_payment_methods": {"allow_redirects": "always", "enabled": True},
                "canceled_at": None, "cancellation_reason": None,
                "capture_method": "automatic_async",
                "client_secret": f"{piid}_secret_{self.new_id('x', 25)[2:]}",
                "confirmation_method": "automatic", "created": created or self.now(),
                "currency": currency, "customer": cus["id"] if cus else None,
                "description": description, "last_payment_error": None,
                "latest_charge": ch["id"] if ch else None, "livemode": False,
                "metadata": dict(metadata or {}), "next_action": None, "on_behalf_of": None,
                "payment_method": ch["payment_method"] if ch else None,
                "payment_method_configuration_details": None, "payment_method_options": {},
                "payment_method_types": ["card"], "processing": None, "receipt_email": None,
                "review": None, "setup_future_usage": None, "shipping": None,
                "statement_descriptor": None, "statement_descriptor_suffix": None,
                "status": status, "transfer_data": None, "transfer_group": None,
            }
            self._add(obj, extra)
            if ch is not None:
                ch["payment_intent"] = piid
            elif status == "succeeded" and seed_charge:
                self.charge(amount=amount, currency=currency, customer=cus, payment_intent=obj,
                            created=obj["created"], description=description)
            return obj

    def dispute(self, id: str | None = None, *, charge: Any, amount: int | None = None,
                status: str = "needs_response", reason: str = "general",
                created: int | None = None, metadata: dict[str, str] | None = None,
                **extra: Any) -> dict[str, Any]:
        """A dispute on ``charge`` (marks the charge ``disputed``)."""
        if status not in DISPUTE_STATUSES:
            raise ValueError(f"dispute status must be one of {sorted(DISPUTE_STATUSES)}")
        if reason not in DISPUTE_REASONS:
            raise ValueError(f"dispute reason must be one of {sorted(DISPUTE_REASONS)}")
        with self._lock:
            ch = self._need(charge, "charge")
            created = created or self.now()
            obj = {
                "id": id or self.new_id("dp"), "object": "dispute",
                "amount": ch["amount"] if amount is None else amount,
                "balance_transactions": [], "charge": ch["id"], "created": created,
                "currency": ch["currency"],
                "evidence": {f: None for f in _EVIDENCE_FIELDS},
                "evidence_details": {"due_by": created + 7 * 86400, "has_evidence": False,
                                     "past_due": False, "submission_count": 0},
                "is_charge_refundable": status.startswith("warning_"), "livemode": False,
                "metadata": dict(metadata or {}), "payment_intent": ch["payment_intent"],
                "payment_method_details": {"card": {"brand": "visa", "network_reason_code": "4853"},
                                           "type": "card"},
                "reason": reason, "status": status,
            }
            self._add(obj, extra)
            ch["disputed"] = True
            return obj

    def refund(self, charge: Any, *, amount: int | None = None, reason: str | None = None,
               metadata: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
        """Seed a succeeded refund of ``charge`` (updates its amount_refunded/refunded)."""
        with self._lock:
            ch = self._need(charge, "charge")
            remaining = ch["amount"] - ch["amount_refunded"]
            amount = remaining if amount is None else amount
            if not 0 < amount <= remaining:
                raise ValueError(f"cannot refund {amount} of {ch['id']} ({remaining} left)")
            return self.create_refund(ch, amount, reason, metadata or {}, extra)

    def create_refund(self, ch: dict[str, Any], amount: int, reason: str | None,
                      metadata: dict[str, str], extra: dict[str, Any] | None = None
                      ) -> dict[str, Any]:
        """Book a refund against a (validated) charge; used by the API and by :meth:`refund`."""
        obj = {
            "id": self.new_id("re"), "object": "refund", "amount": amount,
            "balance_transaction": self.new_id("txn"), "charge": ch["id"],
            "created": self.now(), "currency": ch["currency"],
            "destination_details": {"card": {"reference_status": "pending", "type": "refund"},
                                    "type": "card"},
            "metadata": dict(metadata), "payment_intent": ch["payment_intent"],
            "reason": reason, "receipt_number": None, "source_transfer_reversal": None,
            "status": "succeeded", "transfer_reversal": None,
        }
        self._add(obj, extra or {})
        ch["amount_refunded"] += amount
        ch["refunded"] = ch["amount_refunded"] >= ch["amount"]
        return obj

    def snapshot(self, obj: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(obj)
