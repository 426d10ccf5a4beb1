-- Shared schema kind (SUPPORT_MCP_ISOLATION=rls), version 1: every tenant table of sql/tenant
-- 0001-0004, once, in schema "shared", for all tenants. Runs once, as the admin, which owns every
-- object here; the app role owns none and is not BYPASSRLS (sql/privileges/role.sql).
--
-- Each table has tenant_id, defaulting from the transaction-local setting support_mcp.tenant
-- (set by public.support_mcp_enter_shared, the scoping point's SQL half), and is ENABLE + FORCE
-- ROW LEVEL SECURITY with one policy for all commands, USING and WITH CHECK
-- tenant_id = shared.current_tenant(). No setting (or an empty one) is NULL: no row matches and
-- every write fails (tenant_id NOT NULL, WITH CHECK). An id that is no tenant's reads nothing and
-- writes nothing (the foreign key to the registry). Keys, uniques and foreign keys all lead with
-- tenant_id, so a row can never reference another tenant's row. Constraint names that named
-- queries use (ON CONFLICT ON CONSTRAINT) are the same as sql/tenant's.

CREATE SCHEMA shared;
REVOKE ALL ON SCHEMA shared FROM PUBLIC;

CREATE FUNCTION shared.current_tenant() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(pg_catalog.current_setting('support_mcp.tenant', true), '')::uuid $$;

-- The scoping point's SQL half in RLS mode: the slug and the id the caller looked up must still
-- be one active tenant (SM404 / SM423 otherwise, as support_mcp_enter_tenant); then the tenant
-- and search_path are set for the rest of the transaction only (is_local = true).
CREATE FUNCTION public.support_mcp_enter_shared(p_slug text, p_id uuid, p_allow_suspended boolean)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    st text;
BEGIN
    SELECT status INTO st FROM public.tenants WHERE slug = p_slug AND id = p_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown tenant' USING ERRCODE = 'SM404';
    END IF;
    IF st <> 'active' AND NOT p_allow_suspended THEN
        RAISE EXCEPTION 'tenant suspended' USING ERRCODE = 'SM423';
    END IF;
    PERFORM pg_catalog.set_config('search_path', 'shared, pg_temp', true);
    PERFORM pg_catalog.set_config('support_mcp.tenant', p_id::text, true);
END
$$;
REVOKE ALL ON FUNCTION public.support_mcp_enter_shared(text, uuid, boolean) FROM PUBLIC;

CREATE TABLE shared.customers (
    tenant_id          uuid NOT NULL DEFAULT shared.current_tenant() REFERENCES public.tenants (id),
    id                 uuid NOT NULL DEFAULT gen_random_uuid(),
    name               text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    email              text CHECK (length(email) <= 320 AND email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    phone              text CHECK (length(phone) <= 40),
    stripe_customer_id text CHECK (stripe_customer_id ~ '^cus_[A-Za-z0-9]{1,64}$'),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT customers_pkey PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX customers_email_key ON shared.customers (tenant_id, lower(email)) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX customers_stripe_customer_key ON shared.customers (tenant_id, stripe_customer_id)
    WHERE stripe_customer_id IS NOT NULL;
CREATE INDEX customers_created_idx ON shared.customers (tenant_id, created_at DESC, id DESC);

-- Per-tenant ticket numbers (from 1001, as schema mode's identity): one counter row per tenant,
-- advanced by a trigger. An explicit number (a restore) moves the counter past it.
CREATE TABLE shared.ticket_numbers (
    tenant_id uuid NOT NULL DEFAULT shared.current_tenant() REFERENCES public.tenants (id),
    last      bigint NOT NULL,
    CONSTRAINT ticket_numbers_pkey PRIMARY KEY (tenant_id)
);

CREATE TABLE shared.tickets (
    tenant_id   uuid NOT NULL DEFAULT shared.current_tenant() REFERENCES public.tenants (id),
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    number      bigint NOT NULL,
    customer_id uuid NOT NULL,
    subject     text NOT NULL CHECK (length(btrim(subject)) BETWEEN 1 AND 300),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 100000),
    status      text NOT NULL DEFAULT 'open'
                CHECK (status IN ('open', 'pending', 'solved', 'closed')),
    priority    text NOT NULL DEFAULT 'normal'
                CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    assignee    text CHECK (length(assignee) BETWEEN 1 AND 200),
    tags        text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 50),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tickets_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT tickets_number_key UNIQUE (tenant_id, number),
    CONSTRAINT tickets_customer_id_fkey FOREIGN KEY (tenant_id, customer_id)
        REFERENCES shared.customers (tenant_id, id) ON DELETE RESTRICT
);
CREATE INDEX tickets_created_idx ON shared.tickets (tenant_id, created_at DESC, id DESC);
CREATE INDEX tickets_status_updated_idx ON shared.tickets (tenant_id, status, updated_at DESC);
CREATE INDEX tickets_customer_idx ON shared.tickets (tenant_id, customer_id, created_at DESC);
CREATE INDEX tickets_assignee_idx ON shared.tickets (tenant_id, assignee) WHERE assignee IS NOT NULL;
CREATE INDEX tickets_tags_idx ON shared.tickets USING gin (tags);

CREATE FUNCTION shared.ticket_number() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.number IS NULL THEN
        INSERT INTO shared.ticket_numbers AS n (tenant_id, last) VALUES (NEW.tenant_id, 1001)
        ON CONFLICT (tenant_id) DO UPDATE SET last = n.last + 1
        RETURNING n.last INTO NEW.number;
    ELSE
        INSERT INTO shared.ticket_numbers AS n (tenant_id, last) VALUES (NEW.tenant_id, NEW.number)
        ON CONFLICT (tenant_id) DO UPDATE SET last = greatest(n.last, EXCLUDED.last);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER tickets_number BEFORE INSERT ON shared.tickets
    FOR EACH ROW EXECUTE FUNCTION shared.ticket_number();

CREATE TABLE shared.messages (
    tenant_id   uuid NOT NULL DEFAULT shared.current_tenant() REFERENCES public.tenants (id),
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    ticket_id   uuid NOT NULL,
    author_role text NOT NULL CHECK (author_role IN ('customer', 'agent', 'ai', 'system')),
    internal    boolean NOT NULL DEFAULT false,
    content     text NOT NULL CHECK (length(content) BETWEEN 1 AND 100000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT messages_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT messages_ticket_id_fkey FOREIGN KEY (tenant_id, ticket_id)
        REFERENCES shared.tickets (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX messages_ticket_idx ON shared.messages (tenant_id, ticket_id, created_at, id);

CREATE TABLE shared.documents (
    tenant_id       uuid NOT NULL DEFAULT shared.current_tenant() REFERENCES public.tenants (id),
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    source_uri      text NOT NULL CHECK (length(source_uri) BETWEEN 1 AND 2000),
    title           text NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 300),
    content_hash    text NOT NULL,
    embedding_model text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT documents_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT documents_source_uri_key UNIQUE (tenant_id, source_uri)
);
CREATE INDEX documents_updated_idx ON shared.documents (tenant_id, updated_at DESC, id DESC);

CREATE TABLE shared.chunks (
    tenant_id      uuid NOT NULL DEFAULT shared.current_tenant() REFERENCES public.tenants (id),
    id             uuid NOT NULL,
    document_id    uuid NOT NULL,
    ordinal        integer NOT NULL CHECK (ordinal >= 0),
    heading_path   text[] NOT NULL DEFAULT '{}',
    text           text NOT NULL CHECK (length(text) BETWEEN 1 AND 100000),
    token_count    integer NOT NULL CHECK (token_count >= 0),
    dense          real[] NOT NULL,
    sparse_indices integer[] NOT NULL,
    sparse_values  real[] NOT NULL,
    CONSTRAINT chunks_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT chunks_document_id_ordinal_key UNIQUE (tenant_id, document_id, ordinal),
    CONSTRAINT chunks_document_id_fkey FOREIGN KEY (tenant_id, document_id)
        REFERENCES shared.documents (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE shared.stripe_events (
    tenant_id    uuid NOT NULL DEFAULT shared.current_tenant() REFERENCES public.tenants (id),
    id           text NOT NULL CHECK (id ~ '^evt_[A-Za-z0-9_]{1,255}$'),
    type         text NOT NULL CHECK (length(type) BETWEEN 1 AND 200),
    account      text NOT NULL,
    created      timestamptz NOT NULL,
    payload      jsonb NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    deliveries   integer NOT NULL DEFAULT 1,
    attempts     integer NOT NULL DEFAULT 0,
    processed_at timestamptz,
    outcome      text CHECK (length(outcome) <= 500),
    last_error   text CHECK (length(last_error) <= 500),
    CONSTRAINT stripe_events_pkey PRIMARY KEY (tenant_id, id)
);
CREATE INDEX stripe_events_unprocessed_idx ON shared.stripe_events (tenant_id, received_at)
    WHERE processed_at IS NULL;

CREATE TABLE shared.ticket_stripe_refs (
    tenant_id  uuid NOT NULL DEFAULT shared.current_tenant() REFERENCES public.tenants (id),
    ref        text NOT NULL CHECK (ref ~ '^(ch|py|pi|dp|du|re)_[A-Za-z0-9]{1,64}$'),
    ticket_id  uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ticket_stripe_refs_pkey PRIMARY KEY (tenant_id, ref, ticket_id),
    CONSTRAINT ticket_stripe_refs_ticket_id_fkey FOREIGN KEY (tenant_id, ticket_id)
        REFERENCES shared.tickets (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX ticket_stripe_refs_ticket_idx ON shared.ticket_stripe_refs (tenant_id, ticket_id);

CREATE TABLE shared.stripe_refunds (
    tenant_id       uuid NOT NULL DEFAULT shared.current_tenant() REFERENCES public.tenants (id),
    idempotency_key text NOT NULL,
    refund_id       text NOT NULL,
    charge_id       text NOT NULL,
    amount          bigint NOT NULL CHECK (amount > 0),
    currency        text NOT NULL,
    reason          text NOT NULL,
    ticket_id       uuid,
    requested_by    text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT stripe_refunds_pkey PRIMARY KEY (tenant_id, idempotency_key),
    CONSTRAINT stripe_refunds_refund_id_key UNIQUE (tenant_id, refund_id),
    CONSTRAINT stripe_refunds_ticket_id_fkey FOREIGN KEY (tenant_id, ticket_id)
        REFERENCES shared.tickets (tenant_id, id) ON DELETE SET NULL (ticket_id)
);
CREATE INDEX stripe_refunds_charge_idx ON shared.stripe_refunds (tenant_id, charge_id);

CREATE TABLE shared.stripe_quarantine (
    tenant_id        uuid NOT NULL DEFAULT shared.current_tenant() REFERENCES public.tenants (id),
    id               bigint GENERATED ALWAYS AS IDENTITY,
    event_id         text NOT NULL CHECK (event_id ~ '^evt_[A-Za-z0-9_]{1,255}$'),
    type             text NOT NULL CHECK (length(type) <= 400),
    reason           text NOT NULL CHECK (length(reason) <= 500),
    body             bytea NOT NULL,
    body_sha256      bytea NOT NULL,
    deliveries       integer NOT NULL DEFAULT 1,
    received_at      timestamptz NOT NULL DEFAULT now(),
    last_received_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT stripe_quarantine_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT stripe_quarantine_body_sha256_key UNIQUE (tenant_id, body_sha256)
);
CREATE INDEX stripe_quarantine_received_idx ON shared.stripe_quarantine (tenant_id, received_at);

-- The one policy per table, for every command; FORCE so the owner is held to it too.
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT c.relname FROM pg_catalog.pg_class c
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'shared' AND c.relkind IN ('r', 'p') LOOP
        EXECUTE pg_catalog.format('ALTER TABLE shared.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE pg_catalog.format('ALTER TABLE shared.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE pg_catalog.format(
            'CREATE POLICY tenant_isolation ON shared.%I FOR ALL '
            'USING (tenant_id = shared.current_tenant()) WITH CHECK (tenant_id = shared.current_tenant())', t);
    END LOOP;
END
$$;
