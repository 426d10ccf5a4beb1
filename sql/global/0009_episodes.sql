-- Global schema kind, version 9: evaluation episodes (issue 12). An episode is a tenant created
-- for one evaluation run, seeded from a fixture, with one API key granted only that tenant. This
-- row is what makes a tenant an episode: `episodes destroy` refuses anything without one, so a
-- real tenant can never be destroyed as an episode. Deleting the tenant deletes the row.
-- Admin-only (the request path reads nothing here: no grant).
CREATE TABLE "global".episodes (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid NOT NULL UNIQUE REFERENCES public.tenants (id) ON DELETE CASCADE,
    key_id         uuid REFERENCES "global".api_keys (id) ON DELETE SET NULL,
    fixture_sha256 text NOT NULL CHECK (fixture_sha256 ~ '^[0-9a-f]{64}$'),
    fixture        jsonb NOT NULL CHECK (jsonb_typeof(fixture) = 'object'),
    expires_at     timestamptz NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX episodes_expires_idx ON "global".episodes (expires_at);
REVOKE ALL ON "global".episodes FROM PUBLIC;
