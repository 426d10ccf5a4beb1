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
    st text;
    path text;
    role text;
BEGIN
    -- one statement (each is an executor run of its own): check and set; a refused tenant raises
    -- below, which aborts the transaction, and the settings with it
    SELECT status, pg_catalog.set_config('search_path', pg_catalog.quote_ident(schema_name), true),
           pg_catalog.set_config('role', role_name, true)
      INTO st, path, role
      FROM public.tenants WHERE slug = p_slug AND id = p_id AND schema_name IS NOT NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown tenant' USING ERRCODE = 'SM404';
    END IF;
    IF st <> 'active' AND NOT p_allow_suspended THEN
        RAISE EXCEPTION 'tenant suspended' USING ERRCODE = 'SM423';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION public.support_mcp_enter_tenant(text, uuid, boolean) FROM PUBLIC;
