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
-- An existing ordinary role (say, made by a DBA with the default INHERIT) is made NOINHERIT;
-- one with more power is left alone, and the server refuses to serve requests through it.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{app_name}' AND rolname <> current_user
               AND (rolinherit OR NOT rolcanlogin)
               AND NOT (rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls)) THEN
        ALTER ROLE {app} LOGIN NOINHERIT;
    END IF;
END
$$;
