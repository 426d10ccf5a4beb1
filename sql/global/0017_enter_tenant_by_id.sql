-- Global schema kind, version 17: the schema-mode scoping point in one round trip. The scoping
-- point sends BEGIN and a call of this function as one simple query, built from a checked slug and
-- the id it looked up before (kept per process: ids never change), so the function returns
-- nothing. It checks that slug and id are still one tenant (a stale id, from a tenant deleted and
-- created again, fails like an unknown slug and the caller looks it up once more), then does what
-- support_mcp_enter_tenant(text, boolean) does: search_path and role for the transaction only.
CREATE FUNCTION public.support_mcp_enter_tenant(p_slug text, p_id uuid, p_allow_suspended boolean)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    t record;
BEGIN
    SELECT status, schema_name, role_name INTO t FROM public.tenants WHERE slug = p_slug AND id = p_id;
    IF NOT FOUND OR t.schema_name IS NULL THEN
        RAISE EXCEPTION 'unknown tenant' USING ERRCODE = 'SM404';
    END IF;
    IF t.status <> 'active' AND NOT p_allow_suspended THEN
        RAISE EXCEPTION 'tenant suspended' USING ERRCODE = 'SM423';
    END IF;
    PERFORM pg_catalog.set_config('search_path', pg_catalog.quote_ident(t.schema_name), true);
    PERFORM pg_catalog.set_config('role', t.role_name, true);
END
$$;
REVOKE ALL ON FUNCTION public.support_mcp_enter_tenant(text, uuid, boolean) FROM PUBLIC;
