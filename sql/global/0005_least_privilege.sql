-- Global schema kind, version 5: what the request path (the app role) may read of the secrets,
-- through narrow SECURITY DEFINER functions owned by the admin. The app role has no privilege on
-- "global".api_keys nor on public.tenants.stripe_webhook_secret; sql/privileges/grants.sql
-- grants EXECUTE on these functions to it. search_path is pinned and every name qualified.

-- The key row (hash, scopes, granted tenant slugs) for one key prefix: what one verification needs.
CREATE FUNCTION public.support_mcp_key_by_prefix(p_prefix text)
RETURNS TABLE (id uuid, name text, key_hash bytea, all_tenants boolean, scopes text[],
               expires_at timestamptz, revoked_at timestamptz, tenants text[])
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT k.id, k.name, k.key_hash, k.all_tenants, k.scopes, k.expires_at, k.revoked_at,
       ARRAY(SELECT t.slug FROM "global".api_key_tenants g JOIN public.tenants t ON t.id = g.tenant_id
             WHERE g.key_id = k.id ORDER BY t.slug)
FROM "global".api_keys k
WHERE k.prefix = p_prefix
$$;
REVOKE ALL ON FUNCTION public.support_mcp_key_by_prefix(text) FROM PUBLIC;

-- last_used_at of the keys seen since the last audit flush.
CREATE FUNCTION public.support_mcp_touch_keys(p_ids uuid[])
RETURNS void
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
UPDATE "global".api_keys SET last_used_at = now() WHERE id = ANY (p_ids)
$$;
REVOKE ALL ON FUNCTION public.support_mcp_touch_keys(uuid[]) FROM PUBLIC;

-- One tenant's Stripe facts, webhook secret included, for one slug (webhook signature checks).
CREATE FUNCTION public.support_mcp_tenant_stripe(p_slug text)
RETURNS TABLE (id uuid, status text, stripe_account_id text, stripe_webhook_secret text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT t.id, t.status, t.stripe_account_id, t.stripe_webhook_secret FROM public.tenants t WHERE t.slug = p_slug
$$;
REVOKE ALL ON FUNCTION public.support_mcp_tenant_stripe(text) FROM PUBLIC;
