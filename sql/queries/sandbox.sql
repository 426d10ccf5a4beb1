-- The per-episode Stripe sandbox (schema "global", sql/global/0011). Admin only.

-- name: sandbox-insert-account(id, slug, seed, clock, fixture)$
INSERT INTO "global".sandbox_accounts (id, tenant_id, seed, clock, fixture)
SELECT :id, t.id, :seed, :clock, :fixture FROM public.tenants t WHERE t.slug = :slug
RETURNING id;

-- name: sandbox-account-of(slug)^
-- A tenant's sandbox account, locked: loading or resetting its objects is one writer at a time.
SELECT a.id, a.seed, a.minted, a.clock, a.fixture
FROM "global".sandbox_accounts a JOIN public.tenants t ON t.id = a.tenant_id
WHERE t.slug = :slug
FOR UPDATE OF a;

-- name: sandbox-lock-account(id)^
SELECT id, seed, minted, clock FROM "global".sandbox_accounts WHERE id = :id FOR UPDATE;

-- name: sandbox-get-account(id)^
SELECT id, seed, minted, clock FROM "global".sandbox_accounts WHERE id = :id;

-- name: sandbox-reset-account(id, seed, clock, fixture)!
UPDATE "global".sandbox_accounts SET seed = :seed, clock = :clock, fixture = :fixture, minted = 0 WHERE id = :id;

-- name: sandbox-clear-account(id)!
WITH gone AS (DELETE FROM "global".sandbox_idempotency WHERE account_id = :id)
DELETE FROM "global".sandbox_objects WHERE account_id = :id;

-- name: sandbox-objects(account_id)
SELECT seq, body FROM "global".sandbox_objects WHERE account_id = :account_id ORDER BY seq;

-- name: sandbox-put-object(account_id, id, kind, seq, body)*!
INSERT INTO "global".sandbox_objects (account_id, id, kind, seq, body)
VALUES (:account_id, :id, :kind, :seq, :body)
ON CONFLICT (account_id, id) DO UPDATE SET body = EXCLUDED.body;

-- name: sandbox-set-minted(id, minted)!
UPDATE "global".sandbox_accounts SET minted = :minted WHERE id = :id;

-- name: sandbox-get-idempotency(account_id, key)^
SELECT request, request_id, body FROM "global".sandbox_idempotency WHERE account_id = :account_id AND key = :key;

-- name: sandbox-put-idempotency(account_id, key, request, request_id, body)!
INSERT INTO "global".sandbox_idempotency (account_id, key, request, request_id, body)
VALUES (:account_id, :key, :request, :request_id, :body);

-- name: sandbox-delete-account(slug)$
DELETE FROM "global".sandbox_accounts a USING public.tenants t
WHERE t.id = a.tenant_id AND t.slug = :slug
RETURNING a.id;

-- name: sandbox-export(slug)
-- What the state export shows (episodes/state.py): the objects an agent or a trigger can change.
SELECT o.kind, o.seq, o.body
FROM "global".sandbox_objects o
JOIN "global".sandbox_accounts a ON a.id = o.account_id
JOIN public.tenants t ON t.id = a.tenant_id
WHERE t.slug = :slug AND o.kind IN ('charge', 'refund', 'dispute')
ORDER BY o.seq;
