-- Global schema kind, version 7: a key may be allowed to confirm destructive tools with the
-- `confirm` argument (for clients that cannot show confirmation dialogs). Off by default.
ALTER TABLE "global".api_keys ADD COLUMN allow_confirm_argument boolean NOT NULL DEFAULT false;

-- The request path reads the flag through the key-verification function (version 5): recreate it
-- with the extra column (sql/privileges/grants.sql grants EXECUTE again on every start).
DROP FUNCTION public.support_mcp_key_by_prefix(text);
CREATE FUNCTION public.support_mcp_key_by_prefix(p_prefix text)
RETURNS TABLE (id uuid, name text, key_hash bytea, all_tenants boolean, scopes text[],
               expires_at timestamptz, revoked_at timestamptz, allow_confirm_argument boolean, tenants text[])
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT k.id, k.name, k.key_hash, k.all_tenants, k.scopes, k.expires_at, k.revoked_at, k.allow_confirm_argument,
       ARRAY(SELECT t.slug FROM "global".api_key_tenants g JOIN public.tenants t ON t.id = g.tenant_id
             WHERE g.key_id = k.id ORDER BY t.slug)
FROM "global".api_keys k
WHERE k.prefix = p_prefix
$$;
REVOKE ALL ON FUNCTION public.support_mcp_key_by_prefix(text) FROM PUBLIC;
