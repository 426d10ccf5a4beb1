"""OAuth 2.1 resource server end to end: a real authorization server (npm oidc-provider, started
here), a real `serve --transport http` process, the real MCP client over HTTP."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import re
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from oauth_provider import KID, authorization_server
from test_transports import SERVE, free_port, server_env, stop, tail, wait_healthy  # noqa: F401 - fixture

JSON_SSE = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def text_of(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


def bearer_client(port: int, token: str) -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http))


@contextlib.asynccontextmanager
async def serve_on(env: dict[str, str], log: Path, port: int, *args: str) -> AsyncIterator[int]:
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(*SERVE, "--transport", "http", "--port", str(port), *args,
                                                    env=env, stdin=asyncio.subprocess.DEVNULL, stdout=out,
                                                    stderr=asyncio.subprocess.STDOUT)
    try:
        await wait_healthy(proc, port, log)
        yield port
    finally:
        await stop(proc)
    assert proc.returncode == 0, f"no graceful shutdown (exit {proc.returncode}):\n{tail(log)}"


async def post(http: httpx.AsyncClient, port: int, token: str | None, body: dict[str, Any] = INIT,
               **headers: str) -> httpx.Response:
    auth = {"Authorization": token} if token is not None and token.startswith(("Bearer", "Basic", "bearer")) else \
        {"Authorization": f"Bearer {token}"} if token is not None else {}
    return await http.post(f"http://127.0.0.1:{port}/mcp", json=body, headers={**JSON_SSE, **auth, **headers})


CREATE = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
          "params": {"name": "create_ticket", "arguments": {"subject": "s", "description": "d",
                                                            "customer_email": "o@x.test"}}}


def create_call(tenant: str) -> dict[str, Any]:
    body = json.loads(json.dumps(CREATE))
    body["params"]["arguments"]["tenant"] = tenant
    return body


async def test_oauth_end_to_end(server_env, make_tenant, make_key, tmp_path: Path) -> None:
    a, b = await make_tenant("oa"), await make_tenant("ob")
    port = free_port()
    resource, other = f"http://127.0.0.1:{port}/mcp", "http://127.0.0.1:1/other-mcp"
    clients = [{"client_id": "agent", "tenants": [a]}, {"client_id": "ops", "tenants": "*"},
               {"client_id": "nobody"}, {"client_id": "opaque", "tenants": [a], "opaque": True},
               {"client_id": "rs"}]
    async with authorization_server([resource, other], clients, tmp_path / "op.log") as op:
        env = {**server_env, "SUPPORT_MCP_OAUTH_ISSUER": op.issuer,
               "SUPPORT_MCP_PUBLIC_URL": f"http://127.0.0.1:{port}",
               "SUPPORT_MCP_OAUTH_INTROSPECTION_URL": f"{op.issuer}/token/introspection",
               "SUPPORT_MCP_OAUTH_CLIENT_ID": "rs", "SUPPORT_MCP_OAUTH_CLIENT_SECRET": "secret-rs"}
        log = tmp_path / "serve.log"
        async with serve_on(env, log, port), httpx.AsyncClient(timeout=30) as http:
            base = f"http://127.0.0.1:{port}"
            metadata_url = f"{base}/.well-known/oauth-protected-resource/mcp"
            # protected resource metadata (RFC 9728), both forms; odd paths are plain 404s
            for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"):
                r = await http.get(base + path)
                assert r.status_code == 200, (path, r.text)
                prm = r.json()
                assert prm["resource"] == resource and prm["authorization_servers"] == [op.issuer]
                assert set(prm["scopes_supported"]) == {"read", "write", "admin", "refund"}
            for path in ("/.well-known/oauth-protected-resource/other", "/.well-known/oauth-protected-resource/mcp/x",
                         "/.well-known/oauth-protected-resource%2F..%2Fmcp"):
                assert (await http.get(base + path)).status_code == 404, path

            # a real client-credentials grant, through the real MCP client
            token = await op.token("agent", "read write")
            async with bearer_client(port, token) as c:
                r = await c.call_tool("create_ticket", {"tenant": a, "subject": "via oauth", "description": "d",
                                                        "customer_email": "o@x.test"})
                assert not r.is_error, text_of(r)
                r = await c.call_tool("list_tickets", {"tenant": b})  # a tenant not in the claim
                assert r.is_error and "not available" in text_of(r)
                r = await c.call_tool("create_ticket", {"tenant": b, "subject": "x", "description": "d",
                                                        "customer_email": "o@x.test"})
                assert r.is_error and "not available" in text_of(r)
            # API keys keep working beside tokens
            key = await make_key(tenants=[a], scopes=["read"], name="oauth-side")
            async with bearer_client(port, key) as c:
                r = await c.call_tool("list_tickets", {"tenant": a})
                assert not r.is_error and len(r.structured_content["tickets"]) == 1
            # "*" grants every tenant; an opaque token goes through introspection (RFC 7662)
            async with bearer_client(port, await op.token("ops", "read")) as c:
                assert not (await c.call_tool("list_tickets", {"tenant": b})).is_error
            async with bearer_client(port, await op.token("opaque", "read")) as c:
                r = await c.call_tool("list_tickets", {"tenant": a})
                assert not r.is_error and len(r.structured_content["tickets"]) == 1
                assert (await c.call_tool("list_tickets", {"tenant": b})).is_error

            # a missing scope: 403 insufficient_scope naming the scope to ask for (step-up)
            reader = await op.token("agent", "read")
            r = await post(http, port, reader, create_call(a))
            assert r.status_code == 403, r.text
            challenge = r.headers["www-authenticate"]
            assert 'error="insufficient_scope"' in challenge and f'resource_metadata="{metadata_url}"' in challenge
            assert re.search(r'scope="[^"]*\bwrite\b', challenge) and r.json()["error"] == "insufficient_scope"
            async with bearer_client(port, reader) as c:  # what the token does hold still works
                assert not (await c.call_tool("list_tickets", {"tenant": a})).is_error

            # tokens that must not verify: each 401 with the metadata URL, nothing served
            now = int(time.time())
            good = {"iss": op.issuer, "aud": resource, "sub": "agent", "client_id": "agent", "scope": "read write",
                    "tenants": [a], "iat": now, "exp": now + 300}
            stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            header, payload, signature = token.split(".")
            claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
            tampered = ".".join([header, _b64(json.dumps({**claims, "tenants": "*"}).encode()), signature])
            none = ".".join([_b64(b'{"alg":"none","typ":"JWT"}'), _b64(json.dumps(good).encode()), ""])
            pem = op.key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
            hs_head = _b64(json.dumps({"alg": "HS256", "kid": KID}).encode()) + "." + _b64(json.dumps(good).encode())
            confused = hs_head + "." + _b64(hmac.new(pem, hs_head.encode(), hashlib.sha256).digest())
            refused = {
                "wrong audience": await op.token("agent", "read write", resource=other),
                "another issuer": op.sign({**good, "iss": "http://127.0.0.1:1"}),
                "expired": op.sign({**good, "iat": now - 900, "exp": now - 120}),
                "not yet valid": op.sign({**good, "nbf": now + 600}),
                "no exp": op.sign({k: v for k, v in good.items() if k != "exp"}),
                "tampered signature": tampered,
                "alg none": none,
                "HS256 with the public key": confused,
                "unknown kid": op.sign(good, key=stranger, kid="rotated-away"),
                "stranger's key, known kid": op.sign(good, key=stranger),
                "missing tenant claim": await op.token("nobody", "read write"),
                "64 KB": "x" * 65_536,
                "64 KB JWT-shaped": "a" * 30_000 + "." + "b" * 30_000 + "." + "c" * 5_000,
                "garbage JWT": "a.b.c",
                "unknown opaque": "9WWNTK2DMUDNO7d5Eb97IRsK7HLMCJntTVlxJRvnXhO",
                "no token": "Bearer",
                "odd spacing": "Bearer   spaced",
                "two tokens": f"Bearer {token} {token}",
                "Basic": "Basic dXNlcjpwYXNz",
                "none at all": None,
            }
            for case, bad in refused.items():
                for body in (INIT, create_call(a)):
                    r = await post(http, port, bad, body)
                    assert r.status_code == 401, (case, r.status_code, r.text)
                    challenge = r.headers.get("www-authenticate", "")
                    assert challenge.startswith("Bearer") and f'resource_metadata="{metadata_url}"' in challenge, case
                    assert "Traceback" not in r.text and "secret" not in r.text.lower(), case
            # clock skew within the leeway is accepted
            for skewed in (op.sign({**good, "iat": now + 10, "nbf": now + 10, "exp": now + 300}),
                           op.sign({**good, "iat": now - 300, "exp": now - 5})):
                async with bearer_client(port, skewed) as c:
                    assert not (await c.call_tool("list_tickets", {"tenant": a})).is_error

            # nothing was written on behalf of a refused token
            async with bearer_client(port, await op.token("ops", "read")) as c:
                tickets_a = (await c.call_tool("list_tickets", {"tenant": a})).structured_content["tickets"]
                tickets_b = (await c.call_tool("list_tickets", {"tenant": b})).structured_content["tickets"]
            assert [t["subject"] for t in tickets_a] == ["via oauth"] and tickets_b == []
        events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        fetches = [e for e in events if e.get("event") == "oauth_keys_fetched"]
        assert 1 <= len(fetches) <= 2, "an unknown kid refetches the keys at most once per min_refetch window"
        assert token not in log.read_text(), "tokens never reach the log"


async def test_authorization_server_down_or_slow_is_503(server_env, make_tenant, make_key, tmp_path: Path) -> None:
    """JWKS/metadata unreachable or hanging: a clear 503 + Retry-After (not a hang, not a 401 that
    would send clients to re-authorize); API keys keep working."""
    a = await make_tenant("od")
    key = await make_key(tenants=[a], scopes=["read"], name="oauth-down")

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)  # accepts, never answers
        writer.close()

    hang = await asyncio.start_server(silent, "127.0.0.1", 0)
    hang_port = hang.sockets[0].getsockname()[1]
    closed_port = free_port()
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    try:
        for issuer in (f"http://127.0.0.1:{hang_port}", f"http://127.0.0.1:{closed_port}"):
            port = free_port()
            env = {**server_env, "SUPPORT_MCP_OAUTH_ISSUER": issuer,
                   "SUPPORT_MCP_PUBLIC_URL": f"http://127.0.0.1:{port}",
                   "SUPPORT_MCP_OAUTH_HTTP_TIMEOUT_SECONDS": "1"}
            token = jwt.encode({"iss": issuer, "aud": f"http://127.0.0.1:{port}/mcp", "exp": 2**31},
                               stranger, algorithm="RS256", headers={"kid": "k"})
            async with serve_on(env, tmp_path / f"down{port}.log", port), httpx.AsyncClient(timeout=30) as http:
                r = await post(http, port, token)
                assert r.status_code == 503, (issuer, r.status_code, r.text)
                assert r.headers.get("retry-after") and r.json()["error"] == "temporarily_unavailable"
                assert "Traceback" not in r.text
                assert (await post(http, port, key)).status_code == 200
    finally:
        hang.close()


def test_serves_off_loopback_with_oauth_and_no_keys(server_env, tmp_path: Path) -> None:
    fresh = {k: v for k, v in server_env.items() if k != "SUPPORT_MCP_DATABASE_URL"}
    fresh |= {"SUPPORT_MCP_DATA_DIR": str(tmp_path / "nokeys"), "SUPPORT_MCP_OAUTH_ISSUER": "https://idp.example",
              "SUPPORT_MCP_PUBLIC_URL": "https://support.example"}
    port = free_port()
    proc = subprocess.Popen([*SERVE, "--transport", "http", "--host", "0.0.0.0", "--port", str(port)], env=fresh,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(httpx.TransportError):
                r = httpx.get(f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource", timeout=2)
                if r.status_code == 200:
                    assert r.json()["authorization_servers"] == ["https://idp.example"]
                    assert r.json()["resource"] == "https://support.example/mcp"
                    break
            time.sleep(0.2)
        else:
            pytest.fail(f"serve did not start with OAuth and no keys: {proc.stderr.read() if proc.stderr else ''}")
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: Any = None
        self.client: Any = None

    async def get_tokens(self) -> Any:
        return self.tokens

    async def set_tokens(self, tokens: Any) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> Any:
        return self.client

    async def set_client_info(self, client_info: Any) -> None:
        self.client = client_info


async def test_authorization_code_pkce_with_the_sdk_oauth_client(server_env, make_tenant, tmp_path: Path) -> None:
    """The MCP SDK's OAuth client does the whole dance against the real authorization server:
    401 -> protected resource metadata -> authorization server metadata -> dynamic client
    registration -> authorization code + PKCE (S256) with the resource indicator -> token -> tools.
    Login and consent complete by themselves in the provider (tests/oauth/provider.mjs)."""
    from urllib.parse import parse_qs, urljoin, urlsplit

    from mcp.client.auth import OAuthClientProvider
    from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata

    a, b = await make_tenant("pa"), await make_tenant("pb")
    port = free_port()
    resource, redirect = f"http://127.0.0.1:{port}/mcp", "http://127.0.0.1:1/callback"
    async with authorization_server([resource], [{"client_id": "unused"}], tmp_path / "op.log",
                                    accounts={"user-1": [a]}) as op:
        env = {**server_env, "SUPPORT_MCP_OAUTH_ISSUER": op.issuer,
               "SUPPORT_MCP_PUBLIC_URL": f"http://127.0.0.1:{port}"}
        async with serve_on(env, tmp_path / "serve.log", port):
            answer: dict[str, Any] = {}

            async def redirect_handler(url: str) -> None:  # a browser that follows the redirects
                async with httpx.AsyncClient(timeout=10) as browser:
                    for _ in range(10):
                        r = await browser.get(url)
                        assert r.status_code in (302, 303), (r.status_code, r.text[:500])
                        url = urljoin(url, r.headers["location"])
                        if url.startswith(redirect):
                            query = parse_qs(urlsplit(url).query)
                            assert "code" in query, query
                            answer.update(code=query["code"][0], state=query.get("state", [None])[0],
                                          iss=query.get("iss", [None])[0])
                            return
                raise AssertionError("no redirect back to the client")

            async def callback_handler() -> AuthorizationCodeResult:
                return AuthorizationCodeResult(**answer)

            storage = MemoryStorage()
            auth = OAuthClientProvider(
                server_url=resource, storage=storage, redirect_handler=redirect_handler,
                callback_handler=callback_handler,
                client_metadata=OAuthClientMetadata(client_name="support-mcp tests", redirect_uris=[redirect],
                                                    grant_types=["authorization_code"],
                                                    response_types=["code"], token_endpoint_auth_method="none",
                                                    scope="read write"))
            http = httpx2.AsyncClient(auth=auth, timeout=30)
            async with Client(streamable_http_client(resource, http_client=http)) as c:
                r = await c.call_tool("create_ticket", {"tenant": a, "subject": "via pkce", "description": "d",
                                                        "customer_email": "p@x.test"})
                assert not r.is_error, text_of(r)
                r = await c.call_tool("list_tickets", {"tenant": b})
                assert r.is_error and "not available" in text_of(r)
            token = storage.tokens.access_token
            claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
            assert claims["aud"] == resource and claims["sub"] == "user-1" and claims["tenants"] == [a]
