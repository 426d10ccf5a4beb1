-- `support-mcp doctor`: read-only checks of the request path's role and the migration ledgers.

-- name: role-privileges()^
-- The connected role's attributes and how many objects it owns (the app role should own nothing).
SELECT r.rolname AS name, r.rolsuper AS superuser, r.rolinherit AS inherit, r.rolcreaterole AS createrole,
       r.rolcreatedb AS createdb, r.rolreplication AS replication, r.rolbypassrls AS bypassrls,
       (SELECT count(*) FROM pg_catalog.pg_class WHERE relowner = r.oid)
     + (SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspowner = r.oid)
     + (SELECT count(*) FROM pg_catalog.pg_proc WHERE proowner = r.oid)
     + (SELECT count(*) FROM pg_catalog.pg_database WHERE datdba = r.oid) AS owned
FROM pg_catalog.pg_roles r
WHERE r.rolname = current_user;

-- name: server-version()^
SELECT current_setting('server_version') AS version, current_setting('server_version_num')::int AS num;

-- name: global-ledger()
-- As the admin (the ledger exists once the database has started).
SELECT version, checksum FROM public.support_mcp_migrations;

-- name: tenant-ledger()
-- Inside a tenant scope: the tenant schema's own ledger.
SELECT version FROM schema_migrations;
