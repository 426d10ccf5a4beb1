"""Prometheus metrics (prometheus-client), one CollectorRegistry per App (tests build many
servers in one process), served at GET /metrics when SUPPORT_MCP_METRICS is on.

What is counted, and where: tool/resource/prompt requests by name and outcome, and their
latency, in the guard (the same place that writes the one audit row per request); auth failures
by reason at the HTTP layer (401/403 answers) and in the guard (a missing scope); webhook
deliveries by outcome at the webhook route. Pool, audit and knowledge-base gauges are read at
scrape time. Label values are bounded: a name the server does not know is counted as `other`,
never as the client sent it. No label carries tenant data; the tenant slug is a label only when
SUPPORT_MCP_METRICS_TENANT_LABEL is on, and then only for a call the guard let through into
a tenant the caller was granted (never a slug a caller merely typed).

Who may scrape: the holder of SUPPORT_MCP_METRICS_TOKEN, or an API key granted every tenant
(`keys create --all-tenants`), as `Authorization: Bearer ...`; a server started with operator
flags (loopback only) without a metrics token serves it to anyone who can reach the loopback.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import NotPermitted, UpstreamUnavailable

if TYPE_CHECKING:
    from .app import App

#: tool-call latency buckets, seconds (a cached read is ~1 ms, a Stripe refund ~1 s)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
OTHER = "other"
_KB_HEALTH_TIMEOUT = 1.0


class Metrics:
    def __init__(self, app: App) -> None:
        self.app = app
        self.tenant_label = app.settings.metrics_tenant_label
        self.registry = CollectorRegistry()
        labels = ["tool", "outcome", *(["tenant"] if self.tenant_label else [])]
        self.calls = Counter("support_mcp_tool_calls", "Guarded MCP requests (tools/call, resources/read, "
                             "prompts/get, resources/templates/list) by name and outcome.", labels,
                             registry=self.registry)
        self.latency = Histogram("support_mcp_tool_call_duration_seconds", "Time in the guard per guarded "
                                 "request (checks, the tool, the audit record).", ["tool"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.auth_failures = Counter("support_mcp_auth_failures", "Refused callers by reason.", ["reason"],
                                     registry=self.registry)
        self.webhooks = Counter("support_mcp_webhook_events", "Stripe webhook deliveries by outcome.",
                                ["outcome"], registry=self.registry)
        self.kb_up: float | None = None  # None: the engine has not been started by any call yet
        self.registry.register(_Gauges(self))
        ProcessCollector(registry=self.registry)
        self._known: frozenset[str] = frozenset()
        self.names: Callable[[], Awaitable[Iterable[str]]] | None = None  # set by build_server: the names it serves

    async def learn_names(self) -> None:
        """Read the names the server serves (the app's lifespan calls this once the server runs)."""
        if self.names is not None:
            self._known = frozenset(await self.names())

    # --- counting -------------------------------------------------------------------------
    def label(self, name: str) -> str:
        """A request name as a label: only names this server serves (bounded cardinality)."""
        return name if name in self._known else OTHER

    def call(self, name: str, outcome: str, seconds: float, tenant: str | None) -> None:
        tool = self.label(name)
        labels = [tool, outcome[:40]]
        if self.tenant_label:
            labels.append(tenant or "")
        self.calls.labels(*labels).inc()
        self.latency.labels(tool).observe(seconds)

    def auth_failure(self, reason: str) -> None:
        self.auth_failures.labels(reason).inc()

    def webhook(self, response: Response) -> Response:
        self.webhooks.labels(_webhook_outcome(response)).inc()
        return response

    # --- serving --------------------------------------------------------------------------
    async def endpoint(self, request: Request) -> Response:
        try:
            await self._authorize(request)
        except NotPermitted as exc:
            return JSONResponse({"error": "unauthorized", "error_description": str(exc)}, status_code=401,
                                headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        except UpstreamUnavailable as exc:
            return JSONResponse({"error": "temporarily_unavailable", "error_description": str(exc)},
                                status_code=503, headers={"Retry-After": str(UpstreamUnavailable.retry_after)})
        await self._probe_kb()
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    async def _authorize(self, request: Request) -> None:
        s, app = self.app.settings, self.app
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        expected = s.metrics_token.get_secret_value() if s.metrics_token else None
        if expected and token and hmac.compare_digest(token.encode(), expected.encode()):
            return
        if app.auth_mode == "operator" and expected is None:
            return  # operator flags: loopback only, nothing else is authenticated either
        if not token:
            raise NotPermitted("/metrics needs `Authorization: Bearer <metrics token or all-tenant API key>`")
        principal = await app.verifier.principal(token)  # NotPermitted for a forged, expired or revoked key
        if principal.tenants is not None:
            raise NotPermitted("/metrics needs the metrics token or an API key granted every tenant")

    async def _probe_kb(self) -> None:
        kb = self.app.kb
        index = getattr(kb, "_index", None)  # never start the engine for a scrape
        if index is None:
            self.kb_up = None
            return
        try:
            self.kb_up = 1.0 if await asyncio.wait_for(index.health(), _KB_HEALTH_TIMEOUT) == "ok" else 0.0
        except Exception:  # noqa: BLE001 - down, hung or broken: all mean "not up"
            self.kb_up = 0.0


class _Gauges:
    """Values read at scrape time: the pools, the audit writer, the knowledge-base engine."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        app = self.metrics.app
        pool = GaugeMetricFamily("support_mcp_db_pool_connections", "PostgreSQL pool connections by pool "
                                 "(app: the request path's role; admin: the owner's) and state.",
                                 labels=["pool", "state"])
        for name, p in (("app", app.db.pool), ("admin", app.db.admin_pool)):
            if p is not None:
                size, idle = p.get_size(), p.get_idle_size()
                pool.add_metric([name, "in_use"], size - idle)
                pool.add_metric([name, "idle"], idle)
        yield pool
        stats = app.audit.stats()
        yield GaugeMetricFamily("support_mcp_audit_pending_rows", "Audit rows waiting to be stored.",
                                value=stats["pending"])
        yield CounterMetricFamily("support_mcp_audit_dropped_rows", "Audit rows dropped because the buffer "
                                  "was full while the database could not take them.", value=stats["dropped"])
        yield CounterMetricFamily("support_mcp_audit_unstorable_rows", "Audit rows stored only minimally "
                                  "because the database refused them.", value=stats["unstorable"])
        yield GaugeMetricFamily("support_mcp_kb_engine_started", "1 once a call has started the knowledge-base "
                                "engine in this process.", value=0 if self.metrics.kb_up is None else 1)
        if self.metrics.kb_up is not None:
            yield GaugeMetricFamily("support_mcp_kb_engine_up", "1 if the knowledge-base engine answered its "
                                    "health check at this scrape, else 0.", value=self.metrics.kb_up)


def _webhook_outcome(response: Response) -> str:
    status = response.status_code
    if status == 200:
        try:
            body = json.loads(bytes(response.body))
        except ValueError:
            body = {}
        for key in ("gave_up", "quarantined", "duplicate"):
            if body.get(key):
                return key
        return "processed"
    return {400: "refused", 413: "too_large", 500: "failed", 503: "unavailable"}.get(status, "other")


class CountAuthFailures:
    """ASGI middleware: every 401/403 the HTTP layer answers is an auth failure; the reason is
    `missing_token` (no bearer header), `invalid_token` (one that did not verify) or
    `insufficient_scope` (403)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (401, 403):
                self.metrics.auth_failure(self._reason(scope, message["status"]))
            await send(message)

        await self.app(scope, receive, counting_send)

    @staticmethod
    def _reason(scope: Scope, status: int) -> str:
        if status == 403:
            return "insufficient_scope"
        for key, value in scope.get("headers", ()):
            if key == b"authorization" and value[:7].lower() == b"bearer " and value[7:].strip():
                return "invalid_token"
        return "missing_token"
