-- RLS mode only (SUPPORT_MCP_ISOLATION=rls): the app role {app} reads and writes the shared
-- tenant tables, always through their row-level security policies (it owns none of them and is
-- not BYPASSRLS). Re-run as the admin after the shared migrations on every start.
GRANT USAGE ON SCHEMA shared TO {app};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA shared TO {app};
GRANT USAGE ON ALL SEQUENCES IN SCHEMA shared TO {app};
GRANT EXECUTE ON FUNCTION public.support_mcp_enter_shared(text, uuid, boolean) TO {app};
