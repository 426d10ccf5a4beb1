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

-- name: delete-api-key(id)$
DELETE FROM "global".api_keys WHERE id = :id RETURNING name;

-- name: episode-key-by-tenant(slug)$
-- A half-made episode's key (creation failed before the row named it): the one named after an episode.
SELECT k.id FROM "global".api_keys k
JOIN "global".api_key_tenants g ON g.key_id = k.id
JOIN public.tenants t ON t.id = g.tenant_id
WHERE t.slug = :slug AND k.name LIKE 'episode:%'
LIMIT 1;

-- name: tenant-namespace(slug)$
SELECT rag_index_namespace FROM public.tenants WHERE slug = :slug;

-- name: get-episode-fixture(id)^
SELECT e.id, t.slug AS tenant, e.key_id, e.fixture, t.rag_index_namespace
FROM "global".episodes e JOIN public.tenants t ON t.id = e.tenant_id
WHERE e.id = :id;

-- name: expired-episodes(limit)
SELECT e.id FROM "global".episodes e WHERE e.expires_at <= now() ORDER BY e.expires_at LIMIT :limit;

-- name: reset-tenant-profile(slug, name, policies)$
-- reset: the tenant's name and policies back to the fixture's (a fresh episode's when it has none)
UPDATE public.tenants SET name = :name, policies = :policies, updated_at = now() WHERE slug = :slug RETURNING id;

-- name: tenant-tables()
-- reset (schema mode), inside THE scoping point's transaction: the tables of the scoped schema
-- (service.reset empties them as the tenant role, which owns them), never the migration ledger. RLS
-- mode never lists or truncates tables: isolation.empty_tenant_rows deletes the tenant's rows.
SELECT tablename::text AS name FROM pg_catalog.pg_tables
WHERE schemaname = pg_catalog.current_schema() AND tablename <> 'schema_migrations'
ORDER BY tablename;

-- name: document-hashes()
SELECT source_uri, content_hash FROM documents;

-- Warm pool (sql/global/0010).

-- name: insert-spare(slug)!
INSERT INTO "global".episode_spares (tenant_id) SELECT id FROM public.tenants WHERE slug = :slug;

-- name: count-spares()$
SELECT count(*) FROM "global".episode_spares;

-- name: claim-spare(name, policies)$
-- The oldest spare nobody else is claiming; it becomes active with the episode's name and policies and
-- today's dates, like a tenant provisioned right now.
WITH claimed AS (
    DELETE FROM "global".episode_spares s
    WHERE s.tenant_id = (SELECT tenant_id FROM "global".episode_spares ORDER BY created_at
                         LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING s.tenant_id
)
UPDATE public.tenants t
SET status = 'active', name = coalesce(:name, 'Episode ' || t.slug), policies = coalesce(:policies, ''),
    created_at = now(), updated_at = now()
FROM claimed WHERE t.id = claimed.tenant_id AND t.status = 'suspended'
RETURNING t.slug;

-- name: orphan-spares(spare_name)
-- Left by a crash between provisioning a spare and recording it: suspended episode slugs named as a
-- spare with neither row, an hour old.
SELECT t.slug FROM public.tenants t
WHERE t.slug LIKE 'ep\_%' AND t.name = :spare_name AND t.status = 'suspended'
  AND t.created_at < now() - interval '1 hour'
  AND NOT EXISTS (SELECT FROM "global".episodes e WHERE e.tenant_id = t.id)
  AND NOT EXISTS (SELECT FROM "global".episode_spares s WHERE s.tenant_id = t.id);

-- name: take-spares()
DELETE FROM "global".episode_spares s USING public.tenants t
WHERE t.id = s.tenant_id RETURNING t.slug, t.rag_index_namespace;
