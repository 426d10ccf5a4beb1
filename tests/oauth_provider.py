"""A real, independent authorization server for the OAuth tests: npm `oidc-provider` (OpenID
certified) run by tests/oauth/provider.mjs. Its node_modules are installed once into a cache
directory (SUPPORT_MCP_TEST_NPM_CACHE, default ~/.cache/support-mcp-tests/oidc-provider-<hash>) by
`npm ci` from tests/oauth/package-lock.json; the only reason to skip is a machine without node/npm.

The signing key is generated here and handed to the provider, so tests can also sign tokens the
provider would never mint (expired, not yet valid) with the key it publishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

HERE = Path(__file__).parent / "oauth"
KID = "test-rs256"


def provider_dir() -> Path:
    """The cache directory holding package.json, provider.mjs and node_modules (installed if missing)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to run the real authorization server (oidc-provider)")
    package = (HERE / "package.json").read_bytes() + (HERE / "package-lock.json").read_bytes()
    root = Path(os.environ.get("SUPPORT_MCP_TEST_NPM_CACHE", Path.home() / ".cache" / "support-mcp-tests"))
    target = root / f"oidc-provider-{hashlib.sha256(package).hexdigest()[:12]}"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json", "provider.mjs"):
        shutil.copy(HERE / name, target / name)
    if not (target / "node_modules" / "oidc-provider" / "package.json").exists():
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=target,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"npm install of oidc-provider failed:\n{done.stderr[-2000:]}"
    return target


@dataclass
class Provider:
    issuer: str
    key: rsa.RSAPrivateKey  # the provider's signing key (its JWKS publishes the public half)

    async def token(self, client: str, scope: str = "read write", resource: str | None = None) -> str:
        """An access token from a real client-credentials grant."""
        data = {"grant_type": "client_credentials", "scope": scope}
        if resource:
            data["resource"] = resource
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.post(f"{self.issuer}/token", data=data, auth=(client, f"secret-{client}"))
        assert r.status_code == 200, r.text
        return r.json()["access_token"]

    def sign(self, claims: dict[str, Any], key: Any = None, kid: str = KID, alg: str = "RS256") -> str:
        """A JWT signed with the provider's key (or `key`), for what the provider would never mint."""
        return jwt.encode(claims, key or self.key, algorithm=alg, headers={"kid": kid, "typ": "at+jwt"})


@contextlib.asynccontextmanager
async def authorization_server(resources: list[str], clients: list[dict[str, Any]], log: Path,
                               accounts: dict[str, Any] | None = None) -> AsyncIterator[Provider]:
    """Start the provider issuing JWT access tokens for `resources` (the first is the default) to
    `clients` ({client_id, tenants?, opaque?}; secret = "secret-<client_id>"), and through the
    authorization code flow to `accounts` ({account id: tenants claim}; the first one logs in)."""
    cwd = provider_dir()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key)) | {"kid": KID, "alg": "RS256", "use": "sig"}
    env = {**os.environ, "OP_RESOURCES": json.dumps(resources), "OP_JWK": json.dumps(jwk),
           "OP_ACCOUNTS": json.dumps(accounts or {}),
           "OP_CLIENTS": json.dumps([{**c, "client_secret": f"secret-{c['client_id']}"} for c in clients])}
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(shutil.which("node") or "node", "provider.mjs", cwd=cwd, env=env,
                                                    stdout=asyncio.subprocess.PIPE, stderr=err,
                                                    stdin=asyncio.subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().split()
        assert line[:1] == ["ready"], f"provider did not start: {log.read_text()[-2000:]}"
        yield Provider(issuer=line[1], key=key)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), 10)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
