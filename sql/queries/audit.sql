-- Audit log and feedback (schema "global"; app role only).

-- name: list-audit(slug, since, limit)
SELECT at, tenant_slug, tool, outcome, duration_ms, principal, key_id, arguments
FROM "global".audit_log
WHERE (CAST(:slug AS text) IS NULL OR tenant_slug = :slug)
  AND (CAST(:since AS timestamptz) IS NULL OR at >= :since)
ORDER BY at DESC, id DESC
LIMIT :limit;

-- name: insert-feedback(tenant_id, ticket_id, ticket_number, rating, comment, key_id)^
INSERT INTO "global".feedback (tenant_id, ticket_id, ticket_number, rating, comment, key_id)
VALUES (:tenant_id, :ticket_id, :ticket_number, :rating, :comment, :key_id)
RETURNING id, rating, created_at;

-- name: audit-stats(since)
-- Calls per tenant: those that reached the tenant (tenant_id), and those stopped before it (only
-- the slug as asked is known then) by a key granted that tenant. A caller that may not use the
-- tenant (another tenant's key, no key) is never charged to the tenant it named.
SELECT t.id AS tenant_id,
       count(*) AS calls,
       count(*) FILTER (WHERE a.outcome <> 'ok') AS errors,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY a.duration_ms) AS p50_ms
FROM "global".audit_log a
JOIN public.tenants t ON t.id = a.tenant_id OR (
    a.tenant_id IS NULL AND t.slug = a.tenant_slug AND EXISTS (
        SELECT 1 FROM "global".api_keys k
        WHERE k.id = a.key_id
          AND (k.all_tenants OR EXISTS (SELECT 1 FROM "global".api_key_tenants g
                                        WHERE g.key_id = k.id AND g.tenant_id = t.id))))
WHERE CAST(:since AS timestamptz) IS NULL OR a.at >= :since
GROUP BY t.id;

-- name: feedback-stats(since)
SELECT tenant_id, count(*) AS ratings, avg(rating)::float AS avg_rating
FROM "global".feedback
WHERE CAST(:since AS timestamptz) IS NULL OR created_at >= :since
GROUP BY tenant_id;

-- name: prune-audit(days, batch)$
-- Retention (see sql/global/0006): rows older than `days`, at most `batch` per call.
SELECT "global".support_mcp_prune_audit(:days, :batch);

-- name: delete-tenant-audit(tenant_id, slug)$
-- Deleting a tenant: its audit rows, by id and by the slug as asked.
WITH gone AS (
    DELETE FROM "global".audit_log WHERE tenant_id = :tenant_id OR tenant_slug = :slug RETURNING 1
)
SELECT count(*) FROM gone;

-- name: delete-tenant-feedback(tenant_id)$
WITH gone AS (DELETE FROM "global".feedback WHERE tenant_id = :tenant_id RETURNING 1)
SELECT count(*) FROM gone;

-- name: delete-tenant-key-grants(tenant_id)$
WITH gone AS (DELETE FROM "global".api_key_tenants WHERE tenant_id = :tenant_id RETURNING 1)
SELECT count(*) FROM gone;

-- name: insert-deleted-tenant(tenant_id, slug)!
INSERT INTO "global".deleted_tenants (tenant_id, slug) VALUES (:tenant_id, :slug)
ON CONFLICT (tenant_id) DO UPDATE SET deleted_at = now();
