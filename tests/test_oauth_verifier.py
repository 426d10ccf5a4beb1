"""The OAuth verifier in process: key discovery and caching against an authorization server's
metadata and JWKS served by a small Starlette app (fault injection: hundreds of keys, unknown
kids, wrong issuer, broken JWKS), claims -> Principal, settings that must refuse to start.
The real authorization server end to end: tests/test_oauth.py."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from support_mcp.errors import UpstreamUnavailable
from support_mcp.oauth.verifier import OAuthVerifier, principal_of
from support_mcp.settings import Settings

ISSUER, PUBLIC = "https://idp.test/tenant1", "https://support.test"
AUD = PUBLIC + "/mcp"


class FakeAS:
    """Metadata + JWKS, counting fetches; `jwks` and `metadata` can be swapped to inject faults."""

    def __init__(self, n_keys: int = 300) -> None:
        self.fetches = 0
        self.signing = {f"k{i}": ec.generate_private_key(ec.SECP256R1()) for i in range(n_keys)}
        self.metadata: dict[str, Any] | None = {"issuer": ISSUER, "jwks_uri": "https://idp.test/jwks"}
        self.oauth_metadata = False  # RFC 8414 document absent: OpenID discovery is the fallback
        self.jwks: Any = {"keys": [jwt.algorithms.ECAlgorithm.to_jwk(k.public_key(), as_dict=True) | {"kid": kid}
                                   for kid, k in self.signing.items()]}
        self.delay = 0.0

        async def openid(_r: Request) -> Response:
            return JSONResponse(self.metadata) if self.metadata else Response(status_code=404)

        async def oauth(_r: Request) -> Response:
            return JSONResponse(self.metadata) if self.oauth_metadata else Response(status_code=404)

        async def keys(_r: Request) -> Response:
            self.fetches += 1
            await asyncio.sleep(self.delay)
            return JSONResponse(self.jwks) if not isinstance(self.jwks, bytes) else Response(self.jwks)

        self.app = Starlette(routes=[
            Route("/tenant1/.well-known/openid-configuration", openid),
            Route("/.well-known/oauth-authorization-server/tenant1", oauth),
            Route("/jwks", keys)])

    def token(self, kid: str = "k250", key: Any = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUD, "sub": "user-1", "scope": "read", "tenants": ["acme"], "iat": now,
                "exp": now + 300} | claims
        return jwt.encode({k: v for k, v in body.items() if v is not None}, key or self.signing.get(kid)
                          or ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": kid})


def verifier(fake: FakeAS, **overrides: Any) -> OAuthVerifier:
    s = Settings(_env_file=None, oauth_issuer=ISSUER, public_url=PUBLIC, **overrides)
    v = OAuthVerifier(s)
    v.keys._http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=fake.app), base_url="https://idp.test")
    return v


async def test_hundreds_of_keys_unknown_kid_refetch_is_rate_limited() -> None:
    fake = FakeAS()
    v = verifier(fake, oauth_jwks_min_refetch_seconds=60)
    # concurrent first calls share one fetch
    found = await asyncio.gather(*(v.verify(fake.token(kid=f"k{i}")) for i in range(0, 300, 10)))
    assert all(a is not None for a in found) and fake.fetches == 1
    access = await v.verify(fake.token())
    assert access is not None and principal_of(access).tenants == frozenset({"acme"})
    # unknown kids: at most one refetch per window, however many arrive
    for i in range(20):
        assert await v.verify(fake.token(kid=f"unknown{i}")) is None
    assert fake.fetches == 1  # the last fetch was < 60 s ago
    v.keys._tried_at -= 61
    assert await v.verify(fake.token(kid="unknown-again")) is None
    assert fake.fetches == 2
    await v.close()


async def test_rotated_key_is_found_by_refetch() -> None:
    fake = FakeAS(n_keys=1)
    v = verifier(fake, oauth_jwks_min_refetch_seconds=0)
    assert await v.verify(fake.token(kid="k0")) is not None
    new = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fake.jwks["keys"].append(jwt.algorithms.RSAAlgorithm.to_jwk(new.public_key(), as_dict=True) | {"kid": "new"})
    token = jwt.encode({"iss": ISSUER, "aud": AUD, "exp": int(time.time()) + 60, "tenants": "*"}, new,
                       algorithm="RS256", headers={"kid": "new"})
    access = await v.verify(token)
    assert access is not None and principal_of(access).tenants is None and fake.fetches == 2
    await v.close()


@pytest.mark.parametrize("fault", ["issuer", "jwks_garbage", "jwks_not_json", "no_metadata", "slow"])
async def test_broken_authorization_server_is_unavailable_not_unauthorized(fault: str) -> None:
    fake = FakeAS(n_keys=1)
    if fault == "issuer":
        fake.metadata = {"issuer": "https://evil.test", "jwks_uri": "https://idp.test/jwks"}
    elif fault == "jwks_garbage":
        fake.jwks = {"keys": [{"kty": "nope"}]}
    elif fault == "jwks_not_json":
        fake.jwks = b"<html>"
    elif fault == "no_metadata":
        fake.metadata = None
    else:
        fake.delay = 5
    v = verifier(fake, oauth_http_timeout_seconds=0.2)
    if fault == "slow":  # the ASGI transport has no network timeout: bound it the way httpx would
        v.keys._http = httpx2.AsyncClient(transport=_Timeout(httpx2.ASGITransport(app=fake.app), 0.2))
    with pytest.raises(UpstreamUnavailable):
        await v.verify(fake.token(kid="k0"))
    await v.close()


class _Timeout(httpx2.AsyncBaseTransport):
    def __init__(self, inner: httpx2.AsyncBaseTransport, seconds: float) -> None:
        self.inner, self.seconds = inner, seconds

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            return await asyncio.wait_for(self.inner.handle_async_request(request), self.seconds)
        except asyncio.TimeoutError:
            raise httpx2.ReadTimeout("timed out", request=request) from None


async def test_rfc8414_metadata_first() -> None:
    fake = FakeAS(n_keys=1)
    fake.oauth_metadata, fake.metadata = True, {"issuer": ISSUER, "jwks_uri": "https://idp.test/jwks"}
    v = verifier(fake)
    assert await v.verify(fake.token(kid="k0")) is not None
    await v.close()


async def test_claims_to_principal() -> None:
    fake = FakeAS(n_keys=1)
    v = verifier(fake, oauth_tenants_claim="https://support.test/tenants",
                 oauth_scopes={"read": "support:read", "write": "support:write"})
    t = fake.token
    claim = "https://support.test/tenants"

    async def principal(**claims: Any) -> Any:
        access = await v.verify(t(kid="k0", **{"tenants": None, **claims}))
        return principal_of(access) if access else None

    p = await principal(**{claim: ["acme", "Bad-Slug", "beta"], "scp": ["support:read", "support:write", "admin"]})
    assert p.tenants == frozenset({"acme", "beta"}) and p.scopes == frozenset({"read", "write"})
    p = await principal(**{claim: "acme beta", "scope": "support:read admin"})
    assert p.tenants == frozenset({"acme", "beta"}) and p.scopes == frozenset({"read"})
    assert (await principal(**{claim: "*"})).tenants is None
    for nothing in ({}, {claim: []}, {claim: ["Bad-Slug"]}, {claim: 7}, {"tenants": ["acme"]}):  # not our claim
        assert await principal(**nothing) is None, nothing  # a token without a usable tenant claim grants nothing
    # another resource on the same issuer, alg outside the allow-list
    assert await v.verify(t(kid="k0", aud=PUBLIC + "/other", **{claim: "*"})) is None
    assert await v.verify(t(kid="k0", aud=[PUBLIC + "/other", AUD], **{claim: "*"})) is not None  # aud: a list
    assert await v.verify(t(kid="k0", **{claim: "*"})) is not None
    v2 = verifier(fake, oauth_algorithms=["RS256"])
    assert await v2.verify(t(kid="k0", tenants="*")) is None
    await v.close()
    await v2.close()


def test_settings_refuse_unsafe_oauth() -> None:
    for bad in ({"oauth_algorithms": ["RS256", "none"]}, {"oauth_algorithms": ["HS256"]},
                {"oauth_issuer": ISSUER}, {"oauth_issuer": ISSUER, "public_url": PUBLIC,
                                           "oauth_introspection_url": "https://idp.test/introspect"}):
        with pytest.raises(ValidationError):
            Settings(_env_file=None, **bad)
    s = Settings(_env_file=None, oauth_issuer=ISSUER, public_url=PUBLIC + "/")
    assert s.oauth_resource == AUD
    assert Settings(_env_file=None, oauth_issuer=ISSUER, oauth_audience="https://x.test/api").oauth_resource == \
        "https://x.test/api"
