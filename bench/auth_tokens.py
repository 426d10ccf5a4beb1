"""Token verification bench (not a test): what the HTTP bearer path costs per call, in memory.
API key (cached, what BearerKeys + App.resolve_principal do) vs an OAuth JWT access token
verified locally with cached keys (RS256 2048-bit, ES256, EdDSA): signature, iss, aud, exp/nbf,
claims to Principal. Target: the JWT path costs <= 0.2 ms more than an API key (p50 and p99).
Markdown on stdout, JSON to --out.
"""

from __future__ import annotations

import argparse, os, sys, time  # noqa: E401
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

_HERE = Path(__file__).resolve().parent  # last on sys.path: bench/stripe.py must not shadow the stripe SDK
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]
from common import bench_main, bench_parser, interleaved_cpu, log, machine, md_table, scratch_settings  # noqa: E402, I001
from support_mcp import keys, migrations, tenancy  # noqa: E402
from support_mcp.keys import KeyVerifier  # noqa: E402
from support_mcp.oauth.verifier import OAuthVerifier, principal_of  # noqa: E402
from support_mcp.server import BearerKeys  # noqa: E402

ISSUER, PUBLIC = "https://idp.bench.example", "https://support.bench.example"
LIMIT_MS = 0.2


def signing_keys() -> dict[str, tuple[str, Any]]:
    return {"RS256": ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            "ES256": ("ES256", ec.generate_private_key(ec.SECP256R1())),
            "EdDSA": ("EdDSA", ed25519.Ed25519PrivateKey.generate())}


def public_jwk(alg: str, key: Any, kid: str) -> jwt.PyJWK:
    algo = jwt.get_algorithm_by_name(alg)
    data = algo.to_jwk(key.public_key(), as_dict=True) | {"kid": kid, "alg": alg, "use": "sig"}
    return jwt.PyJWK(data)


async def run(a: argparse.Namespace) -> dict[str, Any]:
    n, rounds, warm = (200, 2, 20) if a.quick else (a.calls, a.rounds, 500)
    cfg = {"quick": a.quick, "calls_per_mode": n, "rounds": rounds, "server": "url" if a.database_url else "embedded"}
    res: dict[str, Any] = {"machine": machine(), "config": cfg, "loadavg_start": os.getloadavg()}
    async with scratch_settings(a.database_url, prefix="sm_authtok", oauth_issuer=ISSUER, public_url=PUBLIC) as st:
        db = await migrations.database(st).start()
        try:
            await tenancy.create_tenant(db, "bench_a", "Bench A")
            api_key = (await keys.create_key(db, "bench", tenants=["bench_a"], all_tenants=False,
                                             scopes=["read", "write"], expires_in=None)).key
            key_verifier = KeyVerifier(db, ttl=st.cache_seconds)
            oauth = OAuthVerifier(st)
            bearer = BearerKeys(key_verifier, oauth, st.oauth_max_token_bytes)
            now = int(time.time())
            claims = {"iss": ISSUER, "aud": st.oauth_resource, "sub": "bench-client", "client_id": "bench-client",
                      "scope": "read write", "tenants": ["bench_a"], "iat": now, "exp": now + 86_400}
            tokens: dict[str, str] = {}
            for name, (alg, key) in signing_keys().items():
                kid = f"bench-{name}"
                oauth.keys._keys[kid] = public_jwk(alg, key, kid)  # cached keys: no fetch in the loop
                tokens[name] = jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, "typ": "at+jwt"})
            oauth.keys._fetched_at = time.monotonic() + 10 * 86_400  # stays fresh for the whole run

            async def by_key() -> None:  # what the auth middleware + resolve_principal do for a key
                access = await bearer.verify_token(api_key)
                assert access is not None
                await key_verifier.principal(access.token)

            def by_token(token: str) -> Any:
                async def op() -> None:
                    access = await bearer.verify_token(token)
                    assert access is not None and principal_of(access) is not None
                return op

            modes = {"api_key": by_key, **{f"jwt_{name}": by_token(t) for name, t in tokens.items()}}
            log(f"interleaved: {len(modes)} modes x {n} calls, {rounds} rounds")
            res["latency"] = await interleaved_cpu(modes, n, rounds, warm)
            await oauth.close()
        finally:
            await db.close()
    res["loadavg_end"] = os.getloadavg()
    return res


def render(r: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    lat, base = r["latency"], r["latency"]["api_key"]
    rows, targets = [], []
    for mode, s in lat.items():
        extra50, extra99 = s["p50"] - base["p50"], s["p99"] - base["p99"]
        met = None if mode == "api_key" else extra50 <= LIMIT_MS and extra99 <= LIMIT_MS
        rows.append([mode, s["n"], s["p50"], s["p99"], s["max"], s["cpu_p50"], extra50, extra99, met])
        if mode != "api_key":
            targets += [{"target": f"{mode} p{q} - api_key p{q}, ms", "value": v, "limit": f"<= {LIMIT_MS}",
                         "met": v <= LIMIT_MS} for q, v in (("50", extra50), ("99", extra99))]
    c = r["config"]
    out = [f"# Token verification bench: {r['machine']['cpus']} CPUs, {'quick' if c['quick'] else 'full'} run, "
           f"{c['calls_per_mode']} calls per mode, {c['rounds']} interleaved rounds (ms per call)",
           md_table(["mode", "n", "p50", "p99", "max", "CPU p50", "p50 extra", "p99 extra",
                     f"met (<= {LIMIT_MS} ms extra)"], [[f"{x:.3f}" if isinstance(x, float) else x for x in row]
                                                       for row in rows])]
    return "\n".join(out), targets


def main() -> None:
    ap = bench_parser(__doc__, "auth_tokens")
    ap.add_argument("--calls", type=int, default=20_000, help="measured calls per mode")
    ap.add_argument("--rounds", type=int, default=10, help="interleaved rounds")
    a = ap.parse_args()
    bench_main("auth_tokens", a, run, render)


if __name__ == "__main__":
    main()
