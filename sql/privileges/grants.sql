-- Exactly what the request path (tools, resources, webhooks, the key verifier, the audit
-- writer) needs, granted to the app role {app}. Re-run as the admin after the global
-- migrations on every start, so it is the one place to extend: a global table or function
-- the request path uses gets its GRANT here. Secrets are reached only through the SECURITY
-- DEFINER functions of sql/global/0005 (never the api_keys table or the secret column).
GRANT USAGE ON SCHEMA public, "global" TO {app};

-- The registry: every column but stripe_webhook_secret (a column added later stays unreadable
-- until it is listed here).
GRANT SELECT (id, slug, name, schema_name, role_name, stripe_account_id, rag_index_namespace, status,
              branding, policies, allow_global_docs, created_at, updated_at)
    ON public.tenants TO {app};

GRANT EXECUTE ON FUNCTION
    public.support_mcp_enter_tenant(text, boolean),   -- the scoping point (reads the registry as the app role)
    public.support_mcp_enter_tenant(text, uuid, boolean),   -- its one-round-trip form (sql/global/0017)
    public.support_mcp_key_by_prefix(text),           -- key verification: one prefix's row
    public.support_mcp_touch_keys(uuid[]),            -- api_keys.last_used_at
    public.support_mcp_tenant_stripe(text)            -- one tenant's webhook secret, by slug
    TO {app};

GRANT SELECT ON public.support_mcp_isolation TO {app};   -- the isolation mode (sql/global/0016)
GRANT INSERT ON "global".audit_log TO {app};         -- the audit writer (COPY); it cannot read the log
GRANT INSERT, SELECT (id, rating, created_at) ON "global".feedback TO {app};
-- the shared rate limit (sql/global/0008): one upsert per claimed batch, a sweep of ended windows
GRANT SELECT, INSERT, UPDATE, DELETE ON "global".rate_limit_windows TO {app};

-- Every tenant role: SET ROLE only (the app role is NOINHERIT). Provisioning and restore grant
-- new tenant roles the same way.
DO $$
DECLARE
    r text;
BEGIN
    FOR r IN SELECT t.role_name FROM public.tenants t
             WHERE NOT pg_catalog.pg_has_role('{app_name}', t.role_name, 'MEMBER') LOOP
        EXECUTE pg_catalog.format('GRANT %I TO %I', r, '{app_name}');
    END LOOP;
END
$$;
