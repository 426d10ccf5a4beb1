-- Global schema kind, version 16: the isolation mode (SUPPORT_MCP_ISOLATION), fixed when the
-- database is first set up. 'schema': a schema and a role per tenant (sql/tenant). 'rls': the
-- tenant tables exist once, shared by every tenant, separated by tenant_id and forced row-level
-- security (sql/shared). The server records its setting on first start (a database that already
-- has tenants is 'schema') and refuses to start with the other value.
CREATE TABLE public.support_mcp_isolation (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    mode      text NOT NULL CHECK (mode IN ('schema', 'rls')),
    chosen_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON public.support_mcp_isolation FROM PUBLIC;

-- In RLS mode a tenant has no schema and no role of its own.
ALTER TABLE public.tenants ALTER COLUMN schema_name DROP NOT NULL, ALTER COLUMN role_name DROP NOT NULL;
