"""GET /metrics (Prometheus text format), scraped from a real HTTP server process."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from support_mcp.metrics import _webhook_outcome
from support_mcp.server import build_server
from starlette.responses import JSONResponse
from test_http_auth import bearer_client
from test_transports import http_server, server_env, text_of  # noqa: F401 - fixture re-export

TOKEN = "metrics-" + "x" * 32


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(http: httpx.AsyncClient, port: int, token: str | None = TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await http.get(f"http://127.0.0.1:{port}/metrics", headers=headers)


async def test_metrics_over_http(server_env, make_tenant, make_key, tmp_path: Path) -> None:
    a, hidden = await make_tenant("ma"), await make_tenant("mhide")
    key = await make_key(tenants=[a], scopes=["read"], name="m-reader")
    everything = await make_key(all_tenants=True, scopes=["read"], name="m-all")
    env = {**server_env, "SUPPORT_MCP_METRICS": "on", "SUPPORT_MCP_METRICS_TOKEN": TOKEN}
    async with http_server(env, tmp_path / "m.log", "--transport", "http") as (port, _), \
            httpx.AsyncClient(timeout=10) as http:
        # who may scrape: the metrics token or an all-tenant key; nobody else
        assert (await scrape(http, port, None)).status_code == 401
        assert (await scrape(http, port, key)).status_code == 401
        assert (await scrape(http, port, "wrong")).status_code == 401
        assert (await scrape(http, port, everything)).status_code == 200
        r = await scrape(http, port)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        before = r.text
        assert value(before, "support_mcp_db_pool_connections", pool="app", state="idle") >= 0
        assert ("support_mcp_audit_pending_rows", ()) in samples(before)
        assert ("support_mcp_kb_engine_started", ()) in samples(before)

        async with bearer_client(port, key) as c:
            for _ in range(3):
                assert not (await c.call_tool("list_tickets", {"tenant": a})).is_error
            r = await c.call_tool("list_tickets", {"tenant": hidden})  # not granted
            assert r.is_error
            r = await c.call_tool("create_ticket", {"tenant": a, "subject": "s", "description": "d",
                                                    "customer_email": "m@x.test"})
            assert r.is_error and "scope" in text_of(r)
            r = await c.call_tool(f"no_such_tool_{hidden}", {})  # a name the client made up
            assert r.is_error
        await http.post(f"http://127.0.0.1:{port}/mcp", json={}, headers={"Authorization": "Bearer smk_bad"})
        await http.post(f"http://127.0.0.1:{port}/mcp", json={})
        r = await http.post(f"http://127.0.0.1:{port}/webhooks/stripe/{a}", content=b"{}",
                            headers={"Stripe-Signature": "t=1,v1=00"})
        assert r.status_code == 400

        after = (await scrape(http, port)).text
    calls = "support_mcp_tool_calls_total"
    assert value(after, calls, tool="list_tickets", outcome="ok") - value(before, calls, tool="list_tickets",
                                                                          outcome="ok") == 3
    assert value(after, calls, tool="list_tickets", outcome="not_permitted") >= 1
    assert value(after, calls, tool="create_ticket", outcome="not_permitted") >= 1
    assert value(after, calls, tool="other", outcome="unknown_tool") >= 1  # never the name as sent
    assert value(after, "support_mcp_tool_call_duration_seconds_count", tool="list_tickets") >= 4
    assert value(after, "support_mcp_auth_failures_total", reason="insufficient_scope") >= 1
    assert value(after, "support_mcp_auth_failures_total", reason="invalid_token") >= 1
    assert value(after, "support_mcp_auth_failures_total", reason="missing_token") >= 2  # + the unauthorized scrape
    assert value(after, "support_mcp_webhook_events_total", outcome="refused") == 1
    assert value(after, "support_mcp_db_pool_connections", pool="app", state="idle") >= 1
    # no slug of any tenant, and no caller-chosen text, reaches the scrape while tenant labels are off
    assert a not in after and hidden not in after and "no_such_tool" not in after and "m-reader" not in after


async def test_tenant_label_only_when_enabled(server_env, make_tenant, make_key, tmp_path: Path) -> None:
    a, hidden = await make_tenant("mla"), await make_tenant("mlhide")
    key = await make_key(tenants=[a], scopes=["read"], name="ml-reader")
    env = {**server_env, "SUPPORT_MCP_METRICS": "on", "SUPPORT_MCP_METRICS_TOKEN": TOKEN,
           "SUPPORT_MCP_METRICS_TENANT_LABEL": "on"}
    async with http_server(env, tmp_path / "ml.log", "--transport", "http") as (port, _), \
            httpx.AsyncClient(timeout=10) as http:
        async with bearer_client(port, key) as c:
            assert not (await c.call_tool("list_tickets", {"tenant": a})).is_error
            assert (await c.call_tool("list_tickets", {"tenant": hidden})).is_error
            assert (await c.call_tool("list_tickets", {"tenant": "made-up-slug"})).is_error
        text = (await scrape(http, port)).text
    assert value(text, "support_mcp_tool_calls_total", tool="list_tickets", outcome="ok", tenant=a) == 1
    # a call refused before it reached a tenant carries no slug: not one a caller merely typed
    refused = [v for (name, labels), v in samples(text).items()
               if name == "support_mcp_tool_calls_total" and dict(labels)["outcome"] != "ok"]
    assert sum(refused) == 2 and all(("tenant", "") in labels for (name, labels) in samples(text)
                                     if name == "support_mcp_tool_calls_total" and ("outcome", "ok") not in labels)
    assert hidden not in text and "made-up-slug" not in text


async def test_metrics_off_by_default(settings) -> None:
    server = build_server(settings.model_copy(update={"metrics": False}), bearer=True)
    app = server.streamable_http_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        assert (await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).status_code == 404


async def test_each_server_has_its_own_registry(settings) -> None:
    # many servers in one process (tests, embedding): no clash in a global registry, no shared counts
    on = settings.model_copy(update={"metrics": True, "metrics_token": SecretStr(TOKEN)})
    apps = [build_server(on, bearer=True).streamable_http_app() for _ in range(2)]
    bodies = []
    for app in apps:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            assert (await http.get("/metrics")).status_code == 401
            r = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            assert r.status_code == 200
            bodies.append(r.text)
    # the first server counted its own unauthorized scrape; the second counts only its own
    assert all(value(b, "support_mcp_auth_failures_total", reason="missing_token") == 1 for b in bodies)


def test_webhook_outcomes() -> None:
    cases = [(JSONResponse({"received": True, "duplicate": False, "outcome": "x"}), "processed"),
             (JSONResponse({"received": True, "duplicate": True}), "duplicate"),
             (JSONResponse({"received": True, "quarantined": True}), "quarantined"),
             (JSONResponse({"received": True, "gave_up": True}), "gave_up"),
             (JSONResponse({"error": "e"}, status_code=400), "refused"),
             (JSONResponse({"error": "e"}, status_code=413), "too_large"),
             (JSONResponse({"error": "e"}, status_code=500), "failed"),
             (JSONResponse({"error": "e"}, status_code=503), "unavailable")]
    assert [_webhook_outcome(r) for r, _ in cases] == [o for _, o in cases]
