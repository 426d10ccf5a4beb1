-- Global schema kind, version 6: deleting a tenant deletes its audit rows; audit retention.

-- Rows are found by the slug too (calls refused before the tenant was reached carry only it).
CREATE INDEX audit_log_slug_at_idx ON "global".audit_log (tenant_slug, at);

-- Tenants deleted in the last 7 days. A server may still hold audit rows of such a tenant in
-- its buffer (calls in flight, a database outage) and store them after the deletion: the
-- prune below removes those too. No personal data: the id and the slug only.
CREATE TABLE "global".deleted_tenants (
    tenant_id  uuid PRIMARY KEY,
    slug       text NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON "global".deleted_tenants FROM PUBLIC;

-- Retention, callable by the request-path role without a DELETE grant on the audit log: it
-- removes rows older than p_days (at least 1: the running server cannot empty the trail) in
-- batches of p_batch, and rows of deleted tenants stored after their deletion. Returns how
-- many rows went; call again while it returns p_batch or more.
CREATE FUNCTION "global".support_mcp_prune_audit(p_days integer, p_batch integer)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint := 0;
    m bigint;
BEGIN
    IF p_days IS NULL OR p_days < 1 OR p_batch IS NULL OR p_batch < 1 THEN
        RAISE EXCEPTION 'retention needs at least 1 day and a positive batch' USING ERRCODE = '22023';
    END IF;
    DELETE FROM "global".audit_log a USING "global".deleted_tenants d WHERE a.tenant_id = d.tenant_id;
    GET DIAGNOSTICS m = ROW_COUNT;
    n := n + m;
    DELETE FROM "global".audit_log a USING "global".deleted_tenants d
    WHERE a.tenant_id IS NULL AND a.tenant_slug = d.slug AND a.at <= d.deleted_at;
    GET DIAGNOSTICS m = ROW_COUNT;
    n := n + m;
    DELETE FROM "global".deleted_tenants WHERE deleted_at < now() - interval '7 days';
    DELETE FROM "global".audit_log WHERE id IN (
        SELECT id FROM "global".audit_log WHERE at < now() - make_interval(days => p_days)
        ORDER BY at LIMIT p_batch FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS m = ROW_COUNT;
    RETURN n + m;
END
$$;
REVOKE ALL ON FUNCTION "global".support_mcp_prune_audit(integer, integer) FROM PUBLIC;
