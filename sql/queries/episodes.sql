-- Evaluation episodes (schema "global", sql/global/0009). Admin only.

-- name: insert-episode(id, slug, fixture_sha256, fixture, expires_at, deterministic, clock)^
INSERT INTO "global".episodes (id, tenant_id, fixture_sha256, fixture, expires_at, deterministic, clock)
SELECT :id, t.id, :fixture_sha256, :fixture, :expires_at, :deterministic, :clock
FROM public.tenants t WHERE t.slug = :slug
RETURNING id, expires_at, created_at;

-- name: set-episode-key(id, key_id)!
UPDATE "global".episodes SET key_id = :key_id WHERE id = :id;

-- name: get-episode(id)^
SELECT e.id, t.slug AS tenant, e.key_id, e.fixture_sha256, e.deterministic, e.clock, e.expires_at, e.created_at
FROM "global".episodes e JOIN public.tenants t ON t.id = e.tenant_id
WHERE e.id = :id;

-- name: list-episodes()
SELECT e.id, t.slug AS tenant, e.key_id, e.fixture_sha256, e.deterministic, e.clock, e.expires_at, e.created_at
FROM "global".episodes e JOIN public.tenants t ON t.id = e.tenant_id
ORDER BY e.created_at, e.id;

-- name: delete-api-key(id)!
DELETE FROM "global".api_keys WHERE id = :id;

-- name: episode-key-by-tenant(slug)$
-- A half-made episode's key (creation failed before the row named it): the one named after an episode.
SELECT k.id FROM "global".api_keys k
JOIN "global".api_key_tenants g ON g.key_id = k.id
JOIN public.tenants t ON t.id = g.tenant_id
WHERE t.slug = :slug AND k.name LIKE 'episode:%'
LIMIT 1;

-- name: tenant-namespace(slug)$
SELECT rag_index_namespace FROM public.tenants WHERE slug = :slug;
