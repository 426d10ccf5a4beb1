"""OAuth access tokens -> the same Principal as API keys.

JWTs are verified locally (PyJWT): an algorithm allow-list (asymmetric only), the key the token
names from the authorization server's JWKS, `iss`, `aud` equal to this resource (RFC 8707),
`exp`/`nbf` with a small leeway. Opaque tokens go to RFC 7662 introspection when configured.
Tenants come from a claim (a list of slugs or "*"); scopes from `scope`/`scp` through the
configured name mapping. A token without a usable tenant claim grants nothing. The token
itself never leaves this module except to the introspection endpoint it came from.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx2
import jwt
from mcp.server.auth.provider import AccessToken

from ..access import DATA_SCOPES, Principal
from ..errors import UpstreamUnavailable
from ..logging import get_logger
from ..settings import Settings
from .keys import AuthServerKeys

log = get_logger(__name__)

MARK = "support_mcp_oauth"  # in AccessToken.claims: this token was verified here, principal inside
_SLUG = re.compile(r"^[a-z0-9_]{1,63}$")


class OAuthVerifier:
    def __init__(self, settings: Settings) -> None:
        assert settings.oauth_issuer and settings.oauth_resource
        self.settings = settings
        self.issuer = settings.oauth_issuer
        self.resource = settings.oauth_resource
        self.algorithms = list(settings.oauth_algorithms)
        self.keys = AuthServerKeys(self.issuer, timeout=settings.oauth_http_timeout_seconds,
                                   cache_seconds=settings.oauth_jwks_cache_seconds,
                                   min_refetch=settings.oauth_jwks_min_refetch_seconds)

    async def close(self) -> None:
        await self.keys.close()

    async def verify(self, token: str) -> AccessToken | None:
        """An AccessToken carrying the principal, or None (-> 401). Raises UpstreamUnavailable (-> 503)."""
        if token.count(".") == 2:
            claims = await self._verify_jwt(token)
        elif self.settings.oauth_introspection_url:
            claims = await self._introspect(token)
        else:
            return None
        return None if claims is None else self._access_token(token, claims)

    async def _verify_jwt(self, token: str) -> dict[str, Any] | None:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return _refused("malformed")
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in self.algorithms:
            return _refused("algorithm", alg=str(alg)[:20])
        if kid is not None and not isinstance(kid, str):
            return _refused("malformed")
        key = await self.keys.key(kid)
        if key is None:
            return _refused("unknown_kid", kid=str(kid)[:80])
        try:
            return jwt.decode(token, key=key.key, algorithms=[alg], audience=self.resource, issuer=self.issuer,
                              leeway=self.settings.oauth_leeway_seconds,
                              options={"require": ["exp", "iss", "aud"], "strict_aud": False})
        except jwt.PyJWTError as exc:
            return _refused(type(exc).__name__)

    async def _introspect(self, token: str) -> dict[str, Any] | None:
        s = self.settings
        assert s.oauth_introspection_url and s.oauth_client_id and s.oauth_client_secret
        try:
            response = await self.keys.client().post(
                s.oauth_introspection_url, data={"token": token, "token_type_hint": "access_token"},
                auth=(s.oauth_client_id, s.oauth_client_secret.get_secret_value()),
                headers={"Accept": "application/json"})
            claims = response.json() if response.status_code == 200 else None
        except (httpx2.HTTPError, ValueError) as exc:
            log.warning("oauth_introspection_unavailable", error=type(exc).__name__)
            raise UpstreamUnavailable("the authorization server cannot check this token right now; retry shortly") \
                from None
        if not isinstance(claims, dict):
            log.warning("oauth_introspection_unavailable", status=response.status_code)
            raise UpstreamUnavailable("the authorization server cannot check this token right now; retry shortly")
        if claims.get("active") is not True:
            return _refused("inactive")
        if claims.get("iss", self.issuer) != self.issuer:
            return _refused("issuer")
        aud = claims.get("aud")
        if self.resource not in ([aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []):
            return _refused("audience")
        if not isinstance(claims.get("exp"), int) or claims["exp"] + s.oauth_leeway_seconds < time.time():
            return _refused("expired")
        return claims

    def _access_token(self, token: str, claims: dict[str, Any]) -> AccessToken | None:
        tenants = _tenants(claims.get(self.settings.oauth_tenants_claim))
        if tenants == frozenset():
            return _refused("no_tenants")
        granted = _token_scopes(claims)
        scopes = frozenset(ours for ours, theirs in self.settings.oauth_scopes.items()
                           if theirs in granted and ours in DATA_SCOPES)  # `episodes`: API keys only
        subject = str(claims.get("sub") or "")[:200] or None
        client = str(claims.get("client_id") or claims.get("azp") or subject or "oauth")[:200]
        who = subject or client
        principal = Principal(name=f"oauth:{who}"[:120], tenants=tenants, scopes=scopes,
                              key_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.issuer}#{who}")))
        exp = claims.get("exp")  # the SDK refuses past expires_at itself: allow it the same leeway
        leeway = self.settings.oauth_leeway_seconds
        return AccessToken(token=token, client_id=principal.key_id or client, scopes=sorted(scopes),
                           expires_at=exp + leeway if isinstance(exp, int) else None, resource=self.resource,
                           subject=subject, claims={"iss": self.issuer, MARK: principal})


def principal_of(access: AccessToken) -> Principal | None:
    """The principal an OAuth token verified here carries (None for an API key's AccessToken)."""
    found = (access.claims or {}).get(MARK)
    return found if isinstance(found, Principal) else None


def _tenants(value: Any) -> frozenset[str] | None:
    """None = every tenant ("*"); an empty set = nothing (missing, empty or malformed claim)."""
    if value == "*" or value == ["*"]:
        return None
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list):
        return frozenset()
    return frozenset(v for v in value if isinstance(v, str) and _SLUG.match(v))


def _token_scopes(claims: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(v for v in value if isinstance(v, str))
    return found


def _refused(reason: str, **details: Any) -> None:
    log.info("oauth_token_refused", reason=reason, **details)
    return None
