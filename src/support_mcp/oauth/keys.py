"""The authorization server's signing keys: found through its metadata, cached, refetched on an
unknown `kid` at most once per `min_refetch` seconds, fetched with timeouts.

An authorization server that cannot be reached (or answers garbage) raises UpstreamUnavailable,
which the HTTP layer answers 503 + Retry-After (http_faults): never a hang, never a 500. Keys
already fetched keep verifying tokens while a refresh fails.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import httpx2
import jwt

from ..errors import UpstreamUnavailable
from ..logging import get_logger

log = get_logger(__name__)

MAX_DOCUMENT_BYTES = 1_000_000  # metadata or a JWKS larger than this is refused
UNAVAILABLE = "the authorization server's keys cannot be fetched right now; retry shortly"


def metadata_urls(issuer: str) -> list[str]:
    """Where the metadata may be, in the order the MCP authorization specification gives: RFC 8414
    (well-known inserted before the issuer's path), OpenID discovery inserted, OpenID appended."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    origin = f"{parts.scheme}://{parts.netloc}"
    if not path:
        return [f"{origin}/.well-known/oauth-authorization-server", f"{origin}/.well-known/openid-configuration"]
    return [f"{origin}/.well-known/oauth-authorization-server{path}",
            f"{origin}/.well-known/openid-configuration{path}", f"{origin}{path}/.well-known/openid-configuration"]


class AuthServerKeys:
    def __init__(self, issuer: str, *, timeout: float, cache_seconds: float, min_refetch: float) -> None:
        self.issuer = issuer
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self.min_refetch = min_refetch
        self.metadata: dict[str, Any] | None = None
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # last successful key fetch
        self._tried_at = float("-inf")  # last attempt (successful or not)
        self._attempts = 0
        self._lock = asyncio.Lock()
        self._http: httpx2.AsyncClient | None = None

    def client(self) -> httpx2.AsyncClient:
        if self._http is None:
            self._http = httpx2.AsyncClient(timeout=self.timeout, follow_redirects=False)
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def key(self, kid: str | None) -> jwt.PyJWK | None:
        """The key a token names, or None when the authorization server does not have it."""
        now = time.monotonic()
        fresh = self._fetched_at is not None and now - self._fetched_at < self.cache_seconds
        found = self._lookup(kid)
        if found is not None and fresh:
            return found
        if not fresh or now - self._tried_at >= self.min_refetch:
            await self._refresh(stale_ok=self._fetched_at is not None)
            if self._fetched_at is None:  # another request's fetch failed while this one waited
                raise UpstreamUnavailable(UNAVAILABLE)
            found = self._lookup(kid)
        return found

    def _lookup(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None and len(self._keys) == 1:  # a token without kid: only when there is no choice
            return next(iter(self._keys.values()))
        return self._keys.get(kid) if kid is not None else None

    async def _refresh(self, *, stale_ok: bool) -> None:
        done = self._attempts  # attempts finished so far
        async with self._lock:  # one fetch at a time; those who waited on it use its result
            if self._attempts != done:
                return
            self._tried_at = time.monotonic()
            try:
                await self._fetch(stale_ok)
            finally:
                self._attempts += 1

    async def _fetch(self, stale_ok: bool) -> None:
        try:
            if self.metadata is None or not stale_ok:
                self.metadata = await self._discover()
            jwks = await self._get_json(str(self.metadata["jwks_uri"]))
            keys = jwt.PyJWKSet.from_dict(jwks).keys if jwks.get("keys") else []
        except (UpstreamUnavailable, jwt.PyJWTError, KeyError, TypeError, ValueError) as exc:
            log.warning("oauth_keys_unavailable", issuer=self.issuer, error=str(exc)[:200], stale_ok=stale_ok)
            if stale_ok:
                return
            raise UpstreamUnavailable(UNAVAILABLE) from None
        self._keys = {k.key_id: k for k in keys if k.public_key_use in (None, "sig")}
        self._fetched_at = time.monotonic()
        log.info("oauth_keys_fetched", issuer=self.issuer, keys=len(self._keys))

    async def _discover(self) -> dict[str, Any]:
        last: Exception | None = None
        for url in metadata_urls(self.issuer):
            try:
                doc = await self._get_json(url)
            except UpstreamUnavailable as exc:
                last = exc
                continue
            if doc.get("issuer") != self.issuer:
                raise ValueError(f"metadata at {url} names issuer {str(doc.get('issuer'))[:100]!r}")
            if not isinstance(doc.get("jwks_uri"), str):
                raise ValueError(f"metadata at {url} has no jwks_uri")
            return doc
        raise UpstreamUnavailable(f"no authorization server metadata: {last}")

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self.client().get(url, headers={"Accept": "application/json"})
        except httpx2.HTTPError as exc:
            raise UpstreamUnavailable(f"{url}: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise UpstreamUnavailable(f"{url}: HTTP {response.status_code}")
        if len(response.content) > MAX_DOCUMENT_BYTES:
            raise UpstreamUnavailable(f"{url}: document too large")
        try:
            doc = response.json()
        except ValueError:
            raise UpstreamUnavailable(f"{url}: not JSON") from None
        if not isinstance(doc, dict):
            raise UpstreamUnavailable(f"{url}: not a JSON object")
        return doc
