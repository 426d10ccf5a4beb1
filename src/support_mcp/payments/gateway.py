"""THE Stripe wrapper and its scoping point.

One `stripe.StripeClient` per process, built from the platform key; nothing sets the SDK's
process-global key. `StripeGateway.for_tenant(slug)` resolves the tenant's connected account
from the registry and returns a `TenantStripe`, whose every call sends that account as
`Stripe-Account`. There is no other way to reach Stripe from this package.

An episode tenant whose connected account is a Stripe sandbox account (the registry says so,
sql/global/0011) is served by this process's sandbox (`use_sandbox`: a server started with
SUPPORT_MCP_STRIPE_SANDBOX=on), never by Stripe; any other tenant never by the sandbox.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import stripe

from ..db import Database, queries, validate_slug
from ..errors import (
    Conflict,
    InvalidInput,
    NotConnected,
    NotFound,
    RateLimited,
    SupportError,
    TenantUnavailable,
    UpstreamUnavailable,
)
from ..logging import get_logger
from ..settings import Settings

log = get_logger(__name__)


@dataclass(frozen=True)
class TenantAccount:
    """A tenant's Stripe Connect facts from the registry."""

    slug: str
    tenant_id: UUID
    status: str
    account_id: str | None
    webhook_secret: str | None
    sandbox: bool = False  # the account is the tenant's Stripe sandbox account (an episode's)


class StripeGateway:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings, self.db = settings, db
        self._client: stripe.StripeClient | None = None
        self._http: stripe.HTTPXClient | None = None
        self._accounts: dict[str, tuple[float, TenantAccount | None]] = {}
        self._sandbox: stripe.StripeClient | None = None
        self._sandbox_http: stripe.HTTPXClient | None = None

    def use_sandbox(self, base_url: str, api_key: str) -> None:
        """Serve sandbox tenants from the Stripe sandbox at `base_url` (stripe_sandbox.listener)."""
        s = self.settings
        self._sandbox_http = stripe.HTTPXClient(timeout=s.stripe_timeout_seconds)
        self._sandbox = stripe.StripeClient(api_key, base_addresses={"api": base_url},
                                            max_network_retries=0, http_client=self._sandbox_http)

    @property
    def configured(self) -> bool:
        return self.settings.stripe_api_key is not None

    def client(self) -> stripe.StripeClient:
        if self._client is None:
            key = self.settings.stripe_api_key
            if key is None:
                raise NotConnected("Stripe is not configured on this server: an operator must set "
                                   "SUPPORT_MCP_STRIPE_API_KEY")
            s = self.settings
            self._http = stripe.HTTPXClient(timeout=s.stripe_timeout_seconds)
            self._client = stripe.StripeClient(
                key.get_secret_value(), base_addresses={"api": s.stripe_api_base.rstrip("/")},
                max_network_retries=s.stripe_max_network_retries, http_client=self._http)
        return self._client

    @property
    def sandbox_on(self) -> bool:
        return self._sandbox is not None

    async def close(self) -> None:
        for http in (self._http, self._sandbox_http):
            if http is not None:
                await http.close_async()
        self._client = self._http = self._sandbox = self._sandbox_http = None

    async def account(self, slug: str) -> TenantAccount:
        """The registry row (cached for stripe_cache_seconds); unknown/suspended tenants refused."""
        acct = await self.registry(slug)
        if acct is None:
            raise NotFound(f"unknown tenant '{slug}'")
        if acct.status != "active":
            raise TenantUnavailable(f"tenant '{slug}' is suspended; ask an operator to resume it")
        return acct

    async def registry(self, slug: str) -> TenantAccount | None:
        """The tenant's registry facts, or None for an unknown tenant (cached)."""
        validate_slug(slug)
        now = time.monotonic()
        hit = self._accounts.get(slug)
        if hit is None or hit[0] < now:
            async with self.db.connection() as conn:
                row = await queries.get_tenant_stripe(conn, slug=slug)
            acct = None if row is None else TenantAccount(slug, row["id"], row["status"], row["stripe_account_id"],
                                                          row["stripe_webhook_secret"], row["sandbox"])
            if len(self._accounts) > 10_000:
                self._accounts.clear()
            hit = self._accounts[slug] = (now + self.settings.stripe_cache_seconds, acct)
        return hit[1]

    async def for_tenant(self, slug: str) -> TenantStripe:
        """The tenant's connected account. The caller must already be authorized for `slug`."""
        acct = await self.account(slug)
        if acct.account_id is None:
            raise NotConnected(f"Stripe is not connected for tenant '{slug}': an operator must set its "
                               "connected account (support-mcp stripe connect)")
        if acct.sandbox:
            if self._sandbox is None:
                raise NotConnected(f"tenant '{slug}' uses the Stripe sandbox, which is off on this server: an "
                                   "operator must start it with SUPPORT_MCP_STRIPE_SANDBOX=on (serve --stripe-sandbox)")
            return TenantStripe(self._sandbox, acct, self.settings.stripe_timeout_seconds)
        return TenantStripe(self.client(), acct, self.settings.stripe_timeout_seconds)


class TenantStripe:
    """One tenant's connected account. Every request carries `stripe_account`."""

    def __init__(self, client: stripe.StripeClient, account: TenantAccount, timeout: float) -> None:
        self._v1, self.account, self._timeout = client.v1, account, timeout

    @property
    def slug(self) -> str:
        return self.account.slug

    def _options(self, idempotency_key: str | None = None) -> Any:
        options: dict[str, Any] = {"stripe_account": self.account.account_id}
        if idempotency_key is not None:
            options["idempotency_key"] = idempotency_key
        return options

    async def _send(self, what: str, coro: Any) -> Any:
        """Await one SDK call; its errors become SupportErrors naming `what`."""
        try:
            return await coro
        except stripe.StripeError as exc:
            raise map_error(exc, what, self.slug, self._timeout) from None

    async def _call(self, what: str, coro: Any) -> dict[str, Any]:
        return (await self._send(what, coro)).to_dict()

    async def retrieve_charge(self, charge_id: str, expand: list[str] | None = None) -> dict[str, Any]:
        return await self._call(f"charge {charge_id}", self._v1.charges.retrieve_async(
            charge_id, params={"expand": expand} if expand else None, options=self._options()))

    async def retrieve_payment_intent(self, pi_id: str) -> dict[str, Any]:
        return await self._call(f"payment intent {pi_id}", self._v1.payment_intents.retrieve_async(
            pi_id, options=self._options()))

    async def retrieve_customer(self, customer_id: str) -> dict[str, Any]:
        return await self._call(f"Stripe customer {customer_id}", self._v1.customers.retrieve_async(
            customer_id, options=self._options()))

    async def retrieve_refund(self, refund_id: str) -> dict[str, Any]:
        return await self._call(f"refund {refund_id}", self._v1.refunds.retrieve_async(
            refund_id, options=self._options()))

    async def list_charges(self, **params: Any) -> dict[str, Any]:
        return await self._call(_list_what("charges", params), self._v1.charges.list_async(
            params=_clean(params), options=self._options()))

    async def list_disputes(self, **params: Any) -> dict[str, Any]:
        return await self._call(_list_what("disputes", params), self._v1.disputes.list_async(
            params=_clean(params), options=self._options()))

    async def create_refund(self, *, idempotency_key: str, **params: Any) -> tuple[dict[str, Any], bool]:
        """(refund, replayed): replayed is True when Stripe answered from its idempotency store."""
        obj = await self._send(f"charge {params.get('charge')}", self._v1.refunds.create_async(
            params=_clean(params), options=self._options(idempotency_key)))
        response = obj.last_response
        replayed = bool(response and response.headers.get("idempotent-replayed") == "true")
        return obj.to_dict(), replayed


def _list_what(kind: str, params: dict[str, Any]) -> str:
    """What a list call names in a not-found error: the cursor or the customer it was given."""
    if params.get("starting_after"):
        return f"cursor {params['starting_after']}"
    if params.get("customer"):
        return f"Stripe customer {params['customer']}"
    return kind


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def map_error(exc: stripe.StripeError, what: str, slug: str, timeout: float) -> SupportError:
    """A Stripe SDK error as a one-line tool error (no key, no raw body)."""
    request = f" (Stripe request {exc.request_id})" if exc.request_id else ""
    code = exc.code or (exc.error.code if exc.error is not None else None)
    log.warning("stripe_error", error=type(exc).__name__, status=exc.http_status, code=code,
                request_id=exc.request_id, what=what)
    if isinstance(exc, stripe.RateLimitError) or code in ("rate_limit", "lock_timeout"):
        return RateLimited("Stripe is rate limiting requests right now; wait a few seconds and retry")
    if isinstance(exc, stripe.APIConnectionError):
        return UpstreamUnavailable(f"Stripe did not answer (network error or no reply within {timeout:g} s); "
                                   "retry shortly")
    if isinstance(exc, stripe.AuthenticationError):
        return UpstreamUnavailable("Stripe rejected the platform API key; an operator must check "
                                   "SUPPORT_MCP_STRIPE_API_KEY")
    if isinstance(exc, stripe.PermissionError):
        if code == "account_invalid":
            return UpstreamUnavailable(f"Stripe refused access to tenant '{slug}'s connected account (was the "
                                       "platform disconnected?); an operator must reconnect it")
        return UpstreamUnavailable(f"the platform API key may not access {what.split(' ')[0]}s (a restricted "
                                   f"key lacks this permission){request}")
    if isinstance(exc, stripe.CardError):
        return InvalidInput(f"card error: {_message(exc)}{request}")
    if isinstance(exc, stripe.IdempotencyError):
        return Conflict(f"Stripe saw this request's idempotency key with different parameters{request}")
    if isinstance(exc, stripe.InvalidRequestError):
        if code == "resource_missing" and exc.http_status == 404:
            return NotFound(f"{what} not found")
        return InvalidInput(f"Stripe refused the request: {_message(exc)}{request}")
    if isinstance(exc, stripe.APIError) or (exc.http_status or 0) >= 500:
        return UpstreamUnavailable(f"Stripe had an internal error{request}; retry shortly")
    return UpstreamUnavailable(f"Stripe call failed{request}; retry shortly")


def _message(exc: stripe.StripeError) -> str:
    text = exc.user_message or (exc.error.message if exc.error is not None else None) or "no details given"
    return " ".join(str(text).split())[:300]
