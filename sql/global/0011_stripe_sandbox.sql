-- Global schema kind, version 11: the per-episode Stripe sandbox (issue 12, part 3). Its objects
-- live here, not in one process's memory, so the CLI (`episodes create`, `episodes state`,
-- `episodes trigger`) and every server process see the same accounts. Admin-only: the request
-- path never reads these tables (no grant); tools reach the objects the way they reach Stripe,
-- over HTTP through the `stripe` SDK, from a server started with SUPPORT_MCP_STRIPE_SANDBOX=on.

-- One connected account per episode tenant; deleting the tenant deletes the account and objects.
CREATE TABLE "global".sandbox_accounts (
    id          text PRIMARY KEY CHECK (id ~ '^acct_[A-Za-z0-9]{16,32}$'),
    tenant_id   uuid NOT NULL UNIQUE REFERENCES public.tenants (id) ON DELETE CASCADE,
    seed        text NOT NULL,                   -- ids minted for the account derive from it
    minted      bigint NOT NULL DEFAULT 0,       -- how many ids were minted so far
    clock       bigint,                          -- a frozen "now" (unix seconds), or NULL: real time
    fixture     jsonb NOT NULL CHECK (jsonb_typeof(fixture) = 'object'),  -- for reset
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Stripe objects as Stripe shapes them (the API answers `body`); `seq` keeps creation order.
CREATE TABLE "global".sandbox_objects (
    account_id  text NOT NULL REFERENCES "global".sandbox_accounts (id) ON DELETE CASCADE,
    id          text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('customer', 'charge', 'payment_intent', 'dispute', 'refund')),
    seq         bigint NOT NULL,
    body        jsonb NOT NULL CHECK (jsonb_typeof(body) = 'object'),
    PRIMARY KEY (account_id, id)
);

-- Stripe's Idempotency-Key store: the first answer to a key is replayed for the same request.
CREATE TABLE "global".sandbox_idempotency (
    account_id  text NOT NULL REFERENCES "global".sandbox_accounts (id) ON DELETE CASCADE,
    key         text NOT NULL CHECK (length(key) <= 255),
    request     jsonb NOT NULL,                  -- method, path, params
    request_id  text NOT NULL,
    body        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, key)
);
REVOKE ALL ON "global".sandbox_accounts, "global".sandbox_objects, "global".sandbox_idempotency FROM PUBLIC;

-- The tenant's Stripe facts now also say whether its connected account is a sandbox account
-- (only an episode tenant's own sandbox account is): the gateway sends those requests to the
-- sandbox, never to Stripe, and the others never to the sandbox.
DROP FUNCTION public.support_mcp_tenant_stripe(text);
CREATE FUNCTION public.support_mcp_tenant_stripe(p_slug text)
RETURNS TABLE (id uuid, status text, stripe_account_id text, stripe_webhook_secret text, sandbox boolean)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT t.id, t.status, t.stripe_account_id, t.stripe_webhook_secret,
       EXISTS (SELECT 1 FROM "global".sandbox_accounts a WHERE a.tenant_id = t.id AND a.id = t.stripe_account_id)
FROM public.tenants t WHERE t.slug = p_slug
$$;
REVOKE ALL ON FUNCTION public.support_mcp_tenant_stripe(text) FROM PUBLIC;
