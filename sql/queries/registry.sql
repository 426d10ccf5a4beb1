-- Tenant registry (public.tenants). Global queries are schema-qualified; they never run
-- inside a tenant scope (the tenant role cannot read this table).

-- name: list-tenants()
SELECT id, slug, name, status, stripe_account_id, rag_index_namespace, created_at, updated_at,
       branding, policies, stripe_webhook_secret IS NOT NULL AS has_webhook_secret
FROM public.tenants
ORDER BY slug;

-- name: list-tenant-slugs()
SELECT slug FROM public.tenants ORDER BY slug;

-- name: active-tenant-names(slugs, limit)
-- The request path (app role): active tenants among `slugs` (NULL: every tenant), by slug.
SELECT slug, name FROM public.tenants
WHERE status = 'active' AND (CAST(:slugs AS text[]) IS NULL OR slug = ANY (CAST(:slugs AS text[])))
ORDER BY slug
LIMIT :limit;

-- name: get-tenant(slug)^
SELECT id, slug, name, schema_name, role_name, stripe_account_id, stripe_webhook_secret,
       rag_index_namespace, status, branding, policies, created_at, updated_at
FROM public.tenants
WHERE slug = :slug;

-- name: tenant-status(slug)$
SELECT status FROM public.tenants WHERE slug = :slug;

-- name: tenant-exists(slug)$
SELECT EXISTS (SELECT 1 FROM public.tenants WHERE slug = :slug);

-- name: role-exists(role_name)$
SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = :role_name);

-- name: schema-exists(schema_name)$
SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = :schema_name);

-- name: insert-tenant(id, slug, name, schema_name, role_name, stripe_account_id, stripe_webhook_secret, rag_index_namespace, status, branding, policies)$
INSERT INTO public.tenants
    (id, slug, name, schema_name, role_name, stripe_account_id, stripe_webhook_secret,
     rag_index_namespace, status, branding, policies)
VALUES (coalesce(:id, gen_random_uuid()), :slug, :name, :schema_name, :role_name,
        :stripe_account_id, :stripe_webhook_secret, :rag_index_namespace,
        coalesce(:status, 'active'), coalesce(:branding, '{}'::jsonb), coalesce(:policies, ''))
RETURNING id;

-- name: set-tenant-status(slug, status)$
UPDATE public.tenants SET status = :status, updated_at = now()
WHERE slug = :slug
RETURNING slug;

-- name: delete-tenant(slug)$
DELETE FROM public.tenants WHERE slug = :slug RETURNING schema_name;

-- name: count-tenants()$
SELECT count(*) FROM public.tenants;

-- name: get-tenant-profile(slug)^
SELECT slug, name, branding, policies FROM public.tenants WHERE slug = :slug;

-- name: get-tenant-kb(slug)^
SELECT rag_index_namespace, allow_global_docs FROM public.tenants WHERE slug = :slug;

-- name: set-allow-global-docs(slug, allowed)$
UPDATE public.tenants SET allow_global_docs = :allowed, updated_at = now()
WHERE slug = :slug RETURNING slug;

-- name: update-tenant-profile(slug, name, policies, branding)$
UPDATE public.tenants SET name = coalesce(:name, name), policies = coalesce(:policies, policies),
                          branding = coalesce(:branding, branding), updated_at = now()
WHERE slug = :slug RETURNING slug;
