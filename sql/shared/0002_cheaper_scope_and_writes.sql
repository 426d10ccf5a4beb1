-- Shared schema kind, version 2: the same guarantees for less work per transaction (measured
-- per backend with bench/tenancy.py's op, insert a ticket and read it back).
--
-- 1. The enter call checks and sets in one statement: each statement of a plpgsql function is an
--    executor run of its own, and this function runs once per transaction. A refused tenant still
--    raises (SM404 / SM423), which aborts the transaction, and the settings with it.
CREATE OR REPLACE FUNCTION public.support_mcp_enter_shared(p_slug text, p_id uuid, p_allow_suspended boolean)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    st text;
    path text;
    tenant text;
BEGIN
    SELECT status, pg_catalog.set_config('search_path', 'shared, pg_temp', true),
           pg_catalog.set_config('support_mcp.tenant', p_id::text, true)
      INTO st, path, tenant
      FROM public.tenants WHERE slug = p_slug AND id = p_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown tenant' USING ERRCODE = 'SM404';
    END IF;
    IF st <> 'active' AND NOT p_allow_suspended THEN
        RAISE EXCEPTION 'tenant suspended' USING ERRCODE = 'SM423';
    END IF;
END
$$;

-- 2. A new ticket's number: UPDATE the tenant's counter row (a plain row update), and only for a
--    tenant's first ticket the upsert that creates it. An explicit number (a restore) still moves
--    the counter past it.
CREATE OR REPLACE FUNCTION shared.ticket_number() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.number IS NULL THEN
        UPDATE shared.ticket_numbers SET last = last + 1 WHERE tenant_id = NEW.tenant_id
        RETURNING last INTO NEW.number;
        IF NOT FOUND THEN
            INSERT INTO shared.ticket_numbers AS n (tenant_id, last) VALUES (NEW.tenant_id, 1001)
            ON CONFLICT (tenant_id) DO UPDATE SET last = n.last + 1
            RETURNING n.last INTO NEW.number;
        END IF;
    ELSE
        INSERT INTO shared.ticket_numbers AS n (tenant_id, last) VALUES (NEW.tenant_id, NEW.number)
        ON CONFLICT (tenant_id) DO UPDATE SET last = greatest(n.last, EXCLUDED.last);
    END IF;
    RETURN NEW;
END
$$;

-- 3. A child row's tenant_id already has to match its parent's (the composite foreign keys), and
--    the parent's references the registry: the child's own key to the registry is a second check
--    (and a row lock on the registry row) per insert that can never fail alone. Deleting a
--    registry row still fails while any of the tenant's rows remain (through the parents).
ALTER TABLE shared.tickets DROP CONSTRAINT tickets_tenant_id_fkey;
ALTER TABLE shared.messages DROP CONSTRAINT messages_tenant_id_fkey;
ALTER TABLE shared.chunks DROP CONSTRAINT chunks_tenant_id_fkey;
ALTER TABLE shared.ticket_stripe_refs DROP CONSTRAINT ticket_stripe_refs_tenant_id_fkey;
