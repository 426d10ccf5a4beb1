-- Global schema kind, version 10: the `episodes` scope and the warm pool of spare episode tenants
-- (issue 12).

-- 1. Keys may hold the `episodes` scope: the admin API (POST /admin/episodes ...) for evaluation
--    harnesses. Such a key reaches tenant data of episodes only (point 2).
ALTER TABLE "global".api_keys DROP CONSTRAINT api_keys_scopes_check,
    ADD CONSTRAINT api_keys_scopes_check
        CHECK (scopes <@ ARRAY['read', 'write', 'refund', 'admin', 'episodes']::text[] AND cardinality(scopes) >= 1);

-- 2. Key verification (version 7's function, same columns): a key with the `episodes` scope is never
--    an all-tenants key and is granted only tenants that are episodes (of its grants, or every
--    episode when it was created with --all-tenants). A real tenant then answers exactly like a
--    missing one, and the request path needs no read access to "global".episodes.
CREATE OR REPLACE FUNCTION public.support_mcp_key_by_prefix(p_prefix text)
RETURNS TABLE (id uuid, name text, key_hash bytea, all_tenants boolean, scopes text[],
               expires_at timestamptz, revoked_at timestamptz, allow_confirm_argument boolean, tenants text[])
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT k.id, k.name, k.key_hash, k.all_tenants AND NOT ('episodes' = ANY (k.scopes)), k.scopes, k.expires_at,
       k.revoked_at, k.allow_confirm_argument,
       CASE WHEN 'episodes' = ANY (k.scopes) THEN
           ARRAY(SELECT t.slug FROM "global".episodes e JOIN public.tenants t ON t.id = e.tenant_id
                 WHERE k.all_tenants
                    OR EXISTS (SELECT FROM "global".api_key_tenants g WHERE g.key_id = k.id AND g.tenant_id = t.id)
                 ORDER BY t.slug)
       ELSE
           ARRAY(SELECT t.slug FROM "global".api_key_tenants g JOIN public.tenants t ON t.id = g.tenant_id
                 WHERE g.key_id = k.id ORDER BY t.slug)
       END
FROM "global".api_keys k
WHERE k.prefix = p_prefix
$$;
REVOKE ALL ON FUNCTION public.support_mcp_key_by_prefix(text) FROM PUBLIC;

-- 3. The warm pool: tenants provisioned ahead (the same create_tenant as any tenant: schema, role,
--    grants, tenant migrations) and kept suspended, so no request reaches them, until an episode
--    claims one (episodes/pool.py). A claim deletes the row; deleting the tenant deletes it too.
--    Admin-only (no grant).
CREATE TABLE "global".episode_spares (
    tenant_id  uuid PRIMARY KEY REFERENCES public.tenants (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX episode_spares_created_idx ON "global".episode_spares (created_at);
REVOKE ALL ON "global".episode_spares FROM PUBLIC;
