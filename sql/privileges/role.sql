-- The request path's login role ({app}). The server runs this file and grants.sql as the
-- admin on every start; `support-mcp db grants` prints them for a DBA. It owns nothing, is
-- no superuser and cannot create roles or databases. NOINHERIT: its membership in the tenant
-- roles lets it SET ROLE into one (the scoping point), never use their privileges directly
-- (PostgreSQL 16 records each such grant WITH INHERIT FALSE too).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{app_name}') THEN
        CREATE ROLE {app} LOGIN NOINHERIT;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- created at the same moment by a server on another database of this cluster
END
$$;
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{app_name}'
               AND (rolsuper OR rolinherit OR rolcreaterole OR rolcreatedb OR rolreplication
                    OR rolbypassrls OR NOT rolcanlogin)) THEN
        ALTER ROLE {app} LOGIN NOINHERIT NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS;
    END IF;
END
$$;
