-- API keys and grants (schema "global"). Key management runs as the admin; the request path
-- (app role) only verifies and touches keys, through functions.

-- name: insert-api-key(name, prefix, key_hash, all_tenants, scopes, expires_at, allow_confirm_argument)^
INSERT INTO "global".api_keys (name, prefix, key_hash, all_tenants, scopes, expires_at, allow_confirm_argument)
VALUES (:name, :prefix, :key_hash, :all_tenants, :scopes, :expires_at, :allow_confirm_argument)
RETURNING id, name, prefix, all_tenants, scopes, expires_at, created_at;

-- name: grant-api-key-tenant(key_id, slug)$
INSERT INTO "global".api_key_tenants (key_id, tenant_id)
SELECT :key_id, id FROM public.tenants WHERE slug = :slug
RETURNING tenant_id;

-- name: get-api-key-by-prefix(prefix)^
-- The request path (app role) cannot read api_keys: a SECURITY DEFINER function (sql/global/0005, 0007).
SELECT id, name, key_hash, all_tenants, scopes, expires_at, revoked_at, allow_confirm_argument, tenants
FROM public.support_mcp_key_by_prefix(:prefix);

-- name: list-api-keys()
SELECT k.id, k.name, k.prefix, k.all_tenants, k.scopes, k.expires_at, k.last_used_at, k.revoked_at,
       k.created_at, k.allow_confirm_argument, k.replaced_by,
       ARRAY(SELECT t.slug FROM "global".api_key_tenants g JOIN public.tenants t ON t.id = g.tenant_id
             WHERE g.key_id = k.id ORDER BY t.slug) AS tenants
FROM "global".api_keys k
ORDER BY k.created_at;

-- name: revoke-api-key(id)$
UPDATE "global".api_keys SET revoked_at = coalesce(revoked_at, now())
WHERE id = :id
RETURNING id;

-- name: count-active-api-keys()$
SELECT count(*) FROM "global".api_keys
WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now());

-- name: touch-api-keys(ids)!
SELECT public.support_mcp_touch_keys(CAST(:ids AS uuid[]));

-- name: get-api-key(id)^
SELECT k.id, k.name, k.prefix, k.all_tenants, k.scopes, k.expires_at, k.last_used_at, k.revoked_at,
       k.created_at, k.allow_confirm_argument, k.replaced_by,
       ARRAY(SELECT t.slug FROM "global".api_key_tenants g JOIN public.tenants t ON t.id = g.tenant_id
             WHERE g.key_id = k.id ORDER BY t.slug) AS tenants
FROM "global".api_keys k
WHERE k.id = :id;

-- name: lock-api-key(id)^
SELECT id, name, all_tenants, scopes, expires_at, revoked_at, allow_confirm_argument, replaced_by
FROM "global".api_keys
WHERE id = :id
FOR UPDATE;

-- name: is-episode-key(id)$
SELECT EXISTS (SELECT 1 FROM "global".episodes WHERE key_id = :id);

-- name: copy-api-key-grants(from_id, to_id)!
INSERT INTO "global".api_key_tenants (key_id, tenant_id)
SELECT :to_id, tenant_id FROM "global".api_key_tenants WHERE key_id = :from_id;

-- name: retire-api-key(id, expires_at, replaced_by)^
-- Rotation: the old key expires at the end of the grace period (never later than it would have).
UPDATE "global".api_keys
SET expires_at = least(coalesce(expires_at, :expires_at), :expires_at), replaced_by = :replaced_by
WHERE id = :id
RETURNING expires_at;
