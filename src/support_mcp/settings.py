"""All configuration in one place: env prefix SUPPORT_MCP_, optional .env file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("support-mcp", appauthor=False))


class Settings(BaseSettings):
    """Built once at the composition root and passed down; nothing reads the environment elsewhere."""

    model_config = SettingsConfigDict(
        env_prefix="SUPPORT_MCP_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # --- storage -------------------------------------------------------------------------
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where the embedded PostgreSQL (and later the embedded vector store) live.",
    )
    database_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SUPPORT_MCP_DATABASE_URL", "DATABASE_URL"),
        description="PostgreSQL >= 15 URL. Unset: an embedded PostgreSQL 16 under data_dir/pg.",
    )
    embedded_database: str = Field(
        default="support_mcp",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="Database name created inside the embedded server.",
    )

    # --- connection pool -----------------------------------------------------------------
    db_pool_min_size: int = Field(default=1, ge=0)
    db_pool_max_size: int = Field(default=10, ge=1)
    db_pool_max_queries: int = Field(
        default=4000,
        ge=1,
        description="Recycle a pooled connection after this many queries, so one backend does "
        "not accumulate catalog caches for thousands of tenant schemas.",
    )
    db_pool_max_idle_seconds: float = Field(default=120.0, ge=0)
    db_command_timeout: float = Field(default=30.0, gt=0, description="Seconds per SQL statement.")
    db_connect_timeout: float = Field(default=10.0, gt=0)

    # --- migrations ----------------------------------------------------------------------
    migrate_concurrency: int = Field(default=4, ge=1, le=64)
    migrate_lock_timeout_ms: int = Field(
        default=50,
        ge=1,
        description="A tenant migration waits at most this long for a table lock, then backs "
        "off and retries, so live requests are never queued behind it for long.",
    )
    migrate_retries: int = Field(default=50, ge=0)

    # --- access ------------------------------------------------------------------------
    api_key: SecretStr | None = Field(
        default=None, description="stdio only: the API key whose tenants and scopes this server acts with."
    )
    rate_limit_per_minute: int = Field(default=600, ge=0, description="Tool calls per minute per API key; 0 = off.")
    cache_seconds: float = Field(
        default=5.0, ge=0,
        validation_alias=AliasChoices("SUPPORT_MCP_CACHE_SECONDS", "cache_seconds",
                                      # deprecated names (each used to set one of the caches)
                                      "SUPPORT_MCP_KEY_CACHE_SECONDS", "SUPPORT_MCP_STRIPE_CACHE_SECONDS"),
        description="How long verified API keys, tenants' Stripe accounts and knowledge-base namespaces are "
        "cached: a revoked key, suspended tenant or changed account takes effect within it.",
    )
    audit_flush_seconds: float = Field(default=0.25, gt=0, description="Audit rows are written in batches this often.")

    # --- knowledge base ------------------------------------------------------------------
    qdrant_url: str | None = Field(
        default=None, description="Qdrant server URL. Unset: the embedded Qdrant engine (qdrant-edge) under data_dir/kb."
    )
    qdrant_api_key: SecretStr | None = Field(default=None, description="API key for the Qdrant server.")
    qdrant_shared_collection: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]{1,100}$",
        description="Server only: keep every tenant in this one collection (is_tenant index + mandatory tenant "
        "filter) instead of a collection per tenant.",
    )
    embedding_model: str = Field(
        default="sentence-transformers/all-MiniLM-L6-v2",
        description="fastembed dense model. The default ships with the package (int8 ONNX); others download.",
    )
    embedding_model_path: Path | None = Field(default=None, description="A local fastembed model directory.")
    embedding_model_sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-fA-F]{64}$",
        description="SHA-256 the model file of embedding_model_path must have (checked at load; the default model's "
        "is pinned in the code).")
    embedding_batch_size: int = Field(default=16, ge=1, le=256, description="Chunks per embedding batch (memory).")
    embedding_threads: int | None = Field(default=None, ge=1, le=64, description="onnxruntime threads (default: all cores).")
    kb_chunk_tokens: int = Field(default=250, ge=32, le=512, description="Target tokens per chunk.")
    kb_chunk_overlap: int = Field(default=30, ge=0, le=128, description="Tokens of overlap between split chunks.")
    kb_prefetch: int = Field(default=100, ge=1, le=1000, description="Candidates each of dense and sparse search fetch.")
    kb_fusion: Literal["rrf", "dbsf"] = Field(
        default="dbsf", description="How dense and sparse results are fused (dbsf won on the SciFact dev set).")
    kb_rrf_k: int = Field(default=60, ge=1, le=1000, description="The k of reciprocal rank fusion.")
    kb_rerank: bool = Field(
        default=False, description="Rerank the fused candidates with the cross-encoder of kb_rerank_model_path "
        "(on/off). Off by default: no installable package ships a reranker's weights.")
    kb_rerank_candidates: int = Field(default=30, ge=1, le=100,
                                      description="How many fused candidates the reranker scores (bounded).")
    kb_rerank_model_path: Path | None = Field(
        default=None, description="A local cross-encoder directory: model.onnx (or onnx/model.onnx) and tokenizer.json.")
    kb_rerank_model_sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-fA-F]{64}$", description="SHA-256 the reranker's model file must have.")
    kb_worker_idle_seconds: float = Field(
        default=300, ge=1, description="The embedded engine's worker process exits after this long unused."
    )
    kb_auto_optimize_points: int = Field(
        default=8000, ge=0, description="The embedded engine builds a namespace's HNSW index in the background "
        "(a child process on a copy; searches go on) once a bulk write leaves at least this many of its points "
        "outside one. 0: only `docs optimize`. Qdrant indexes segments of ~10 MB of vectors (~6,500 chunks at "
        "384 dimensions), so lower values only add useless attempts.")

    # --- Stripe Connect ----------------------------------------------------------------
    stripe_api_key: SecretStr | None = Field(
        default=None, description="The platform's secret key (sk_... or a restricted rk_... key). Unset: the "
        "payment tools answer 'Stripe is not configured'.",
    )
    stripe_api_base: str = Field(
        default="https://api.stripe.com", pattern=r"^https?://[^\s]+$",
        description="Stripe API base URL (a regional proxy, or the local test double).",
    )
    stripe_timeout_seconds: float = Field(default=20.0, gt=0, le=120, description="Per Stripe request.")
    stripe_max_network_retries: int = Field(
        default=2, ge=0, le=5, description="The SDK retries network errors and 5xx/409 answers this often (same "
        "idempotency key).",
    )
    stripe_webhook_tolerance_seconds: int = Field(
        default=300, ge=1, le=3600, description="Webhook signatures older than this are refused (replay guard).",
    )
    stripe_webhook_max_bytes: int = Field(
        default=1_048_576, ge=1024, le=16_777_216, description="Larger webhook bodies are refused with 413.",
    )
    stripe_webhook_max_attempts: int = Field(
        default=10, ge=1, le=100, description="Processing attempts per stored event before retries stop, "
        "Stripe's redeliveries too: a delivery then answers 200 (`support-mcp stripe retry` still reprocesses it).",
    )

    stripe_sandbox: bool = Field(
        default=False, description="on: host the Stripe sandbox for evaluation episodes (a loopback listener "
        "speaking Stripe's API over the sandbox accounts in the database); episode tenants whose fixture has a "
        "`stripe` section reach it instead of Stripe, other tenants never do. Off: nothing listens, and those "
        "episodes' payment tools answer that the sandbox is off. Needs the admin database URL.",
    )
    stripe_sandbox_port: int = Field(
        default=0, ge=0, le=65535, description="The sandbox listener's port on 127.0.0.1 (0: a free one).",
    )

    # --- evaluation episodes ---------------------------------------------------------------
    episodes_sweep_seconds: float = Field(
        default=60.0, ge=0, description="serve destroys expired episodes this often; 0 = never (then run "
        "`support-mcp episodes sweep` from cron).",
    )
    episodes_warm_pool: int = Field(
        default=0, ge=0, le=1000, description="serve keeps this many spare episode tenants provisioned, so "
        "creating an episode claims one (~ms) instead of provisioning (~25 ms); 0 = no pool.",
    )
    episodes_max_body_bytes: int = Field(
        default=10_485_760 + 65_536, ge=1024, le=64 * 1_048_576,
        description="Larger bodies to the episodes admin API are refused with 413 (a fixture is at most 10 MB).",
    )
    embedding_cache_entries: int = Field(
        default=10_000, ge=0, le=1_000_000, description="Passages whose embeddings this process keeps, keyed by "
        "(model, text hash): a hundred episodes of one fixture embed its documents once; 0 = no cache.",
    )

    # --- logging -------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto: JSON unless stderr is a terminal."
    )

    # --- least privilege (issue 10) --------------------------------------------------------
    database_admin_url: SecretStr | None = Field(
        default=None,
        description="Owner/admin URL for DDL (migrations, provisioning, backup/restore, key management). Set: "
        "SUPPORT_MCP_DATABASE_URL is the request path's (app role's) URL. Unset: SUPPORT_MCP_DATABASE_URL (or the "
        "embedded server) is the admin if its user can create roles, and the request path connects as db_app_role.",
    )
    isolation: Literal["schema", "rls"] = Field(
        default="schema",
        description="How tenants are kept apart, fixed when a database is first set up: 'schema' (a schema and "
        "a role per tenant) or 'rls' (shared tables, a tenant_id column and forced row-level security).",
    )
    db_app_role: str = Field(
        default="support_mcp_app", pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="The non-superuser LOGIN role the request path connects as when the server manages it (one URL).",
    )
    db_app_password: SecretStr | None = Field(
        default=None,
        description="One URL only: the password the server sets for db_app_role and connects with. Unset: the "
        "server must accept the app role without one (trust/peer auth, as the embedded server does).",
    )

    # --- confirmation of destructive tools (issue 10) ------------------------------------
    confirm_fallback: bool = Field(
        default=False, description="on: destructive tools also accept the `confirm` argument (repeating the "
        "target's id) from clients that cannot show confirmation dialogs. The model can fill that argument in "
        "by itself, so it is off by default; per key: `keys create --allow-confirm-argument`.",
    )

    # --- replicas: shared rate limit, sessions, ingest bounds (issue 10) ---------------------
    redis_url: SecretStr | None = Field(
        default=None, description="redis://host:port/db. Set: the rate limit lives in Redis (exact moving window). "
        "Unset: in PostgreSQL, shared by every server process on the same database.",
    )
    rate_limit_batch: int = Field(
        default=20, ge=1, le=1000, description="PostgreSQL rate limit: tokens a process claims from a key's shared "
        "counter per round trip (at most a tenth of the limit). A key may be refused up to processes x (batch - 1) "
        "calls early in a window; never late.",
    )
    max_sessions_per_key: int = Field(
        default=16, ge=1, le=10_000, description="Open Streamable HTTP sessions (and SSE streams) per API key per "
        "process; one more gets HTTP 429.",
    )
    max_sessions: int = Field(
        default=2000, ge=1, le=1_000_000, description="Open Streamable HTTP sessions per process; one more gets 503.",
    )
    session_idle_seconds: float = Field(
        default=300, gt=0, le=86_400, description="A Streamable HTTP session with no request in flight for this long "
        "is closed (its id then answers 404 and the client initializes again).",
    )
    kb_max_document_chars: int = Field(
        default=200_000, ge=1000, le=2_000_000, description="Longest document ingest_document (and `docs ingest`) "
        "accepts, in characters.",
    )
    embedding_memory_arena: bool = Field(
        default=True, description="onnxruntime's CPU memory arena: faster embedding (~20% less CPU), but the "
        "process keeps its high-water mark, which grows toward ~1 GB at batch 16 (~0.8 GB after a 200,000-character "
        "document). Off: RSS returns to ~0.4 GB after an ingest.",
    )
    kb_max_ingests_per_key: int = Field(
        default=1, ge=1, le=64, description="Concurrent ingest_document calls per API key (per process); one more "
        "is refused at once with 'retry when it finishes'.",
    )

    # --- audit (issue 10) ------------------------------------------------------------------
    audit_buffer_rows: int = Field(
        default=100_000, ge=100, description="Audit rows held in memory while the database cannot take them; "
        "when full, the oldest are dropped and counted (status, logs).",
    )
    audit_batch_rows: int = Field(default=5_000, ge=1, le=100_000, description="Audit rows per COPY statement.")
    audit_stop_seconds: float = Field(
        default=5.0, ge=0, le=300, description="At shutdown, wait at most this long to store buffered audit rows; "
        "what is still pending then is counted as lost and logged.",
    )
    audit_backoff_max_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="Failed audit flushes back off exponentially up to this delay.",
    )
    audit_retention_days: int = Field(
        default=90, ge=0, description="Audit rows older than this many days are deleted (by the running server, "
        "and `support-mcp audit prune`); 0 keeps them forever.",
    )
    audit_prune_interval_seconds: float = Field(
        default=3600.0, ge=1, description="How often the running server prunes audit rows past retention.",
    )

    # --- OAuth 2.1 resource server (issue 11) ---------------------------------------------
    oauth_issuer: str | None = Field(
        default=None, pattern=r"^https?://[^\s?#]+$",
        description="The authorization server's issuer URL (exactly as in its metadata's `issuer`). Set: HTTP "
        "transports accept its access tokens beside API keys and publish protected resource metadata (RFC 9728).",
    )
    public_url: str | None = Field(
        default=None, pattern=r"^https?://[^\s?#]+$",
        description="The URL clients reach this server at (scheme://host[:port], no /mcp). Required with "
        "oauth_issuer unless oauth_audience is set.",
    )
    oauth_audience: str | None = Field(
        default=None, pattern=r"^https?://[^\s?#]+$",
        description="The resource (RFC 8707) tokens must be issued for: their `aud`. Default: public_url + '/mcp'.",
    )
    oauth_tenants_claim: str = Field(
        default="tenants", min_length=1, max_length=200,
        description="The claim holding the tenants a token grants: a list of slugs (or one space-separated "
        "string), or \"*\" for every tenant. A token without it grants nothing.",
    )
    oauth_scopes: dict[str, str] = Field(
        default_factory=lambda: {"read": "read", "write": "write", "admin": "admin", "refund": "refund"},
        description="Our scope -> the scope name the authorization server puts in `scope`/`scp` (JSON, e.g. "
        '{"read": "support:read", ...}). Our scopes missing here are never granted by a token.',
    )
    oauth_algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                                 "ES512", "EdDSA"],
        description="Signature algorithms accepted on access tokens (asymmetric only: `none` and HS* are "
        "refused at start).",
    )
    oauth_leeway_seconds: int = Field(default=30, ge=0, le=300,
                                      description="Clock skew allowed on exp/nbf/iat, in seconds.")
    oauth_jwks_cache_seconds: float = Field(
        default=3600, ge=10, le=86_400, description="How long the authorization server's keys (and metadata) are "
        "used before they are fetched again.",
    )
    oauth_jwks_min_refetch_seconds: float = Field(
        default=30, ge=0, le=3600, description="A token naming an unknown `kid` fetches the keys again at most "
        "once per this many seconds (an attacker cannot make us hammer the authorization server).",
    )
    oauth_http_timeout_seconds: float = Field(
        default=5, gt=0, le=60, description="Timeout for each request to the authorization server (metadata, "
        "keys, introspection); past it the client gets 503 + Retry-After.",
    )
    oauth_max_token_bytes: int = Field(
        default=16_384, ge=1024, le=1_048_576, description="Longer bearer tokens are refused (401) unread.",
    )
    oauth_introspection_url: str | None = Field(
        default=None, pattern=r"^https?://[^\s?#]+$",
        description="RFC 7662 introspection endpoint for opaque (non-JWT) access tokens. Unset: only JWTs.",
    )
    oauth_client_id: str | None = Field(default=None, description="This server's client id at the introspection "
                                        "endpoint (HTTP Basic).")
    oauth_client_secret: SecretStr | None = Field(default=None, description="Its client secret.")

    # --- metrics (issue 11) ------------------------------------------------------------------
    metrics: bool = Field(
        default=False, description="on: GET /metrics on the HTTP server (Prometheus text format) for the holder of "
        "SUPPORT_MCP_METRICS_TOKEN or an API key granted every tenant.",
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="A bearer token for scraping /metrics (give it to Prometheus as "
        "`authorization: {credentials: ...}`); unset: only an all-tenant API key may scrape.",
    )
    metrics_tenant_label: bool = Field(
        default=False, description="on: support_mcp_tool_calls_total also carries a `tenant` label (the slug of "
        "the tenant a call was let into; empty otherwise). Anyone who may scrape sees every tenant's slug.",
    )

    @model_validator(mode="after")
    def _check_oauth(self) -> Settings:
        bad = [a for a in self.oauth_algorithms if a.lower() == "none" or a.upper().startswith("HS")]
        if bad:
            raise ValueError(f"oauth_algorithms: {', '.join(bad)} cannot verify a token signed by an "
                             "authorization server's public key; use asymmetric algorithms only")
        if self.oauth_issuer and not (self.oauth_audience or self.public_url):
            raise ValueError("oauth_issuer needs SUPPORT_MCP_PUBLIC_URL (or SUPPORT_MCP_OAUTH_AUDIENCE): the "
                             "resource tokens must be issued for")
        if self.oauth_introspection_url and not (self.oauth_client_id and self.oauth_client_secret):
            raise ValueError("oauth_introspection_url needs oauth_client_id and oauth_client_secret")
        return self

    @property
    def oauth_resource(self) -> str | None:
        """The resource identifier tokens must name (aud), or None without OAuth."""
        if not self.oauth_issuer:
            return None
        return self.oauth_audience or f"{(self.public_url or '').rstrip('/')}/mcp"
