-- Global schema kind, version 2: API keys with tenant grants, the audit log and feedback.
-- Cross-tenant tables live in schema "global", keyed by tenant_id; no tenant role can read them.

CREATE TABLE "global".api_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    prefix       text NOT NULL UNIQUE CHECK (prefix ~ '^[a-f0-9]{8}$'),
    key_hash     bytea NOT NULL,           -- sha256 of the whole key; the key itself is never stored
    all_tenants  boolean NOT NULL DEFAULT false,
    scopes       text[] NOT NULL CHECK (scopes <@ ARRAY['read', 'write', 'refund', 'admin']::text[]
                                        AND cardinality(scopes) >= 1),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE "global".api_key_tenants (
    key_id    uuid NOT NULL REFERENCES "global".api_keys (id) ON DELETE CASCADE,
    tenant_id uuid NOT NULL REFERENCES public.tenants (id) ON DELETE CASCADE,
    PRIMARY KEY (key_id, tenant_id)
);
CREATE INDEX api_key_tenants_tenant_idx ON "global".api_key_tenants (tenant_id);

CREATE TABLE "global".audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL,
    tenant_id   uuid,                      -- null when the call named no (known, granted) tenant
    tenant_slug text,                      -- as asked (validated slugs only; else null)
    key_id      uuid,
    principal   text NOT NULL,
    tool        text NOT NULL,
    outcome     text NOT NULL,             -- ok, or the error kind
    duration_ms real NOT NULL,
    arguments   jsonb NOT NULL DEFAULT '{}'::jsonb   -- masked
);
CREATE INDEX audit_log_at_idx ON "global".audit_log (at);
CREATE INDEX audit_log_tenant_at_idx ON "global".audit_log (tenant_id, at);

CREATE TABLE "global".feedback (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid NOT NULL REFERENCES public.tenants (id) ON DELETE CASCADE,
    ticket_id     uuid NOT NULL,
    ticket_number bigint NOT NULL,
    rating        smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment       text CHECK (length(comment) <= 5000),
    key_id        uuid,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feedback_tenant_idx ON "global".feedback (tenant_id, created_at);
