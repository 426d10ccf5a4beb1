-- Global schema kind, version 1: the tenant registry, the cross-tenant `global` schema and
-- the function that is the database half of the one scoping point.

CREATE SCHEMA IF NOT EXISTS "global";
REVOKE ALL ON SCHEMA "global" FROM PUBLIC;

CREATE TABLE public.tenants (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug                  text NOT NULL UNIQUE CHECK (slug ~ '^[a-z_][a-z0-9_]{0,39}$'),
    name                  text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    schema_name           text NOT NULL UNIQUE,
    role_name             text NOT NULL UNIQUE,
    stripe_account_id     text CHECK (stripe_account_id ~ '^acct_[A-Za-z0-9]{1,64}$'),
    stripe_webhook_secret text CHECK (stripe_webhook_secret ~ '^whsec_[A-Za-z0-9+/=_-]{1,200}$'),
    rag_index_namespace   text NOT NULL CHECK (rag_index_namespace ~ '^[A-Za-z0-9_-]{1,100}$'),
    status                text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    branding              jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(branding) = 'object'),
    policies              text NOT NULL DEFAULT '' CHECK (length(policies) <= 100000),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
-- Holds every tenant's webhook secret: no tenant role (nor PUBLIC) may read it.
REVOKE ALL ON public.tenants FROM PUBLIC;

-- The scoping point's SQL half. Called first in every tenant transaction: looks the tenant
-- up, refuses unknown and suspended tenants, then sets search_path and role for the rest of
-- the transaction only (is_local = true). Raises SQLSTATE SM404 / SM423 for the caller to map.
-- No SET clause on purpose: it would undo the set_config calls when the function returns.
CREATE FUNCTION public.support_mcp_enter_tenant(p_slug text, p_allow_suspended boolean)
RETURNS uuid
LANGUAGE plpgsql
AS $$
DECLARE
    t record;
BEGIN
    SELECT id, status, schema_name, role_name INTO t FROM public.tenants WHERE slug = p_slug;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown tenant' USING ERRCODE = 'SM404';
    END IF;
    IF t.status <> 'active' AND NOT p_allow_suspended THEN
        RAISE EXCEPTION 'tenant suspended' USING ERRCODE = 'SM423';
    END IF;
    PERFORM pg_catalog.set_config('search_path', pg_catalog.quote_ident(t.schema_name), true);
    PERFORM pg_catalog.set_config('role', t.role_name, true);
    RETURN t.id;
END
$$;
REVOKE ALL ON FUNCTION public.support_mcp_enter_tenant(text, boolean) FROM PUBLIC;
