"""The long-lived objects a server shares across calls and sessions (the lifespan context),
and how the caller of a request is determined."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from mcp.server.auth.middleware.auth_context import get_access_token
from pydantic import SecretStr

from . import audit_retention
from .access import Principal
from .audit import AuditWriter
from .db import Database
from .errors import NotPermitted, RateLimited
from .kb.service import KnowledgeBase
from .payments.gateway import StripeGateway
from .keys import KeyVerifier
from .oauth.verifier import principal_of
from .metrics import Metrics
from .ratelimit import build_limiter
from .settings import Settings

AuthMode = Literal["operator", "api_key", "bearer"]


@dataclass
class App:
    settings: Settings
    db: Database
    auth_mode: AuthMode = "operator"
    principal: Principal | None = None  # operator mode: from --tenant / --all-tenants
    api_key: SecretStr | None = None  # api_key mode (stdio): SUPPORT_MCP_API_KEY
    read_only: bool = False
    owns_db: bool = True
    started_at: float = field(default_factory=time.monotonic)
    verifier: KeyVerifier = field(init=False)
    audit: AuditWriter = field(init=False)
    stripe: StripeGateway = field(init=False)
    webhooks: Any = None  # payments.webhooks.WebhookReceiver, set by build_server
    oauth: Any = None  # oauth.verifier.OAuthVerifier when SUPPORT_MCP_OAUTH_ISSUER is set, set by build_server
    kb: KnowledgeBase | None = None  # built from settings unless given (tests share one)
    metrics: Metrics | None = field(init=False, default=None)  # SUPPORT_MCP_METRICS=on
    sandbox: Any = field(init=False, default=None)  # stripe_sandbox.listener.SandboxListener (SUPPORT_MCP_STRIPE_SANDBOX=on)
    _users: int = 0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.verifier = KeyVerifier(self.db, ttl=self.settings.cache_seconds)
        self._owns_kb = self.kb is None
        if self.kb is None:
            self.kb = KnowledgeBase(self.settings, self.db)
        self.stripe = StripeGateway(self.settings, self.db)
        s = self.settings
        self.audit = AuditWriter(self.db, interval=s.audit_flush_seconds, max_buffer=s.audit_buffer_rows,
                                 batch_rows=s.audit_batch_rows, stop_seconds=s.audit_stop_seconds,
                                 backoff_max=s.audit_backoff_max_seconds)
        self.audit.on_flush.append(self.verifier.flush_used)
        if s.audit_retention_days > 0:
            async def prune_audit() -> None:  # as the admin; a server given only the app URL skips it
                if self.db.admin_pool is None:
                    return
                await audit_retention.prune(self.db, s.audit_retention_days)

            self.audit.periodic.append((s.audit_prune_interval_seconds, prune_audit))
        self._limiter = build_limiter(self.settings, self.db)  # shared across processes (db or Redis)
        if s.metrics:
            self.metrics = Metrics(self)

    async def resolve_principal(self) -> Principal:
        """Who is calling: the operator flags, the stdio API key, or the HTTP bearer key."""
        if self.auth_mode == "operator":
            assert self.principal is not None
            return self.principal
        if self.auth_mode == "api_key":
            assert self.api_key is not None
            return await self.verifier.principal(self.api_key.get_secret_value())
        token = get_access_token()
        if token is None:
            raise NotPermitted("missing bearer token")
        oauth = principal_of(token)  # an OAuth access token, verified by the auth middleware
        return oauth if oauth is not None else await self.verifier.principal(token.token)

    async def check_rate(self, principal: Principal) -> None:
        if self._limiter is None or principal.key_id is None:
            return
        retry_in = await self._limiter.hit(str(principal.key_id))
        if retry_in is not None:
            raise RateLimited(
                f"slow down: this key is limited to {self.settings.rate_limit_per_minute} calls per minute; "
                f"retry in {max(1, round(retry_in))} s"
            )

    @asynccontextmanager
    async def lifespan(self, _server: object) -> AsyncIterator[App]:
        """Start shared clients once, however many sessions (SSE opens one per client) enter."""
        async with self._lock:
            if self._users == 0:
                if self.owns_db:
                    await self.db.start()
                if self.settings.stripe_sandbox:  # SUPPORT_MCP_STRIPE_SANDBOX=on only: never otherwise
                    from .stripe_sandbox.listener import start_sandbox  # noqa: PLC0415 - uvicorn only when asked

                    try:
                        self.sandbox = await start_sandbox(self.db, self.stripe)
                    except BaseException:
                        if self.owns_db:
                            await self.db.close()
                        raise
                await self.audit.start()
                if self.metrics is not None:
                    await self.metrics.learn_names()
                if self.settings.kb_rerank and self.kb is not None:
                    await self.kb.reranker()  # at start: a missing or corrupted reranker is logged now
            self._users += 1
        try:
            yield self
        finally:
            async with self._lock:
                self._users -= 1
                if self._users == 0:
                    await self.audit.stop()
                    if self._limiter is not None:
                        await self._limiter.close()
                    await self.stripe.close()
                    if self.sandbox is not None:
                        await self.sandbox.stop()
                        self.sandbox = None
                    if self.oauth is not None:
                        await self.oauth.close()
                    if self._owns_kb and self.kb is not None:
                        await self.kb.close()
                    if self.owns_db:
                        await self.db.close()
