"""POST /webhooks/stripe/{slug}: Stripe events of a tenant's connected account.

Order of checks: body size, then the signature with *that tenant's* secret (unknown tenants,
tenants without a secret and bad signatures all answer the same 400, so the endpoint does not
reveal which tenants exist), then the JSON shape, then `event.account` against the tenant's
connected account. The event is stored (unique id: a replay stores nothing new) before it
is processed; processing runs in its own transaction, and a failure leaves the event
unprocessed and answers 500 so Stripe delivers it again (and the next delivery for the
tenant, or `support-mcp stripe retry`, retries it too).

Bodies that can never be processed never loop: not an event (bad JSON, too deep) -> 400; an
event of this account with unstorable values or an absurd timestamp -> kept in quarantine, 200
(see webhook_body); an event whose processing failed stripe_webhook_max_attempts times -> 200,
kept unprocessed. A database outage answers 503 with Retry-After.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

import stripe
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse

from ..db import Database, queries
from ..errors import InvalidInput, NotConnected, NotFound, SupportError, TenantUnavailable, UpstreamUnavailable
from ..logging import get_logger
from . import events, webhook_body
from .gateway import StripeGateway, TenantAccount

if TYPE_CHECKING:
    from ..settings import Settings

log = get_logger(__name__)

_DUMMY_SECRET = "whsec_" + "0" * 32  # verify anyway for unknown tenants: same work, same answer
_SWEEP_BATCH = 20


def _answer(status: int, **body: Any) -> JSONResponse:
    headers = {"Retry-After": str(UpstreamUnavailable.retry_after)} if status == 503 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _unavailable(slug: str, exc: SupportError) -> JSONResponse:
    log.warning("webhook_database_unavailable", tenant=slug[:40], error=str(exc))
    return _answer(503, error="the database is unavailable; deliver again later")


def _why(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, SupportError) else f"{type(exc).__name__} (see the server log)"


class TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _signed_at(header: str) -> int:
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            return int(value)
    return 0


class WebhookReceiver:
    def __init__(self, settings: Settings, db: Database, gateway: StripeGateway) -> None:
        self.settings, self.db, self.gateway = settings, db, gateway
        self._pending: set[str] = set()  # tenants with an event whose processing failed
        self._sweeping: set[str] = set()

    async def __call__(self, request: Request) -> JSONResponse:
        slug = request.path_params.get("slug", "")
        try:
            body = await _read_body(request, self.settings.stripe_webhook_max_bytes)
        except TooLarge:
            return _answer(413, error=f"body larger than {self.settings.stripe_webhook_max_bytes} bytes")
        try:
            acct = await self.gateway.registry(slug)
        except InvalidInput:
            acct = None
        except UpstreamUnavailable as exc:
            return _unavailable(slug, exc)
        tolerance = self.settings.stripe_webhook_tolerance_seconds
        secret = acct.webhook_secret if acct is not None and acct.webhook_secret else None
        try:
            stripe.WebhookSignature.verify_header(body, request.headers.get("stripe-signature"),
                                                  secret or _DUMMY_SECRET,
                                                  tolerance)
            if secret is None:
                raise stripe.SignatureVerificationError("no secret", None)
            if _signed_at(request.headers.get("stripe-signature", "")) > time.time() + tolerance:
                raise stripe.SignatureVerificationError("timestamp in the future", None)  # the SDK checks the past only
        except (stripe.SignatureVerificationError, UnicodeDecodeError) as exc:
            log.warning("webhook_refused", tenant=slug[:40], why=str(exc)[:120] if secret else "unknown tenant or no secret")
            return _answer(400, error="signature verification failed")
        assert acct is not None
        try:
            event = webhook_body.parse(body)
        except InvalidInput as exc:
            log.warning("webhook_unparseable", tenant=slug, error=str(exc))
            return _answer(400, error=str(exc))
        if acct.account_id is None or event.get("account") != acct.account_id:
            log.warning("webhook_wrong_account", tenant=slug, event_id=event["id"])
            return _answer(400, error="the event is not from this tenant's connected Stripe account")
        if acct.status != "active":
            return _answer(503, error="tenant is suspended; deliver again later")
        reason = webhook_body.quarantine_reason(event)
        if reason is not None:
            return await self._quarantine(acct, event, body, reason)
        quick = event["type"] not in events.NEEDS_STRIPE  # store and apply in one transaction
        try:
            if quick:
                stored, outcome, failure = await self._store_and_apply(acct, event)
            else:
                stored, outcome, failure = await self._store(acct, event), None, None
        except InvalidInput as exc:  # PostgreSQL refused a value: no redelivery can change that
            return await self._quarantine(acct, event, body, f"not storable: {exc}")
        except SupportError as exc:
            log.warning("webhook_store_failed", tenant=slug, event_id=event["id"], error=str(exc))
            return _answer(503, error="could not store the event; deliver again later")
        if stored["processed_at"] is not None:
            return _answer(200, received=True, duplicate=True, outcome=stored["outcome"])
        if not quick:
            try:
                outcome = await self.process(acct, event)
            except Exception as exc:  # noqa: BLE001 - stored; marked unprocessed and retried
                failure = exc
                await self._mark_failed(acct.slug, event["id"], exc)
        if failure is not None:
            attempts = (stored["attempts"] or 0) + 1
            if attempts >= self.settings.stripe_webhook_max_attempts:  # retries stop, Stripe's too
                log.error("webhook_gave_up", tenant=slug, event_id=event["id"], attempts=attempts)
                return _answer(200, received=True, gave_up=True, error=f"processing failed {attempts} times; "
                               "kept unprocessed for an operator (support-mcp stripe quarantine / retry)")
            return _answer(500, error="stored, but processing failed; it will be retried")
        task = BackgroundTask(self.sweep, acct) if slug in self._pending and slug not in self._sweeping else None
        return JSONResponse({"received": True, "duplicate": not stored["inserted"], "outcome": outcome},
                            background=task)

    async def _quarantine(self, acct: TenantAccount, event: dict[str, Any], body: bytes, reason: str) -> JSONResponse:
        """Keep an event that can never be stored or processed verbatim, and answer 200 (see webhook_body)."""
        try:
            async with self.db.tenant_scope(acct.slug) as s:
                row = await queries.quarantine_event(
                    s.conn, event_id=event["id"], type=webhook_body.printable(event["type"], 400),
                    reason=reason[:500], body=body, body_sha256=hashlib.sha256(body).digest())
        except SupportError as exc:
            log.warning("webhook_store_failed", tenant=acct.slug, event_id=event["id"], error=str(exc))
            return _answer(503, error="could not store the event; deliver again later")
        log.warning("webhook_quarantined", tenant=acct.slug, event_id=event["id"], reason=reason)
        return _answer(200, received=True, quarantined=True, duplicate=not row["inserted"],
                       reason=f"{reason}; kept for an operator (support-mcp stripe quarantine)")

    async def _store(self, acct: TenantAccount, event: dict[str, Any]) -> Any:
        async with self.db.tenant_scope(acct.slug) as s:
            return await self._insert(s.conn, event)

    @staticmethod
    async def _insert(conn: Any, event: dict[str, Any]) -> Any:
        return await queries.store_event(conn, id=event["id"], type=event["type"], account=event["account"],
                                         created=event["created"], payload=event)

    async def _store_and_apply(self, acct: TenantAccount, event: dict[str, Any]
                               ) -> tuple[Any, str | None, BaseException | None]:
        """Events that need nothing from Stripe: one transaction. The upsert row-locks the event
        (a concurrent delivery waits, then sees it processed); processing runs in a savepoint,
        so a failure keeps the stored event, marked unprocessed."""
        async with self.db.tenant_scope(acct.slug) as s:
            stored = await self._insert(s.conn, event)
            if stored["processed_at"] is not None:
                return stored, None, None
            try:
                async with s.conn.transaction():
                    outcome = await events.apply(s.conn, event, None)
                    await queries.mark_processed(s.conn, id=event["id"], outcome=outcome)
            except Exception as exc:  # noqa: BLE001
                await queries.mark_failed(s.conn, id=event["id"], error=_why(exc))
                self._note_failure(acct.slug, event["id"], exc)
                return stored, None, exc
        log.info("webhook_processed", tenant=acct.slug, event_id=event["id"], type=event["type"], outcome=outcome)
        return stored, outcome, None

    async def process(self, acct: TenantAccount, event: dict[str, Any]) -> str:
        payer = None
        if event["type"] in events.NEEDS_STRIPE:  # through the Stripe scoping point, like the tools
            payer = await events.prepare(await self.gateway.for_tenant(acct.slug), event)
        async with self.db.tenant_scope(acct.slug) as s:
            if await queries.claim_event(s.conn, id=event["id"]) is None:
                return "already processed"
            outcome = await events.apply(s.conn, event, payer)
            await queries.mark_processed(s.conn, id=event["id"], outcome=outcome)
        log.info("webhook_processed", tenant=acct.slug, event_id=event["id"], type=event["type"], outcome=outcome)
        return outcome

    def _note_failure(self, slug: str, event_id: str, exc: BaseException) -> None:
        log.error("webhook_processing_failed", tenant=slug, event_id=event_id, error=_why(exc),
                  exc_info=(type(exc), exc, exc.__traceback__) if not isinstance(exc, SupportError) else False)
        self._pending.add(slug)

    async def _mark_failed(self, slug: str, event_id: str, exc: BaseException) -> None:
        """Record a failure of the two-transaction path in its own transaction."""
        self._note_failure(slug, event_id, exc)
        try:
            async with self.db.tenant_scope(slug) as s:
                await queries.mark_failed(s.conn, id=event_id, error=_why(exc))
        except SupportError as exc2:
            log.error("webhook_mark_failed_failed", tenant=slug, event_id=event_id, error=str(exc2))

    async def sweep(self, acct: TenantAccount, *, max_attempts: int | None = None) -> tuple[int, int]:
        """Retry a tenant's unprocessed events (oldest first). Returns (processed, failed)."""
        self._sweeping.add(acct.slug)
        done = failed = 0
        try:
            limit = max_attempts if max_attempts is not None else self.settings.stripe_webhook_max_attempts
            async with self.db.tenant_scope(acct.slug) as s:
                batch = [r["payload"] async for r in queries.unprocessed_events(
                    s.conn, max_attempts=limit, limit=_SWEEP_BATCH)]
            for event in batch:
                try:
                    await self.process(acct, event)
                    done += 1
                except Exception as exc:  # noqa: BLE001
                    failed += 1
                    await self._mark_failed(acct.slug, event["id"], exc)
            if failed == 0 and len(batch) < _SWEEP_BATCH:
                self._pending.discard(acct.slug)
        finally:
            self._sweeping.discard(acct.slug)
        return done, failed


async def retry_all(settings: Settings, db: Database, slugs: list[str], *, max_attempts: int) -> dict[str, tuple[int, int]]:
    """`support-mcp stripe retry`: sweep the given tenants' unprocessed events."""
    gateway = StripeGateway(settings, db)
    receiver = WebhookReceiver(settings, db, gateway)
    out: dict[str, tuple[int, int]] = {}
    try:
        for slug in slugs:
            try:
                acct = await gateway.account(slug)
            except (NotFound, TenantUnavailable, NotConnected):
                continue
            while True:
                done, failed = await receiver.sweep(acct, max_attempts=max_attempts)
                prev = out.get(slug, (0, 0))
                out[slug] = (prev[0] + done, prev[1] + failed)
                if failed or done < _SWEEP_BATCH:
                    break
    finally:
        await gateway.close()
    return out
